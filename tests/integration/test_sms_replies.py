"""Two-way SMS (issue #16, part 3) through the whole pipeline, on the embedded runtime and on six
processes over Kafka, against the spec-validating stand-ins; the caller's texts are Twilio's
signed incoming message webhooks to ``/twilio/sms``.

- a caller's reply to the SMS we sent about their request becomes a comment on that request;
- HELP is answered with the line's help text;
- a number with no open request gets a polite answer;
- STOP, then a new call: a request but no SMS; START, then a new call: the SMS again;
- a reply once the request is resolved in Jira: the polite answer, no comment.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from sandboxed_runtime import SandboxedRuntime, new_caller, sandboxed_runtime
from stack_probes import Probes, run_on_kafka

from voiceticket.samples import sample_calls
from voiceticket_notifier.replies import NO_OPEN_REQUEST_TEXT
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, SUPPORT_LINE
from voiceticket_sandbox.devstack import Stack
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.integration

HELP_TEXT = "Acme support: reply to this number to add to your request. STOP to opt out."
LINE_SETTINGS = {"sms_replies": True, "sms_help_text": HELP_TEXT}


async def send_sms(caller: CallerSimulator, from_number: str, body: str) -> str:
    """The caller texts our line: Twilio's signed incoming message webhook; its MessageSid."""
    message_sid = "SM" + secrets.token_hex(16)
    params = {
        "MessageSid": message_sid, "SmsSid": message_sid, "SmsMessageSid": message_sid,
        "AccountSid": ACCOUNT_SID, "From": from_number, "To": SUPPORT_LINE, "Body": body,
        "NumMedia": "0", "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01",
    }  # fmt: skip
    answered = await caller.post_signed(f"{caller.ingress_url}/twilio/sms", params)
    assert answered.status_code == 200 and "<Message" not in answered.text
    return message_sid


async def call(caller: CallerSimulator, probes: Probes, number: str) -> dict[str, Any]:
    sample = sample_calls()["vpn-outage"]
    played = await caller.play_call(
        number, SUPPORT_LINE, sample.audio, sample.transcript, sample.duration_seconds
    )
    [issue] = await eventually(lambda: probes.issues_of(played.call_sid), 60.0)
    return issue


async def check_two_way_sms(caller: CallerSimulator, probes: Probes) -> None:
    # 1. a reply to our SMS becomes a comment on the caller's request
    alice = new_caller()
    issue = await call(caller, probes, alice)
    [ticket_sms] = await eventually(lambda: probes.sms_bodies(alice), 60.0)
    assert issue["key"] in ticket_sms
    reply = "The VPN still drops after the restart, error 809"
    sid = await send_sms(caller, alice, reply)

    async def commented() -> list[str]:
        [now] = [i for i in await probes.issues() if i["key"] == issue["key"]]
        return [c["body"] for c in now["comments"] if sid in c["body"]]

    [comment] = await eventually(commented, 60.0)
    assert "error 809" in comment

    # 2. HELP: the line's help text
    await send_sms(caller, alice, "HELP")
    assert HELP_TEXT in await eventually(lambda: _wait_for(probes, alice, HELP_TEXT), 60.0)

    # 3. a number with no open request: a polite answer
    stranger = new_caller()
    await send_sms(caller, stranger, "Hello, is anyone there?")
    assert await eventually(lambda: probes.sms_bodies(stranger), 60.0) == [NO_OPEN_REQUEST_TEXT]

    # 4. STOP, a new call: a request, no SMS; START, a new call: the SMS again
    bob = new_caller()
    await send_sms(caller, bob, "STOP")
    await asyncio.sleep(1.0)  # the opt-out is remembered before the call's ticket arrives
    first = await call(caller, probes, bob)
    await asyncio.sleep(3.0)  # an SMS for it would be out by now
    assert await probes.sms_bodies(bob) == []
    await send_sms(caller, bob, "start")
    await asyncio.sleep(1.0)
    second = await call(caller, probes, bob)
    [again] = await eventually(lambda: probes.sms_bodies(bob), 60.0)
    assert second["key"] in again and first["key"] not in again

    # 5. once the request is resolved, a reply is not added: the polite answer instead
    await probes.move_issue(issue["key"], "Resolved", "DONE")
    late = await send_sms(caller, alice, "Thanks, all good now")
    await eventually(lambda: _wait_for(probes, alice, NO_OPEN_REQUEST_TEXT), 60.0)
    await asyncio.sleep(1.0)
    assert await commented() == [comment] and late not in str(await commented())


async def _wait_for(probes: Probes, number: str, body: str) -> list[str]:
    bodies = await probes.sms_bodies(number)
    return bodies if body in bodies else []


def settings_of(line: dict[str, Any]) -> dict[str, Any]:
    return line | LINE_SETTINGS


async def test_two_way_sms_on_the_embedded_runtime(tmp_path: Path) -> None:
    def replies_on(config: dict[str, Any]) -> None:
        config["lines"] = [settings_of(config["lines"][0])]

    async with sandboxed_runtime(SandboxedRuntime, tmp_path, replies_on) as stack:
        await check_two_way_sms(stack.caller(), Probes.embedded(stack))
        for group in ("voiceticket-notifier", "voiceticket-jira-writer"):
            assert await stack.runtime.bus.dead_letters(group) == []


def test_two_way_sms_on_kafka(stack: Stack) -> None:
    line = settings_of(stack.seed()["lines"][0])

    async def check(probes: Probes, caller: CallerSimulator) -> None:
        put = await probes.admin("PUT", f"/v1/lines/{SUPPORT_LINE}", line)
        assert put.status_code == 200, put.text
        await asyncio.sleep(2.0)  # config.changed drops the cached views
        await check_two_way_sms(caller, probes)

    run_on_kafka(stack, "two-way SMS", check)
