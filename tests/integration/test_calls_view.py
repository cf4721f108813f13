"""The calls view (config-api's ``/v1/calls``) on the embedded runtime against the sandboxes.

A call that becomes a ticket shows all five stages done with the request key; a call whose Jira
create is refused for good shows its dead letter, and a replay through the API, once the fault is
gone, completes it with exactly one request.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sandboxed_runtime import SandboxedRuntime, new_caller, one_ticket, sandboxed_runtime

from voiceticket.samples import sample_calls
from voiceticket_common.bus.errors import PermanentError
from voiceticket_common.bus.kafka import KafkaEventBus
from voiceticket_common.events import Event, v1
from voiceticket_config_api import Settings, create_app
from voiceticket_sandbox.demo_tenant import SUPPORT_LINE
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.integration
STAGES = ["received", "transcribed", "analyzed", "request", "sms"]


def _admin(stack: SandboxedRuntime) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.runtime.admin_token.get_secret_value()}"}


async def _call(stack: SandboxedRuntime, call_sid: str) -> dict[str, Any] | None:
    r = await stack.http.get(f"{stack.runtime.config_api_url}/v1/calls/{call_sid}", headers=_admin(stack))
    return r.json() if r.status_code == 200 else None


async def _all_done(stack: SandboxedRuntime, call_sid: str) -> dict[str, Any] | None:
    call = await _call(stack, call_sid)
    return call if call and all(s["state"] == "done" for s in call["stages"]) else None


async def test_calls_view_shows_stages_dead_letters_and_a_replay(tmp_path: Path) -> None:
    sample = sample_calls()["vpn-outage"]
    async with sandboxed_runtime(SandboxedRuntime, tmp_path, lambda _: None) as stack:
        caller = new_caller()
        played = await stack.caller().play_call(
            caller, SUPPORT_LINE, sample.audio, sample.transcript, sample.duration_seconds
        )
        issue = await one_ticket(stack, played.call_sid)
        call = await eventually(lambda: _all_done(stack, played.call_sid), 30)
        assert [s["name"] for s in call["stages"]] == STAGES
        assert all(s["at"] for s in call["stages"])
        assert call["request_key"] == issue["key"] and call["line"] == SUPPORT_LINE
        assert call["priority"] and call["intent"] and call["triage"] in ("ok", "needs-triage")
        assert call["dead_letters"] == [] and call["error"] is None
        listed = (
            await stack.http.get(f"{stack.runtime.config_api_url}/v1/calls", headers=_admin(stack))
        ).json()
        assert played.call_sid in [c["call_sid"] for c in listed["calls"]]
        assert caller not in str(listed) and sample.transcript not in str(listed)
        # the transcript: sealed on the bus, opened with the call's key for an admin-scope token
        r = await stack.http.get(
            f"{stack.runtime.config_api_url}/v1/calls/{played.call_sid}/transcript", headers=_admin(stack)
        )
        assert r.status_code == 200, r.text
        assert r.json()["call_sid"] == played.call_sid and r.json()["text"].strip()
        # the embedded runtime's retention purge covers the view (a dry run: it only counts)
        later = datetime.now(UTC) + timedelta(days=30)
        report = await stack.runtime.purge(later, dry_run=True)
        assert report["removed"]["config-api"]["calls"] == 1

        # Jira refuses every create for good: jira-writer dead-letters the second call.
        fault = {
            "method": "POST",
            "path_regex": "/rest/servicedeskapi/request$",
            "status": 400,
            "times": None,
        }
        (await stack.http.post(f"{stack.urls.jira}/_sandbox/faults", json=fault)).raise_for_status()
        refused = await stack.caller().play_call(
            new_caller(), SUPPORT_LINE, sample.audio, sample.transcript, sample.duration_seconds
        )

        async def dead_lettered() -> dict[str, Any] | None:
            found = await _call(stack, refused.call_sid)
            return found if found and found["dead_letters"] else None

        stuck = await eventually(dead_lettered, 40)
        assert [s["state"] for s in stuck["stages"]][:4] == ["done", "done", "done", "failed"]
        assert stuck["stages"][4]["state"] == "pending" and stuck["request_key"] is None
        [letter] = stuck["dead_letters"]
        assert letter["group"] == "voiceticket-jira-writer" and "400" in letter["reason"]
        assert "voiceticket-jira-writer" in stuck["error"]

        await stack.http.delete(f"{stack.urls.jira}/_sandbox/faults")
        r = await stack.http.post(
            f"{stack.runtime.config_api_url}/v1/dead-letters/{letter['id']}/replay", headers=_admin(stack)
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"replayed": True, "id": letter["id"]}
        done = await eventually(lambda: _all_done(stack, refused.call_sid), 40)
        [ticket] = await stack.issues_of(refused.call_sid)
        assert done["request_key"] == ticket["key"]
        assert done["dead_letters"][0]["replayed_at"] is not None


KAFKA_SID = "CA" + "c" * 32


def _kafka_call() -> list[Event]:
    ctx: dict[str, Any] = {"tenant_id": "acme", "call_sid": KAFKA_SID, "line_number": "+14155550100",
                           "caller_number": "+4915112345678", "consent": "notice"}  # fmt: skip
    rec = {**ctx, "recording_sid": "RE" + "3" * 32, "duration_seconds": 12}
    analysis = v1.Analysis(summary="s", description="d", intent="outage", priority=v1.Priority.HIGHEST,
                           sentiment=v1.Sentiment.NEUTRAL, language="en")  # fmt: skip
    return [
        v1.CallReceived(**ctx, account_sid="AC" + "1" * 32, occurred_at=datetime.now(UTC)),
        v1.CallTranscribed(**rec, transcript="the VPN is down", language="en", model="whisper-1"),
        v1.CallAnalyzed(**rec, transcript="the VPN is down", analysis=analysis, model="gpt-4o-mini"),
    ]


async def test_calls_view_on_kafka_follows_dead_letters_and_replays(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """config-api in its own process's shape (Kafka settings): the view follows the topics and
    the dead-letter topics, and a replay through the API goes back onto Kafka."""
    namespace = f"calls-{uuid.uuid4().hex[:8]}"
    token = "calls-kafka-admin-0123456789abcdef"  # noqa: S105 - a test token
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'config.db'}",
        master_keys=f"k1:{Fernet.generate_key().decode()}",
        admin_token=token,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_namespace=namespace,
    )
    events = _kafka_call()
    ticket = v1.TicketCreated(**events[0].call_context(), issue_key="OPS-3", issue_id="3", service_desk_id="1",
                              request_type_id="10", summary="s")  # fmt: skip
    fixed = asyncio.Event()

    async def jira(event: Event) -> list[Event]:
        if not fixed.is_set():
            raise PermanentError("Jira answered 400")
        return [ticket]

    bus = KafkaEventBus(kafka_bootstrap, "test", topic_namespace=namespace, partitions=1)
    await bus.start()
    consumer = asyncio.create_task(bus.consume("voiceticket-jira-writer", [v1.CallAnalyzed], jira))
    app = create_app(settings)
    admin = {"Authorization": f"Bearer {token}"}
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://config-api") as api,
        ):
            await bus.ensure_topics([v1.CallReceived, v1.CallTranscribed, v1.TicketCreated])
            for event in events:
                await bus.publish(event)

            async def view(check: Any) -> Any:
                r = await api.get(f"/v1/calls/{KAFKA_SID}", headers=admin)
                return r.json() if r.status_code == 200 and check(r.json()) else None

            def settled(call: dict[str, Any]) -> bool:
                # The feed follows topics created after it started within its metadata refresh
                # (5 s): the dead letter may be seen before the earlier stages' topics are.
                return bool(call["dead_letters"]) and all(s["state"] == "done" for s in call["stages"][:3])

            stuck = await eventually(lambda: view(settled), 60)
            assert [s["state"] for s in stuck["stages"]][:4] == ["done", "done", "done", "failed"]
            assert (stuck["priority"], stuck["intent"]) == ("highest", "outage")  # the analysis was in clear
            [letter] = stuck["dead_letters"]
            assert letter["id"].startswith("voiceticket-jira-writer:")
            fixed.set()
            r = await api.post(f"/v1/dead-letters/{letter['id']}/replay", headers=admin)
            assert r.status_code == 200, r.text
            done = await eventually(lambda: view(lambda c: c["stages"][3]["state"] == "done"), 60)
            assert done["request_key"] == "OPS-3"
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        await bus.stop()
