"""The verdict on made-up outcomes, without infrastructure: each per-call check can fail."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from chaos_callers import PlayedCall
from chaos_harness import Strike
from chaos_observe import World
from chaos_plan import SIZES, Fault, call_marker, make_plan
from chaos_verdict import judge_calls, judge_dead_letters

pytestmark = pytest.mark.chaos

PLAN = make_plan(99, SIZES["ci"])


def played(index: int, *, accepted: bool = True) -> PlayedCall:
    call = PlayedCall(PLAN.calls[index], f"CA{index:032x}", f"RE{index:032x}")
    call.hung_up_at = 1000.0 + index if accepted else None
    return call


def issue(key: str, call: PlayedCall, comments: int = 1, prop: bool = True) -> dict[str, Any]:
    return {
        "key": key,
        "requestFieldValues": {"description": f"CallSid {call.call_sid}"},
        "properties": {"voiceticket.call": {"callSid": call.call_sid}} if prop else {},
        "comments": [{"body": f"Transcript: {call.plan.transcript}", "public": False}] * comments,
    }


def sms(call: PlayedCall, key: str) -> dict[str, Any]:
    return {"to": call.plan.caller, "body": f"Your request {key} is with us.", "accepted_at": 2000.0}


def problems(calls: list[PlayedCall], world: World) -> list[list[str]]:
    return [v.problems for v in judge_calls(calls, world)]


def test_a_call_with_one_request_one_comment_and_one_sms_passes() -> None:
    call = played(0)
    world = World([issue("HELP-1", call)], [sms(call, "HELP-1")] if call.plan.expects_sms else [], {})
    assert problems([call], world) == [[]]


def test_duplicates_losses_and_missing_pieces_are_each_found() -> None:
    calls = [played(i) for i in range(6)] + [played(6, accepted=False)]
    calls = [c for c in calls if c.plan.expects_sms]
    one, two, three, four, five = calls[:5]
    world = World(
        issues=[
            issue("HELP-1", one),
            issue("HELP-2", one),  # two requests for one call
            issue("HELP-3", two, comments=2),  # the transcript twice
            issue("HELP-4", three, prop=False),  # no issue property
            issue("HELP-5", four),
        ],  # five: no request at all
        messages=[
            sms(one, "HELP-1"),
            sms(two, "HELP-3"),
            sms(two, "HELP-3"),
            sms(three, "HELP-4"),
            sms(four, "HELP-50"),
        ],  # fmt: skip
        requests={},
    )
    found = problems(calls, world)
    assert any("duplicate JSM requests" in p for p in found[0])
    assert any("transcript comment 2 times" in p for p in found[1]) and any("2 SMS" in p for p in found[1])
    assert any("issue property" in p for p in found[2])
    assert any("does not carry HELP-5" in p for p in found[3]), "HELP-50 is not HELP-5"
    assert any("lost: no JSM request" in p for p in found[4])
    assert any("lost at the edge" in p for p in found[-1])


def test_a_caller_who_opted_out_must_get_no_sms() -> None:
    call = played(0)
    call.plan = replace(call.plan, opted_out=True, sms_line=True)
    world = World([issue("HELP-1", call)], [sms(call, "HELP-1")], {})
    assert any("opted out" in p for p in problems([call], world)[0])


def test_a_call_to_the_line_with_sms_off_must_get_no_sms_and_needs_none() -> None:
    call = played(0)
    call.plan = replace(call.plan, sms_line=False, opted_out=False)
    assert call.plan.line != replace(call.plan, sms_line=True).line
    assert problems([call], World([issue("HELP-1", call)], [], {})) == [[]]
    found = problems([call], World([issue("HELP-1", call)], [sms(call, "HELP-1")], {}))
    assert any("line with SMS off" in p for p in found[0])


def test_some_calls_of_a_run_go_to_the_line_with_sms_off() -> None:
    quiet = [c for c in make_plan(4, SIZES["full"]).calls if not c.sms_line]
    assert 5 <= len(quiet) <= 40


def test_dead_letters_must_be_exactly_the_poisoned_records() -> None:
    poison = Strike(Fault(1.0, "poison", "notifier"))
    poison.poison_keys.append("CAdeadbeef" + "0" * 24)
    assert judge_dead_letters({"voiceticket-notifier": [poison.poison_keys[0]] * 2}, [poison]) == []
    found = judge_dead_letters({"voiceticket-notifier": ["CA" + "1" * 32]}, [poison])
    assert any("nobody poisoned" in p for p in found) and any("not dead-lettered" in p for p in found)


def test_markers_of_different_calls_never_contain_each_other() -> None:
    markers = [call_marker(i) for i in range(400)]
    assert not any(a in b for a in markers for b in markers if a is not b)
