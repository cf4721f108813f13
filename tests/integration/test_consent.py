"""Consent by key (issue #10), end to end on the embedded runtime with the caller simulator pressing
keys: the recording exists only after the consent key; a caller who presses another key or none
is not recorded, and becomes one "declined recording" request only on a line that asks for it."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
from sandboxed_runtime import seeded_options

from voiceticket.embedded import EmbeddedRuntime
from voiceticket.samples import sample_calls
from voiceticket_jira_writer.declined_call import DECLINED_SUMMARY
from voiceticket_sandbox import run_sandboxes
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE, seed
from voiceticket_sandbox.testing import invalid_provider_requests

TICKET_LINE = "+15005550007"  # press_key, declined calls become a request
SILENT_LINE = "+15005550008"  # press_key, declined calls become nothing


def consent_seed(twilio: str, openai: str, jira: str) -> dict[str, Any]:
    data = seed(twilio, openai, jira)
    [line] = data["lines"]
    consent = {"consent_mode": "press_key", "consent_key": "1", "sms_enabled": False}
    data["lines"] += [
        {**line, **consent, "number": TICKET_LINE, "on_consent_declined": "ticket"},
        {**line, **consent, "number": SILENT_LINE, "on_consent_declined": "none"},
    ]
    return data


def for_call(issues: list[dict[str, Any]], call_sid: str) -> list[dict[str, Any]]:
    return [i for i in issues if i["properties"].get("voiceticket.call", {}).get("callSid") == call_sid]


def has_record(twiml: str) -> bool:
    return next(ET.fromstring(twiml).iter("Record"), None) is not None


async def test_consent_by_key_end_to_end(tmp_path: Path) -> None:
    samples = list(sample_calls().values())
    async with run_sandboxes() as urls:
        options = await seeded_options(tmp_path, urls, consent_seed(urls.twilio, urls.openai, urls.jira))
        async with EmbeddedRuntime(options) as runtime, httpx.AsyncClient() as client:
            simulator = CallerSimulator(runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, urls.twilio)
            first, second = samples[0], samples[1]
            silent = await simulator.play_absent_call(first.caller, SILENT_LINE, keys=[None, None])
            consented = await simulator.play_call(
                first.caller, TICKET_LINE, first.audio, first.transcript, first.duration_seconds, keys=["1"]
            )
            declined = await simulator.play_absent_call(second.caller, TICKET_LINE, keys=["5", "9"])
            notice = await simulator.play_call(
                second.caller, SUPPORT_LINE, second.audio, second.transcript, second.duration_seconds
            )
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                issues = (await client.get(f"{urls.jira}/_sandbox/issues")).json()
                if len(issues) >= 3:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # the silent line's declined call had its chance too
            issues = (await client.get(f"{urls.jira}/_sandbox/issues")).json()
            invalid = await invalid_provider_requests(client, urls.twilio, urls.openai, urls.jira)

    # A press_key line answers with a <Gather>, never a <Record>, until the right key
    for call in (silent, consented, declined):
        assert call.voice_status == 200 and not has_record(call.twiml) and "<Gather" in call.twiml
    assert [(key, status, has_record(twiml)) for key, status, twiml in consented.gathers] == [
        ("1", 200, True)
    ]
    assert consented.recording_status == 204
    for call in (silent, declined):
        assert all(status == 200 and not has_record(twiml) for _, status, twiml in call.gathers)
        assert len(call.gathers) == 2 and "<Hangup" in call.gathers[-1][2]
        assert call.recording_status is None and call.action_url is None, "nothing was recorded"
    assert "Sorry, that was not the right key." in declined.gathers[0][2]

    assert len(issues) == 3 and for_call(issues, silent.call_sid) == []
    [recorded] = for_call(issues, consented.call_sid)
    assert recorded["properties"]["voiceticket.call"]["consent"] == "pressed" and recorded["comments"]
    [refused] = for_call(issues, declined.call_sid)
    assert refused["requestFieldValues"]["summary"] == DECLINED_SUMMARY
    assert refused["properties"]["voiceticket.call"]["consent"] == "declined"
    assert refused["comments"] == [] and refused.get("attachments", []) == []
    # a notice line is unchanged: greeting, notice, <Record>
    assert has_record(notice.twiml) and "<Gather" not in notice.twiml and notice.gathers == []
    [plain] = for_call(issues, notice.call_sid)
    assert plain["properties"]["voiceticket.call"]["consent"] == "notice"
    assert invalid == []
