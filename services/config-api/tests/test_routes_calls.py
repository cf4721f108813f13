"""``/v1/calls`` and ``/v1/dead-letters`` (routes_calls.py): auth, scopes, shapes, pagination,
the transcript, replay, and the erasure of a call's row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from calls_testkit import CALLER, LINE, SID, T0, TRANSCRIPT, call_events, record
from config_api_testkit import ADMIN_TOKEN, SERVICE_TOKENS, auth, line_body, tenant_body

from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.bus.errors import PermanentError
from voiceticket_common.events import Event, v1

ADMIN = auth(ADMIN_TOKEN)
STAGES = ["received", "transcribed", "analyzed", "request", "sms"]
CALL_KEYS = {
    "call_sid", "tenant_id", "line", "received_at", "stages", "request_key", "priority", "intent",
    "language", "triage", "error", "dead_letters",
}  # fmt: skip
LETTER_KEYS = {"id", "call_sid", "group", "event_type", "reason", "at"}


@pytest.fixture
async def api(
    start: Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """config-api following the embedded event log ``tmp_path/bus.db``, with tenant acme and its line."""
    async with start(event_log=tmp_path / "bus.db") as client:
        assert (await client.post("/v1/tenants", json=tenant_body(), headers=ADMIN)).status_code == 201
        assert (await client.put(f"/v1/lines/{LINE}", json=line_body(), headers=ADMIN)).status_code == 201
        yield client


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedEventBus]:
    bus = EmbeddedEventBus(tmp_path / "bus.db", "test", poll_interval=0.05)
    await bus.start()
    yield bus
    await bus.stop()


async def _read_only(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post("/v1/admin/tokens", json={"name": "viewer", "scope": "read-only"}, headers=ADMIN)
    assert r.status_code == 201, r.text
    return auth(r.json()["token"])


async def _until(
    client: httpx.AsyncClient, path: str, check: Callable[[Any], bool], seconds: float = 10
) -> Any:
    async with asyncio.timeout(seconds):
        while True:
            r = await client.get(path, headers=ADMIN)
            if r.status_code == 200 and check(r.json()):
                return r.json()
            await asyncio.sleep(0.05)


async def test_a_call_on_the_bus_shows_every_stage_done(
    api: httpx.AsyncClient, bus: EmbeddedEventBus
) -> None:
    for event in call_events():
        await bus.publish(event)
    call = await _until(api, f"/v1/calls/{SID}", lambda c: c["stages"][-1]["state"] == "done")
    assert CALL_KEYS <= set(call)
    assert [s["name"] for s in call["stages"]] == STAGES
    assert [s["state"] for s in call["stages"]] == ["done"] * 5
    assert all(s["at"] for s in call["stages"])
    assert (call["tenant_id"], call["line"], call["request_key"]) == ("acme", LINE, "SUP-7")
    assert (call["priority"], call["intent"], call["language"], call["triage"]) == (
        "high",
        "delivery_issue",
        "en",
        "ok",
    )
    assert call["error"] is None and call["dead_letters"] == []
    page = (await api.get("/v1/calls", headers=ADMIN)).json()
    assert [c["call_sid"] for c in page["calls"]] == [SID] and page["next"] is None
    assert CALLER not in str(page)


async def test_auth_and_scopes(api: httpx.AsyncClient, bus: EmbeddedEventBus) -> None:
    for event in call_events():
        await bus.publish(event)
    await _until(api, f"/v1/calls/{SID}", lambda c: c["request_key"] == "SUP-7")
    viewer = await _read_only(api)
    for path in ("/v1/calls", f"/v1/calls/{SID}", "/v1/dead-letters"):
        assert (await api.get(path)).status_code == 401
        assert (await api.get(path, headers=auth(SERVICE_TOKENS["ingress"]))).status_code == 403
        assert (await api.get(path, headers=viewer)).status_code == 200
    r = await api.get(f"/v1/calls/{SID}/transcript", headers=viewer)
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    assert (await api.post("/v1/dead-letters/1/replay", headers=viewer)).status_code == 403
    assert (await api.get(f"/v1/calls/{'CA' + '0' * 32}", headers=ADMIN)).status_code == 404
    assert (await api.get("/v1/calls/not-a-sid", headers=ADMIN)).status_code == 422


async def test_the_transcript_needs_admin_scope_and_is_audited(
    api: httpx.AsyncClient, bus: EmbeddedEventBus
) -> None:
    for event in call_events():
        await bus.publish(event)
    await _until(api, f"/v1/calls/{SID}", lambda c: c["request_key"] == "SUP-7")
    r = await api.get(f"/v1/calls/{SID}/transcript", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json() == {"call_sid": SID, "text": TRANSCRIPT}
    entries = (await api.get("/v1/audit", params={"action": "call.transcript.read"}, headers=ADMIN)).json()
    assert [(e["actor"], e["target"], e["outcome"]) for e in entries["items"]] == [
        ("admin", f"call:{SID}", "success")
    ]


async def _project(api: httpx.AsyncClient, events: list[Event]) -> None:
    app: Any = api.app  # type: ignore[attr-defined]
    await app.state.calls_projector.apply([await record(e) for e in events])


async def test_pagination_newest_first_and_tenant_filter(api: httpx.AsyncClient) -> None:
    sids = [f"CA{i:032x}" for i in range(1, 6)]
    for i, sid in enumerate(sids):
        await _project(api, call_events(sid, "acme" if i % 2 == 0 else "globex", T0 + timedelta(minutes=i)))
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params: dict[str, Any] = {"limit": 2} | ({"before": cursor} if cursor else {})
        page = (await api.get("/v1/calls", params=params, headers=ADMIN)).json()
        seen += [c["call_sid"] for c in page["calls"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(reversed(sids)) and cursor is None
    acme = (await api.get("/v1/calls", params={"tenant_id": "acme"}, headers=ADMIN)).json()
    assert [c["call_sid"] for c in acme["calls"]] == [sids[4], sids[2], sids[0]]
    assert (
        await api.get("/v1/calls", params={"before": "bm90LWEtY3Vyc29y"}, headers=ADMIN)
    ).status_code == 422
    assert (await api.get("/v1/calls", params={"limit": 0}, headers=ADMIN)).status_code == 422


async def test_sms_off_on_the_line_shows_the_sms_skipped(api: httpx.AsyncClient) -> None:
    assert (
        await api.put(f"/v1/lines/{LINE}", json=line_body(sms_enabled=False), headers=ADMIN)
    ).status_code == 200
    await _project(api, call_events()[:6])  # no notification event: SMS is off
    call = (await api.get(f"/v1/calls/{SID}", headers=ADMIN)).json()
    assert call["stages"][-1] == {
        "name": "sms",
        "at": None,
        "state": "skipped",
        "detail": "SMS off on this line",
    }
    assert call["sms_state"] == "skipped"


async def test_a_dead_letter_shows_failed_and_a_replay_completes_the_call(
    api: httpx.AsyncClient, bus: EmbeddedEventBus
) -> None:
    fixed = asyncio.Event()
    ticket = call_events()[5]

    async def jira(event: Event) -> list[Event]:
        if not fixed.is_set():
            raise PermanentError("Jira answered 400: field customfield_10050 is not on the screen")
        return [ticket]

    consumer = asyncio.create_task(bus.consume("voiceticket-jira-writer", [v1.CallAnalyzed], jira))
    try:
        for event in call_events()[:5]:
            await bus.publish(event)
        call = await _until(api, f"/v1/calls/{SID}", lambda c: bool(c["dead_letters"]))
        request = call["stages"][3]
        assert (request["state"], request["detail"]) == (
            "failed",
            "PermanentError: Jira answered 400: field customfield_10050 is not on the screen",
        )
        assert call["error"].startswith("voiceticket-jira-writer: PermanentError")
        letters = (await api.get("/v1/dead-letters", params={"call_sid": SID}, headers=ADMIN)).json()[
            "dead_letters"
        ]
        assert len(letters) == 1 and LETTER_KEYS <= set(letters[0])
        assert (letters[0]["group"], letters[0]["event_type"]) == (
            "voiceticket-jira-writer",
            v1.CallAnalyzed.ce_type(),
        )
        assert (await api.post("/v1/dead-letters/nope/replay", headers=ADMIN)).status_code == 404
        fixed.set()
        r = await api.post(f"/v1/dead-letters/{letters[0]['id']}/replay", headers=ADMIN)
        assert r.status_code == 200, r.text
        assert r.json() == {"replayed": True, "id": letters[0]["id"]}
        call = await _until(api, f"/v1/calls/{SID}", lambda c: c["stages"][3]["state"] == "done")
        assert call["request_key"] == "SUP-7"
        assert call["dead_letters"][0]["replayed_by"] == "admin"
        entries = (await api.get("/v1/audit", params={"action": "dead_letter.replay"}, headers=ADMIN)).json()
        assert [e["outcome"] for e in entries["items"]] == [
            "success",
            "refused",
        ]  # the unknown id was refused
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)


async def test_replay_without_a_bus_is_a_conflict(api: httpx.AsyncClient, tmp_path: Path) -> None:
    app: Any = api.app  # type: ignore[attr-defined]
    events = call_events()
    from calls_testkit import dead_letter

    letter = dead_letter(await record(events[4]), "voiceticket-jira-writer", "123")
    await app.state.calls_projector.apply([await record(events[0]), letter])
    app.state.settings = app.state.settings.model_copy(update={"event_log": None})
    r = await api.post("/v1/dead-letters/123/replay", headers=ADMIN)
    assert r.status_code == 409 and "no bus" in r.json()["detail"]


async def test_an_erasure_deletes_the_call_row(api: httpx.AsyncClient, bus: EmbeddedEventBus) -> None:
    r = await api.put(
        f"/v1/runtime/calls/{SID}/key",
        json={"tenant_id": "acme", "caller_number": CALLER},
        headers=auth(SERVICE_TOKENS["ingress"]),
    )
    assert r.status_code == 200, r.text
    for event in call_events():
        await bus.publish(event)
    await _until(api, f"/v1/calls/{SID}", lambda c: c["request_key"] == "SUP-7")
    r = await api.post("/v1/privacy/erasures", json={"phone": CALLER}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert (await api.get(f"/v1/calls/{SID}", headers=ADMIN)).status_code == 404
    assert (await api.get(f"/v1/calls/{SID}/transcript", headers=ADMIN)).status_code == 404
    assert (await api.get("/v1/calls", headers=ADMIN)).json()["calls"] == []
