"""The IVR menu through the whole pipeline (issue #16, part 2), on the embedded runtime and on six
processes over Kafka, against the spec-validating stand-ins and the caller simulator answering the
menu's ``<Gather input="dtmf speech">`` with keys or words.

A line of the demo tenant with a two-option menu; option 2 ("Complaints") names the complaint
request type, which the analysis of a password-reset call would never choose:

- a caller pressing 2 gets a request of option 2's request type, the choice on its issue property;
- a caller saying option 2's words likewise (``input`` speech);
- a caller pressing a key no option has hears the menu again politely, then presses 2: likewise;
- a caller who answers nothing, twice, goes on without a choice: the request type the analysis
  decides, as on a line without a menu; nobody is hung up on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sandboxed_runtime import SandboxedRuntime, new_caller, sandboxed_runtime
from stack_probes import Probes, run_on_kafka

from voiceticket.samples import sample_calls
from voiceticket_sandbox.caller import CallerSimulator, Said
from voiceticket_sandbox.demo_tenant import REQUEST_TYPES
from voiceticket_sandbox.devstack import Stack
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.integration

MENU_LINE = "+15005550016"
CHOSEN_TYPE = REQUEST_TYPES["complaint"]
MENU = {
    "prompt": None,
    "options": [
        {"digit": "1", "label": "Technical support", "phrases": ["computer", "laptop"], "request_type_id": None},
        {"digit": "2", "label": "Complaints", "phrases": ["complaint", "unhappy"],
         "request_type_id": CHOSEN_TYPE},
    ],
    "timeout_seconds": 4,
    "attempts": 2,
}  # fmt: skip


def menu_line(line: dict[str, Any]) -> dict[str, Any]:
    return line | {"number": MENU_LINE, "ivr_menu": MENU}


async def check_menu(caller: CallerSimulator, probes: Probes) -> None:
    sample = sample_calls()["password-reset"]

    async def call(*answers: str | Said | None) -> Any:
        played = await caller.play_call(new_caller(), MENU_LINE, sample.audio, sample.transcript,
                                        sample.duration_seconds, keys=list(answers))  # fmt: skip
        assert played.voice_status == 200 and "<Gather" in played.twiml and "<Record" not in played.twiml
        assert played.recording_status == 204, played.gathers
        assert all(status == 200 for _, status, _ in played.gathers)
        assert all("<Hangup" not in twiml for _, _, twiml in played.gathers)
        return played

    # One after another: four calls answered at once may be shed (503) on a busy test machine.
    pressed = await call("2")
    spoken = await call(Said("Yes, I have a complaint."))
    retried = await call("7", "2")
    silent = await call(None, None)
    assert "Sorry, that is not one of the options." in retried.gathers[0][2]
    assert "Sorry, we did not get your choice." in silent.gathers[0][2]
    assert len(silent.gathers) == 2 and "<Record" in silent.gathers[1][2]

    for played, how in ((pressed, "dtmf"), (spoken, "speech"), (retried, "dtmf")):
        [issue] = await eventually(lambda p=played: probes.issues_of(p.call_sid), 90.0)
        assert issue["requestTypeId"] == CHOSEN_TYPE
        choice = issue["properties"]["voiceticket.call"]["ivrChoice"]
        assert (choice["digit"], choice["label"], choice["input"]) == ("2", "Complaints", how)

    [today] = await eventually(lambda: probes.issues_of(silent.call_sid), 90.0)
    prop = today["properties"]["voiceticket.call"]
    assert prop["ivrChoice"] is None
    assert today["requestTypeId"] == REQUEST_TYPES.get(prop["intent"], REQUEST_TYPES["other"])
    assert today["requestTypeId"] != CHOSEN_TYPE

    async def viewed(call_sid: str) -> dict[str, Any] | None:  # the calls page follows the bus
        call = await probes.call_view(call_sid)
        return call if call and call["request_key"] else None

    assert (await eventually(lambda: viewed(spoken.call_sid), 30.0))["ivr_choice"] == "2 Complaints"
    assert (await eventually(lambda: viewed(silent.call_sid), 30.0))["ivr_choice"] is None


async def test_ivr_menu_on_the_embedded_runtime(tmp_path: Path) -> None:
    def with_menu_line(config: dict[str, Any]) -> None:
        config["lines"].append(menu_line(config["lines"][0]))

    async with sandboxed_runtime(SandboxedRuntime, tmp_path, with_menu_line) as stack:
        await check_menu(stack.caller(), Probes.embedded(stack))
        dead = [
            await stack.runtime.bus.dead_letters(g)
            for g in ("voiceticket-transcriber", "voiceticket-jira-writer")
        ]
        assert dead == [[], []]


def test_ivr_menu_on_kafka(stack: Stack) -> None:
    line = menu_line(stack.seed()["lines"][0])

    async def check(probes: Probes, caller: CallerSimulator) -> None:
        put = await probes.admin("PUT", f"/v1/lines/{MENU_LINE}", line)
        assert put.status_code in (200, 201), put.text
        assert put.json()["ivr_menu"]["options"][1]["request_type_id"] == CHOSEN_TYPE
        await check_menu(caller, probes)

    run_on_kafka(stack, "the IVR menu", check)
