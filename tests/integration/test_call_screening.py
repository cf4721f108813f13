"""Screening through the whole pipeline (issue #16, part 5), on the embedded runtime and on six
processes over Kafka, against the spec-validating stand-ins.

Two lines of the demo tenant, each with its ``screening_action``:

- ``no_request``: a caller who only pressed keys (DTMF tones, for which a speech model would
  invent "Thank you for watching.") makes no request and no SMS; the call ends as
  ``call.screened`` and the calls page shows it, with its reason, as screened out;
- ``screened_request``: a silent recording becomes a request in the line's screened request type
  (whatever the analysis), with the reason on the call's issue property, and no SMS;

and a spoken message on the ``no_request`` line is not screened at all: one request, one SMS; a
caller a spam-score add-on flags (Twilio's ``AddOns``) is rejected unanswered on the
``no_request`` line, which screens robocalls, and shows on the calls page as screened out.
"""

from __future__ import annotations

import asyncio
import json
import math
import secrets
import struct
from pathlib import Path
from typing import Any

import pytest
from sandboxed_runtime import SandboxedRuntime, new_caller, sandboxed_runtime
from stack_probes import Probes, run_on_kafka

from voiceticket.samples import sample_calls
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import REQUEST_TYPES, SUPPORT_LINE
from voiceticket_sandbox.devstack import Stack
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.integration

SCREENING_LINE = "+15005550007"  # no_request
SCREENED_TYPE = REQUEST_TYPES["complaint"]  # unlikely for a silent call's analysis: the setting chose it
PHANTOM = "Thank you for watching."
SPAM_SCORE_1 = json.dumps(
    {"status": "successful", "message": None, "code": None, "results": {"nomorobo_spamscore": {
        "request_sid": "XR" + "3" * 32, "status": "successful", "message": None, "code": None,
        "result": {"status": "success", "message": "success", "score": 1}}}}
)  # fmt: skip


def pcm_wav(samples: list[int], rate: int = 8000) -> bytes:
    data = struct.pack(f"<{len(samples)}h", *samples)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1, rate,
                         rate * 2, 2, 16, b"data", len(data))  # fmt: skip
    return header + data


def key_presses(presses: int, rate: int = 8000) -> bytes:
    """The digit 5 (770 + 1336 Hz) pressed again and again: 150 ms on, 150 ms off."""
    on = [int(4000 * (math.sin(2 * math.pi * 770 * i / rate) + math.sin(2 * math.pi * 1336 * i / rate)))
          for i in range(int(0.15 * rate))]  # fmt: skip
    return pcm_wav([s for _ in range(presses) for s in [*on, *([0] * int(0.15 * rate))]])


def silence(seconds: float, rate: int = 8000) -> bytes:
    return pcm_wav([0] * int(seconds * rate))


def screening_lines(line: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the support line as screened_request, a second line as no_request), from the seed's line."""
    screened_request = line | {
        "screening_action": "screened_request",
        "screened_request_type_id": SCREENED_TYPE,
    }
    no_request = line | {"number": SCREENING_LINE, "screening_action": "no_request", "screen_robocalls": True}
    return screened_request, no_request


async def check_screening(caller: CallerSimulator, probes: Probes) -> None:
    # 1. keys pressed on the no_request line: no request, no SMS, screened out on the calls page
    keys_caller = new_caller()
    keys = await caller.play_call(keys_caller, SCREENING_LINE, key_presses(10), PHANTOM, 3)
    assert keys.recording_status == 204

    async def screened_out() -> dict[str, Any] | None:
        call = await probes.call_view(keys.call_sid)
        return call if call and call["screened_out"] else None

    call = await eventually(screened_out, 60.0)
    assert call["screened"] == "tone" and call["request_key"] is None
    stages = {s["name"]: s for s in call["stages"]}
    assert stages["request"]["state"] == "skipped" and "screened (tone)" in stages["request"]["detail"]

    # 2. a silent recording on the screened_request line: a request in the screened type, no SMS
    silent_caller = new_caller()
    silent = await caller.play_call(silent_caller, SUPPORT_LINE, silence(6.0), "", 6)
    [issue] = await eventually(lambda: probes.issues_of(silent.call_sid), 60.0)
    assert issue["requestTypeId"] == SCREENED_TYPE
    assert issue["properties"]["voiceticket.call"]["screened"] == "silence"

    async def requested() -> dict[str, Any] | None:  # the view follows the bus: wait for the request
        call = await probes.call_view(silent.call_sid)
        return call if call and call["request_key"] else None

    view = await eventually(requested, 30.0)
    assert view["screened"] == "silence" and view["screened_out"] is False

    # 3. a spoken message on the no_request line: not screened, a request and an SMS as always
    sample = sample_calls()["password-reset"]
    spoken_caller = new_caller()
    spoken = await caller.play_call(spoken_caller, SCREENING_LINE, sample.audio, sample.transcript,
                                    sample.duration_seconds)  # fmt: skip
    [spoken_issue] = await eventually(lambda: probes.issues_of(spoken.call_sid), 60.0)
    assert spoken_issue["properties"]["voiceticket.call"]["screened"] is None
    assert await eventually(lambda: probes.sms_to(spoken_caller), 60.0)

    # 4. a caller Nomorobo flags, on the no_request line (which screens robocalls): rejected unanswered
    robocall_sid = "CA" + secrets.token_hex(16)
    params = caller.call_params(robocall_sid, new_caller(), SCREENING_LINE) | {"AddOns": SPAM_SCORE_1}
    answered = await caller.post_signed(f"{caller.ingress_url}/twilio/voice", params)
    assert answered.status_code == 200 and "<Reject" in answered.text and "<Record" not in answered.text

    async def rejected() -> dict[str, Any] | None:
        call = await probes.call_view(robocall_sid)
        return call if call and call["screened_out"] else None

    assert (await eventually(rejected, 60.0))["screened"] == "robocall"

    await asyncio.sleep(1.0)  # a late request or SMS for the screened calls would show up now
    assert await probes.issues_of(keys.call_sid) == [] and len(await probes.issues_of(silent.call_sid)) == 1
    assert await probes.issues_of(robocall_sid) == []
    assert await probes.sms_to(keys_caller) == [] and await probes.sms_to(silent_caller) == []


async def test_screening_on_the_embedded_runtime(tmp_path: Path) -> None:
    def two_lines(config: dict[str, Any]) -> None:
        config["lines"] = list(screening_lines(config["lines"][0]))

    async with sandboxed_runtime(SandboxedRuntime, tmp_path, two_lines) as stack:
        await check_screening(stack.caller(), Probes.embedded(stack))
        dead = [
            await stack.runtime.bus.dead_letters(g)
            for g in ("voiceticket-transcriber", "voiceticket-jira-writer")
        ]
        assert dead == [[], []]


def test_screening_on_kafka(stack: Stack) -> None:
    screened_request, no_request = screening_lines(stack.seed()["lines"][0])

    async def check(probes: Probes, caller: CallerSimulator) -> None:
        # New settings for the seeded line, and a new line no service has cached yet.
        put = await probes.admin("PUT", f"/v1/lines/{SUPPORT_LINE}", screened_request)
        assert put.status_code == 200, put.text
        new = await probes.admin("PUT", f"/v1/lines/{SCREENING_LINE}", no_request)
        assert new.status_code in (200, 201), new.text
        await asyncio.sleep(2.0)  # config.changed drops the seeded line's cached view (within ~1 s)
        await check_screening(caller, probes)

    run_on_kafka(stack, "screening", check)
