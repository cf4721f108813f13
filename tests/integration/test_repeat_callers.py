"""Repeat callers through the whole pipeline (issue #16, part 1), on the embedded runtime and on six
processes over Kafka, against the spec-validating stand-ins.

A line of the demo tenant with ``repeat_callers`` ``comment``, and the demo line (off):

- the same caller calls twice about the same thing: one request, with a second transcript
  comment (the repeat call's, with its analysis), and a second SMS saying the call was added to it;
- the same caller calls about another matter: a second request;
- the first request is resolved in the Jira stand-in, the caller calls about it again: a new request;
- on the line without the setting, a caller who calls twice about the same thing gets two requests.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sandboxed_runtime import SandboxedRuntime, new_caller, sandboxed_runtime
from stack_probes import Probes, of_call, run_on_kafka

from voiceticket.samples import sample_calls
from voiceticket_common import texts
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import SUPPORT_LINE
from voiceticket_sandbox.devstack import Stack
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.integration

REPEAT_LINE = "+15005550161"


def repeat_line(line: dict[str, Any]) -> dict[str, Any]:
    return line | {"number": REPEAT_LINE, "repeat_callers": "comment", "repeat_window_hours": 24}


async def check_repeat_callers(caller: CallerSimulator, probes: Probes) -> None:
    vpn, password = sample_calls()["vpn-outage"], sample_calls()["password-reset"]

    async def call(number: str, line: str, sample: Any) -> str:
        played = await caller.play_call(
            number, line, sample.audio, sample.transcript, sample.duration_seconds
        )
        assert played.recording_status == 204
        return played.call_sid

    async def texts_to(number: str, count: int) -> list[str]:
        async def enough() -> list[str] | None:
            sent = await probes.sms_bodies(number)
            return sent if len(sent) >= count else None

        return await eventually(enough, 60.0)

    # 1. the same caller twice about the VPN: one request, a second comment, "added to" SMS
    repeat = new_caller()
    first = await call(repeat, REPEAT_LINE, vpn)
    [request] = await eventually(lambda: _found(probes, first), 60.0)
    key = request["key"]
    await texts_to(repeat, 1)
    again = await call(repeat, REPEAT_LINE, vpn)
    [created, added] = await texts_to(repeat, 2)
    assert key in created and key in added
    assert added == texts.repeat_sms_template("en").format(request_key=key)

    async def commented() -> dict[str, Any] | None:
        [now] = [i for i in await probes.issues() if i["key"] == key]
        return now if any(f"call {again}" in c["body"] for c in now["comments"]) else None

    updated = await eventually(commented, 30.0)
    transcripts = [c for c in updated["comments"] if "Call transcript" in c["body"]]
    assert len(transcripts) == 2 and all(c["public"] is False for c in updated["comments"])
    assert "Repeat call" in transcripts[1]["body"] and "VPN" in transcripts[1]["body"]
    assert await probes.issues_of(again) == [], "no request of its own"
    assert updated["properties"]["voiceticket.call"]["callSid"] == first, "the first call's property"

    # 2. the same caller about another matter: a new request
    other = await call(repeat, REPEAT_LINE, password)
    [second_request] = await eventually(lambda: _found(probes, other), 60.0)
    assert second_request["key"] != key
    third_sms = (await texts_to(repeat, 3))[2]
    assert second_request["key"] in third_sms and "added" not in third_sms

    # 3. the VPN request resolved: calling about the VPN again makes a new request
    await probes.move_issue(key, "Resolved", "DONE")
    after = await call(repeat, REPEAT_LINE, vpn)
    [reopened] = await eventually(lambda: _found(probes, after), 60.0)
    assert reopened["key"] not in (key, second_request["key"])

    # 4. the demo line has no repeat_callers: the same caller twice, two requests
    plain = new_caller()
    one = await call(plain, SUPPORT_LINE, vpn)
    await eventually(lambda: _found(probes, one), 60.0)
    two = await call(plain, SUPPORT_LINE, vpn)
    await eventually(lambda: _found(probes, two), 60.0)

    await asyncio.sleep(1.0)  # a late duplicate would show up now
    all_issues = await probes.issues()
    assert len(of_call(all_issues, first)) == 1 and len(of_call(all_issues, one)) == 1
    assert len(await probes.sms_bodies(repeat)) == 4 and len(await probes.sms_bodies(plain)) == 2


async def _found(probes: Probes, call_sid: str) -> list[dict[str, Any]] | None:
    return await probes.issues_of(call_sid) or None


async def test_repeat_callers_on_the_embedded_runtime(tmp_path: Path) -> None:
    def with_repeat_line(config: dict[str, Any]) -> None:
        config["lines"].append(repeat_line(config["lines"][0]))

    async with sandboxed_runtime(SandboxedRuntime, tmp_path, with_repeat_line) as stack:
        await check_repeat_callers(stack.caller(), Probes.embedded(stack))
        assert await stack.runtime.bus.dead_letters("voiceticket-jira-writer") == []
        assert await stack.runtime.bus.dead_letters("voiceticket-notifier") == []


def test_repeat_callers_on_kafka(stack: Stack) -> None:
    line = repeat_line(stack.seed()["lines"][0])

    async def check(probes: Probes, caller: CallerSimulator) -> None:
        put = await probes.admin("PUT", f"/v1/lines/{REPEAT_LINE}", line)
        assert put.status_code in (200, 201), put.text
        await check_repeat_callers(caller, probes)

    run_on_kafka(stack, "repeat callers", check)
