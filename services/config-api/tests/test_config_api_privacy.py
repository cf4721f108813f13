"""The key vault (call data keys) and a caller's export and erasure through the admin API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from config_api_testkit import (
    ADMIN_TOKEN,
    SERVICE_TOKENS,
    auth,
    line_body,
    make_settings,
    new_key,
    running,
    tenant_body,
)
from pydantic import SecretStr

from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.events import CallReceived
from voiceticket_common.sealing import CallErased, Sealer, VaultCallKeys
from voiceticket_common.testing import RECORDING_SID, call_transcribed, recording_completed, ticket_created

CALLER = "+14155550123"
OTHER_CALLER = "+14155550999"
CALL = "CA" + "a" * 32
SECOND_CALL = "CA" + "b" * 32
OTHER_CALL = "CA" + "c" * 32
LINE = "+14155550100"
TRANSCRIPT = "This is Dana, my order 44817723 never arrived"


def keys_of(client: httpx.AsyncClient, role: str, *, creates: bool = False) -> VaultCallKeys:
    return VaultCallKeys("http://config-api", SecretStr(SERVICE_TOKENS[role]), creates=creates, client=client)


def received(call_sid: str, caller: str = CALLER) -> CallReceived:
    return CallReceived(
        tenant_id="acme",
        call_sid=call_sid,
        line_number=LINE,
        caller_number=caller,
        account_sid="AC" + "0" * 32,
    )


async def put_key(
    client: httpx.AsyncClient, call_sid: str, caller: str = CALLER, role: str = "ingress"
) -> httpx.Response:
    return await client.put(
        f"/v1/runtime/calls/{call_sid}/key",
        json={"tenant_id": "acme", "caller_number": caller},
        headers=auth(SERVICE_TOKENS[role]),
    )


async def test_ingress_creates_a_calls_key_once_and_the_other_services_fetch_it(
    seeded: httpx.AsyncClient,
) -> None:
    first, again = await put_key(seeded, CALL), await put_key(seeded, CALL)
    assert first.status_code == 200 and first.json() == again.json()
    for role in ("transcriber", "analyzer", "jira-writer", "notifier"):
        r = await seeded.get(
            f"/v1/runtime/calls/{CALL}/key", params={"tenant_id": "acme"}, headers=auth(SERVICE_TOKENS[role])
        )
        assert r.json() == first.json(), role
    assert (
        await put_key(seeded, SECOND_CALL, role="transcriber")
    ).status_code == 403  # only ingress starts calls
    missing = await seeded.get(
        f"/v1/runtime/calls/{SECOND_CALL}/key",
        params={"tenant_id": "acme"},
        headers=auth(SERVICE_TOKENS["analyzer"]),
    )
    assert missing.status_code == 404
    r = await seeded.put(
        f"/v1/runtime/calls/{CALL}/key",
        json={"tenant_id": "ghost", "caller_number": CALLER},
        headers=auth(SERVICE_TOKENS["ingress"]),
    )
    assert r.status_code == 404  # no key for a tenant that does not exist (or was removed)
    assert (
        await seeded.get(
            f"/v1/runtime/calls/{CALL}/key", params={"tenant_id": "acme"}, headers=auth(ADMIN_TOKEN)
        )
    ).status_code == 403


async def post_keys(client: httpx.AsyncClient, *calls: tuple[str, str, str]) -> list[dict[str, Any]]:
    r = await client.post(
        "/v1/runtime/call-keys",
        json={"calls": [{"tenant_id": t, "call_sid": sid, "caller_number": n} for t, sid, n in calls]},
        headers=auth(SERVICE_TOKENS["ingress"]),
    )
    assert r.status_code == 200, r.text
    answers: list[dict[str, Any]] = r.json()["keys"]
    return answers


async def test_calls_starting_together_get_their_keys_in_one_request(seeded: httpx.AsyncClient) -> None:
    existing = (await put_key(seeded, CALL)).json()
    first = await post_keys(
        seeded, ("acme", CALL, CALLER), ("ghost", SECOND_CALL, CALLER), ("acme", SECOND_CALL, OTHER_CALLER)
    )
    assert [(a["call_sid"], a["status"]) for a in first] == [
        (CALL, 200),
        (SECOND_CALL, 404),
        (SECOND_CALL, 200),
    ]
    assert {"key_id": first[0]["key_id"], "key": first[0]["key"]} == existing  # an existing key is served
    assert first[1]["key"] is None  # nothing for a tenant that does not exist
    fetched = await seeded.get(
        f"/v1/runtime/calls/{SECOND_CALL}/key",
        params={"tenant_id": "acme"},
        headers=auth(SERVICE_TOKENS["notifier"]),
    )
    assert fetched.json() == {"key_id": first[2]["key_id"], "key": first[2]["key"]}  # the new key is stored
    # The new call's subject is its own caller's: an erasure of OTHER_CALLER destroys its key only.
    erased = await seeded.post(
        "/v1/privacy/erasures", json={"phone": OTHER_CALLER}, headers=auth(ADMIN_TOKEN)
    )
    assert erased.status_code == 200, erased.text
    again = await post_keys(seeded, ("acme", SECOND_CALL, OTHER_CALLER), ("acme", CALL, CALLER))
    assert [(a["status"], a["key"]) for a in again] == [(410, None), (200, existing["key"])]
    assert (
        await seeded.post(
            "/v1/runtime/call-keys",
            json={"calls": [{"tenant_id": "acme", "call_sid": CALL, "caller_number": CALLER}]},
            headers=auth(SERVICE_TOKENS["transcriber"]),
        )
    ).status_code == 403  # only ingress starts calls
    too_many = [{"tenant_id": "acme", "call_sid": f"CA{n:032x}", "caller_number": CALLER} for n in range(201)]
    r = await seeded.post(
        "/v1/runtime/call-keys", json={"calls": too_many}, headers=auth(SERVICE_TOKENS["ingress"])
    )
    assert r.status_code in (400, 422) and CALLER not in r.text


async def test_ingress_asks_the_vault_once_for_the_keys_of_calls_starting_together(
    seeded: httpx.AsyncClient,
) -> None:
    asked: list[str] = []

    async def count(request: httpx.Request) -> None:
        asked.append(f"{request.method} {request.url.path}")

    seeded.event_hooks["request"].append(count)
    ingress = keys_of(seeded, "ingress", creates=True)
    calls = [f"CA{n:032x}" for n in range(1, 21)]
    keys = await asyncio.gather(*(ingress.key_for_sealing(received(sid)) for sid in calls))
    assert len({k.key_id for k in keys}) == 20
    # All twenty arrived before the first request went out: they share it (one round trip, one commit).
    assert asked == ["POST /v1/runtime/call-keys"]
    notifier = keys_of(seeded, "notifier")
    assert [await notifier.key_for_opening("acme", sid) for sid in calls] == keys


async def test_ingress_falls_back_to_one_key_a_request_on_a_config_api_without_batches(
    seeded: httpx.AsyncClient,
) -> None:
    app = seeded.app  # type: ignore[attr-defined]

    async def older_config_api(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/runtime/call-keys":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    asked: list[str] = []

    async def count(request: httpx.Request) -> None:
        asked.append(f"{request.method} {request.url.path}")

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=older_config_api),
        base_url="http://config-api",
        event_hooks={"request": [count]},
    ) as old:
        ingress = VaultCallKeys(
            "http://config-api", SecretStr(SERVICE_TOKENS["ingress"]), creates=True, client=old
        )
        keys = await asyncio.gather(*(ingress.key_for_sealing(received(sid)) for sid in (CALL, SECOND_CALL)))
        again = await ingress.key_for_sealing(received(OTHER_CALL))
    assert asked[0] == "POST /v1/runtime/call-keys"
    assert sorted(asked[1:]) == sorted(
        f"PUT /v1/runtime/calls/{sid}/key" for sid in (CALL, SECOND_CALL, OTHER_CALL)
    )
    assert len({k.key_id for k in (*keys, again)}) == 3


async def test_what_ingress_seals_the_transcriber_opens_through_the_vault(seeded: httpx.AsyncClient) -> None:
    ingress, transcriber = (
        Sealer(keys_of(seeded, "ingress", creates=True)),
        Sealer(keys_of(seeded, "transcriber")),
    )
    event = received(CALL)
    value = await ingress.seal(event)
    assert CALLER.encode() not in value
    assert (
        CallReceived.model_validate(await transcriber.open(json.loads(value), purpose=event.ce_type()))
        == event
    )


async def bus_with_calls(path: Path, sealer: Sealer) -> None:
    """An embedded event log holding two calls of CALLER (one dead-lettered) and one of another caller."""
    bus = EmbeddedEventBus(path, source="test")
    await bus.start()
    try:
        for event in (
            received(CALL),
            recording_completed(call_sid=CALL, caller_number=CALLER),
            call_transcribed(call_sid=CALL, caller_number=CALLER, transcript=TRANSCRIPT),
            ticket_created(
                call_sid=CALL, caller_number=CALLER, issue_key="HELP-7", summary="Order 44817723 missing"
            ),
            received(SECOND_CALL),
            received(OTHER_CALL, OTHER_CALLER),
        ):
            await sealer.seal(event)  # issues the call's key as ingress would
            await bus.publish(event)
    finally:
        await bus.stop()


@pytest.fixture
async def privacy(tmp_path: Path) -> Any:
    settings = make_settings(tmp_path, event_log=tmp_path / "bus.db")
    async with running(settings) as client:
        assert (
            await client.post("/v1/tenants", json=tenant_body(), headers=auth(ADMIN_TOKEN))
        ).status_code == 201
        assert (
            await client.put(f"/v1/lines/{LINE}", json=line_body(), headers=auth(ADMIN_TOKEN))
        ).status_code == 201
        await bus_with_calls(tmp_path / "bus.db", Sealer(keys_of(client, "ingress", creates=True)))
        yield client, tmp_path / "bus.db"


async def test_export_holds_the_callers_calls_only_with_the_customer_systems(privacy: Any) -> None:
    client, _ = privacy
    r = await client.post("/v1/privacy/exports", json={"phone": CALLER}, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    export = r.json()
    assert [c["call_sid"] for c in export["calls"]] == [CALL, SECOND_CALL]
    assert OTHER_CALLER not in r.text and OTHER_CALL not in r.text
    first = export["calls"][0]
    assert [rec["event_type"].split(".")[2:4] for rec in first["records"]][:2] == [
        ["call", "received"],
        ["call", "recording"],
    ]
    assert any(rec["data"].get("transcript") == TRANSCRIPT for rec in first["records"])
    assert export["customer_systems"]["jira_requests"] == [
        {
            "tenant_id": "acme",
            "call_sid": CALL,
            "issue_key": "HELP-7",
            "url": "https://acme.atlassian.net/browse/HELP-7",
        }
    ]
    assert [(r["call_sid"], r["recording_sid"]) for r in export["customer_systems"]["twilio_recordings"]] == [
        (CALL, RECORDING_SID)
    ]
    assert export["event_log"] == "embedded"


async def test_erasure_destroys_the_keys_deletes_the_log_rows_and_is_audited(privacy: Any) -> None:
    client, bus_path = privacy
    r = await client.post("/v1/privacy/erasures", json={"phone": CALLER}, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["calls"] == 2 and report["keys_destroyed"] == 2
    assert report["event_log_records_deleted"] == 5
    assert CALLER not in r.text
    assert any("Jira" in step for step in report["remaining_steps"])

    # The keys are gone for every service, and ingress cannot issue new ones for these calls.
    with pytest.raises(CallErased):
        await keys_of(client, "analyzer").key_for_opening("acme", CALL)
    assert (await put_key(client, CALL)).status_code == 410
    # The other caller is untouched.
    assert (
        await client.get(
            f"/v1/runtime/calls/{OTHER_CALL}/key",
            params={"tenant_id": "acme"},
            headers=auth(SERVICE_TOKENS["notifier"]),
        )
    ).status_code == 200
    raw = bus_path.read_bytes() + (
        bus_path.with_name("bus.db-wal").read_bytes() if bus_path.with_name("bus.db-wal").exists() else b""
    )
    assert CALL.encode() not in raw and OTHER_CALL.encode() in raw

    again = (
        await client.post("/v1/privacy/exports", json={"phone": CALLER}, headers=auth(ADMIN_TOKEN))
    ).json()
    assert [c["erased_because"] for c in again["calls"]] == ["caller_erasure", "caller_erasure"]
    assert all(c["records"] == [] for c in again["calls"])

    audit = (await client.get("/v1/audit", headers=auth(ADMIN_TOKEN))).json()["items"]
    actions = [(e["action"], e["outcome"]) for e in audit]
    assert ("privacy.erase", "success") in actions and ("privacy.export", "success") in actions
    erase = next(e for e in audit if e["action"] == "privacy.erase")
    assert erase["target"].startswith("caller:") and CALLER not in json.dumps(audit)


async def test_removing_a_tenant_destroys_its_call_keys_and_lists_the_revocation_steps(privacy: Any) -> None:
    client, _ = privacy
    r = await client.delete("/v1/tenants/acme", headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    removal = r.json()
    assert removal["lines_deleted"] == 1 and removal["call_keys_destroyed"] == 3
    assert [step.split(":")[0] for step in removal["revocation_steps"]] == [
        "Twilio",
        "Atlassian",
        "OpenAI (or the OpenAI-compatible server)",
    ]
    for call_sid in (CALL, SECOND_CALL, OTHER_CALL):  # every queued event of the tenant is now unreadable
        with pytest.raises(CallErased):
            await keys_of(client, "jira-writer").key_for_opening("acme", call_sid)
    assert (await put_key(client, "CA" + "d" * 32)).status_code == 404  # and no new call can start
    lines = await client.get(f"/v1/runtime/lines/{LINE}", headers=auth(SERVICE_TOKENS["ingress"]))
    assert lines.status_code == 404  # its number is an unknown line


async def test_master_key_rotation_rewraps_the_call_keys(tmp_path: Path) -> None:
    old, new = f"k1:{new_key()}", f"k2:{new_key()}"
    async with running(make_settings(tmp_path, master_keys=old)) as client:
        assert (
            await client.post("/v1/tenants", json=tenant_body(), headers=auth(ADMIN_TOKEN))
        ).status_code == 201
        issued = (await put_key(client, CALL)).json()
    async with running(make_settings(tmp_path, master_keys=f"{new},{old}")) as client:
        rotated = (await client.post("/v1/admin/rotate-master-key", headers=auth(ADMIN_TOKEN))).json()
        assert rotated["reencrypted"] >= 5  # three credentials, the call key, the vault's subject secret
    async with running(make_settings(tmp_path, master_keys=new)) as client:  # the old key is gone
        assert (await put_key(client, CALL)).json() == issued
        again = await client.get(
            f"/v1/runtime/calls/{CALL}/key",
            params={"tenant_id": "acme"},
            headers=auth(SERVICE_TOKENS["notifier"]),
        )
        assert again.json() == issued


async def test_an_inbound_sms_gets_a_key_of_its_own_that_the_senders_erasure_destroys(
    seeded: httpx.AsyncClient,
) -> None:
    """Two-way SMS: ``sms.received`` is sealed under a key issued for its MessageSid with the
    sender's number, so the sender's export and erasure reach their texts as they do their calls."""
    message = "SM" + "d" * 32
    created = await put_key(seeded, message)
    assert created.status_code == 200
    fetched = await seeded.get(
        f"/v1/runtime/calls/{message}/key",
        params={"tenant_id": "acme"},
        headers=auth(SERVICE_TOKENS["notifier"]),
    )
    assert fetched.json() == created.json()
    assert (await put_key(seeded, "XX" + "d" * 32)).status_code == 422  # neither a CallSid nor a MessageSid
    erased = await seeded.post("/v1/privacy/erasures", json={"phone": CALLER}, headers=auth(ADMIN_TOKEN))
    assert erased.status_code == 200, erased.text
    gone = await seeded.get(
        f"/v1/runtime/calls/{message}/key",
        params={"tenant_id": "acme"},
        headers=auth(SERVICE_TOKENS["notifier"]),
    )
    assert gone.status_code == 410
