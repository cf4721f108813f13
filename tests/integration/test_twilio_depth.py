"""Twilio at production depth, on the embedded runtime with the spec-validating sandboxes.

A call through a trusted, TLS-terminating proxy becomes a ticket; a tampered recording callback
produces nothing; media that answers 404 for its first seconds still ends in exactly one ticket;
an SMS whose summary is not GSM-7 stays within the segment budget; the SMS's delivery receipts
become ``notification.delivery`` events; an opted-out caller gets no SMS but a
``notification.failed`` with 21610, now and on the next call.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sandboxed_runtime import SandboxedRuntime, new_caller, one_ticket, sandboxed_runtime

from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE
from voiceticket_sandbox.proxy import ForwardingProxy
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.testing import eventually
from voiceticket_sandbox.twilio import sms_segments
from voiceticket_sandbox.twilio_webhooks import twilio_signature

pytestmark = pytest.mark.asyncio(loop_scope="module")

PUBLIC = "https://voice.example.test"
TEMPLATE = "Your request {request_key}: {summary}"


class Stack(SandboxedRuntime):
    def events(self, call_sid: str) -> list[tuple[str, dict[str, Any]]]:
        """(event type, data) of every bus record of a call, in order (read beside the bus, WAL)."""
        with sqlite3.connect(self.data_dir / "bus.db") as conn:
            rows = conn.execute(
                "SELECT topic, value FROM bus_records WHERE key = ? ORDER BY position", (call_sid.encode(),)
            ).fetchall()
        return [
            (topic.removeprefix("voiceticket.").rsplit(".v", 1)[0], json.loads(value))
            for topic, value in rows
        ]

    async def twilio(self, what: str) -> Any:
        return (await self.http.get(f"{self.urls.twilio}/_sandbox/{what}")).json()


def with_the_sms_template(config: dict[str, Any]) -> None:
    config["lines"][0]["sms_template"] = TEMPLATE


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("twilio-depth")
    async with sandboxed_runtime(
        Stack, data_dir, with_the_sms_template, trusted_proxies=["127.0.0.1/32"]
    ) as stack:
        yield stack


def tone(seed: int) -> bytes:
    """Distinct audio per call: the OpenAI stand-in keys transcripts by the audio's sha256."""
    return make_tone_wav(seconds=0.6 + seed / 100, frequency=300.0 + seed * 7.3)


async def test_a_call_through_a_trusted_proxy_becomes_a_ticket(stack: Stack) -> None:
    proxy = ForwardingProxy(stack.runtime.ingress_url)
    caller = new_caller()
    async with serve_app(proxy) as proxy_origin:
        simulator = CallerSimulator(PUBLIC, ACCOUNT_SID, AUTH_TOKEN, stack.urls.twilio,
                                    connect={PUBLIC: proxy_origin})  # fmt: skip
        played = await simulator.play_call(
            caller, SUPPORT_LINE, tone(1), "My VPN keeps disconnecting since the update."
        )
        assert (played.voice_status, played.recording_status, played.action_status) == (200, 204, 200)
        record = ET.fromstring(played.twiml).find("Record")
        assert record.get("recordingStatusCallback").startswith(f"{PUBLIC}/twilio/recording?ctx=")
        assert record.get("action").startswith(f"{PUBLIC}/twilio/record-done?ctx=")
        issue = await one_ticket(stack, played.call_sid)
    assert {f["X-Forwarded-Host"] for f in proxy.forwarded} == {"voice.example.test"}
    assert "My VPN keeps disconnecting" in issue["comments"][0]["body"]
    messages = await eventually(lambda: _messages_to(stack, caller))
    assert issue["key"] in messages[0]["body"]


async def _messages_to(stack: Stack, number: str) -> list[dict[str, Any]]:
    return [m for m in await stack.twilio("messages") if m["to"] == number]


async def test_a_tampered_recording_callback_produces_nothing(stack: Stack) -> None:
    simulator = stack.caller()
    tampered_sid = "CA" + secrets.token_hex(16)
    voice_url = f"{stack.runtime.ingress_url}/twilio/voice"
    base = {"AccountSid": ACCOUNT_SID, "From": new_caller(), "To": SUPPORT_LINE, "CallStatus": "ringing",
            "Direction": "inbound", "ApiVersion": "2010-04-01"}  # fmt: skip
    answer = await simulator.post_signed(voice_url, {**base, "CallSid": tampered_sid})
    callback = ET.fromstring(answer.text).find("Record").get("recordingStatusCallback")
    recording_sid = "RE" + secrets.token_hex(16)
    genuine = {
        "AccountSid": ACCOUNT_SID, "CallSid": tampered_sid, "RecordingSid": recording_sid,
        "RecordingUrl": f"{stack.urls.twilio}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}",
        "RecordingStatus": "completed", "RecordingDuration": "9", "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
    }  # fmt: skip
    signature = twilio_signature(AUTH_TOKEN, callback, genuine)
    attempts = {
        "parameter": ({**genuine, "RecordingUrl": "https://attacker.example/evil"}, callback, signature),
        "url": (genuine, callback + "&x=1", signature),
        "other account": (genuine, callback, twilio_signature("another-accounts-token", callback, genuine)),
    }
    statuses = {
        name: (await stack.http.post(url, data=params, headers={"X-Twilio-Signature": sig})).status_code
        for name, (params, url, sig) in attempts.items()
    }
    assert statuses == {"parameter": 403, "url": 403, "other account": 403}

    # Barrier: a genuine call played after the tampering becomes a ticket; the bus is in order, so
    # anything the tampered callbacks had published would have been handled by now.
    control = await simulator.play_call(new_caller(), SUPPORT_LINE, tone(2), "Please reset my password.")
    await one_ticket(stack, control.call_sid)
    assert [kind for kind, _ in stack.events(tampered_sid)] == ["call.received"]
    assert await stack.issues_of(tampered_sid) == []
    media = [r for r in await stack.twilio("requests") if recording_sid in r["path"]]
    assert media == [], "nothing tried to download the tampered recording"


