"""The IVR menu's request type (issue #16, part 2) wins over the analysis' intent; a screened call
on a screened_request line still goes to the screened type; the choice is on the issue property."""

from __future__ import annotations

from jira_writer_testkit import analyzed

from voiceticket_common.events.v1 import IvrChoice
from voiceticket_common.runtime_views import JiraWriterLine
from voiceticket_jira_writer.handlers import RequestTarget, request_target
from voiceticket_jira_writer.request_content import call_property

LINE = JiraWriterLine(
    number="+15005550006",
    service_desk_id="1",
    request_type_id="45",
    request_types={"incident": "41", "complaint": "44"},
    screening_action="screened_request",
    screened_request_type_id="46",
)
CHOSEN = IvrChoice(digit="2", label="Complaints", request_type_id="44", input="speech")


def test_the_chosen_request_type_wins_over_the_intent() -> None:
    event = analyzed(intent="incident").model_copy(update={"ivr_choice": CHOSEN})
    assert request_target(event, LINE) == RequestTarget("1", "44")


def test_a_choice_without_a_request_type_leaves_it_to_the_intent() -> None:
    chosen = CHOSEN.model_copy(update={"request_type_id": None})
    event = analyzed(intent="incident").model_copy(update={"ivr_choice": chosen})
    assert request_target(event, LINE) == RequestTarget("1", "41")
    assert request_target(analyzed(intent="incident"), LINE) == RequestTarget("1", "41")


def test_screening_still_sets_a_screened_call_apart() -> None:
    event = analyzed(intent="incident").model_copy(update={"ivr_choice": CHOSEN, "screened": "silence"})
    assert request_target(event, LINE) == RequestTarget("1", "46")


def test_the_choice_is_on_the_issue_property() -> None:
    event = analyzed().model_copy(update={"ivr_choice": CHOSEN})
    assert call_property(event)["ivrChoice"] == {
        "digit": "2", "label": "Complaints", "request_type_id": "44", "language": None, "input": "speech"
    }  # fmt: skip
    assert call_property(analyzed())["ivrChoice"] is None
