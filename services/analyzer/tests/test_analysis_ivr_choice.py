"""The IVR menu's language (issue #16, part 2) is the call's: an enforced line writes the request in
the chosen language instead of its own; an auto line still writes in the language the caller spoke."""

from __future__ import annotations

from analyzer_testkit import GOOD
from test_analyze import FakeModel, analyse, deps, ok, transcribed

from voiceticket_analyzer.triage import TRIAGE_MARKERS
from voiceticket_common.bus import TransientError
from voiceticket_common.events.v1 import IvrChoice

ENGLISH = IvrChoice(digit="2", label="English", language="en", request_type_id="44", input="dtmf")


async def test_an_enforced_line_writes_in_the_chosen_language() -> None:
    model = FakeModel(ok(GOOD))  # the line enforces "de"; the caller chose English
    event = await analyse(deps(model, "enforced"), transcribed(ivr_choice=ENGLISH))
    assert "ISO 639-1 code 'en'" in model.calls[0][0][0]["content"]
    assert event.ticket_language == "en" and event.ivr_choice == ENGLISH


async def test_without_a_choice_the_enforced_language_is_the_lines() -> None:
    model = FakeModel(ok(GOOD))
    event = await analyse(deps(model, "enforced"), transcribed())
    assert event.ticket_language == "de" and event.ivr_choice is None


async def test_an_auto_line_writes_in_the_spoken_language_whatever_the_choice() -> None:
    model = FakeModel(ok(GOOD))
    chosen = ENGLISH.model_copy(update={"language": "fr"})
    event = await analyse(deps(model, "auto"), transcribed(ivr_choice=chosen))
    assert event.ticket_language == "en"  # what the model heard


async def test_the_triage_texts_are_in_the_chosen_language() -> None:
    model = FakeModel(TransientError("down"))
    event = await analyse(deps(model, "enforced", attempts=1), transcribed(ivr_choice=ENGLISH))
    assert event.degraded_reason == "llm_unavailable" and event.ticket_language == "en"
    assert event.analysis.description.endswith(TRIAGE_MARKERS[0])  # English, not the line's German