async def test_media_404_for_the_first_seconds_still_ends_in_one_ticket(stack: Stack) -> None:
    await stack.http.post(f"{stack.urls.twilio}/_sandbox/media-faults", json={"unavailable_seconds": 3.0})
    try:
        played = await stack.caller().play_call(
            new_caller(), SUPPORT_LINE, tone(3), "Our invoice 55120 was charged twice this month."
        )
        issue = await one_ticket(stack, played.call_sid)
    finally:
        await stack.http.delete(f"{stack.urls.twilio}/_sandbox/media-faults")
    assert "charged twice" in issue["comments"][0]["body"]
    statuses = [r["status"] for r in await stack.twilio("requests") if played.recording_sid in r["path"]]
    assert statuses[0] == 404 and statuses[-1] == 200 and statuses.count(200) == 1, statuses
    kinds = [kind for kind, _ in stack.events(played.call_sid)]
    assert kinds.count("call.transcribed") == 1 and kinds.count("ticket.created") == 1
    assert await stack.runtime.bus.dead_letters("voiceticket-transcriber") == []


async def test_a_non_gsm_summary_sms_stays_within_the_segment_limit(stack: Stack) -> None:
    caller = new_caller()
    transcript = (
        "Drukarka w biurze na drugim piętrze nie działa od poniedziałku, wydruk się zacina, świeci się "
        "czerwona lampka i nikt z działu księgowości nie może drukować faktur dla klientów 🙁 "
        "Proszę o pilną pomoc."
    )
    played = await stack.caller().play_call(caller, SUPPORT_LINE, tone(4), transcript)
    issue = await one_ticket(stack, played.call_sid)
    [message] = await eventually(lambda: _messages_to(stack, caller))
    summary = issue["requestFieldValues"]["summary"]
    unshortened = TEMPLATE.format(request_key=issue["key"], summary=summary)
    assert sms_segments(unshortened) == ("UCS-2", 4), "the summary alone would need four UCS-2 segments"
    assert message["body"].startswith(f"Your request {issue['key']}: Drukarka w biurze")
    assert message["body"].endswith("...") and message["encoding"] == "UCS-2"
    assert int(message["num_segments"]) <= 2
    [sent] = [data for kind, data in stack.events(played.call_sid) if kind == "notification.sent"]
    assert sent["segments"] == int(message["num_segments"]) and sent["message_sid"] == message["sid"]


async def test_delivery_status_callback_yields_notification_delivery(stack: Stack) -> None:
    await stack.http.post(f"{stack.urls.twilio}/_sandbox/delivery-outcome",
                          json={"statuses": ["sent", "undelivered"], "error_code": 30003})  # fmt: skip
    try:
        caller = new_caller()
        played = await stack.caller().play_call(
            caller, SUPPORT_LINE, tone(5), "The VPN is down for everyone."
        )
        await one_ticket(stack, played.call_sid)

        def deliveries() -> list[dict[str, Any]]:
            return [data for kind, data in stack.events(played.call_sid) if kind == "notification.delivery"]

        receipts = await eventually(lambda: len(deliveries()) == 2 and deliveries())
    finally:
        await stack.http.delete(f"{stack.urls.twilio}/_sandbox/delivery-outcome")
    [message] = await _messages_to(stack, caller)
    assert message["status_callback"].startswith(f"{stack.runtime.ingress_url}/twilio/message-status?ctx=")
    assert caller not in message["status_callback"] and SUPPORT_LINE not in message["status_callback"]
    assert [r["http_status"] for r in message["status_callback_results"]] == [204, 204]
    assert [(r["status"], r["error_code"], r["message_sid"]) for r in receipts] == [
        ("sent", None, message["sid"]),
        ("undelivered", "30003", message["sid"]),
    ]
    assert {r["tenant_id"] for r in receipts} == {"acme"}


async def test_an_opted_out_caller_gets_no_sms_and_a_notification_failed_21610(stack: Stack) -> None:
    caller = new_caller()
    await stack.http.post(f"{stack.urls.twilio}/_sandbox/opted-out", json={"number": caller})
    failures = []
    for seed_value, transcript in ((6, "My laptop will not boot."), (7, "Still no luck with the laptop.")):
        played = await stack.caller().play_call(caller, SUPPORT_LINE, tone(seed_value), transcript)
        await one_ticket(stack, played.call_sid)

        def failed(call_sid: str = played.call_sid) -> list[dict[str, Any]]:
            return [data for kind, data in stack.events(call_sid) if kind == "notification.failed"]

        [failure] = await eventually(failed)
        failures.append(failure)
        assert [kind for kind, _ in stack.events(played.call_sid) if kind == "notification.sent"] == []
    assert [(f["error_code"], f["retryable"]) for f in failures] == [("21610", False), ("21610", False)]
    assert await _messages_to(stack, caller) == []
    attempts = [r for r in await stack.twilio("requests")
                if r["path"].endswith("/Messages.json") and r["body"].get("To") == caller]  # fmt: skip
    assert len(attempts) == 1, "the second call was skipped by the notifier's opt-out ledger"
