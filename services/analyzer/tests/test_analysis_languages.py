"""Ticket language: enforced lines get the project's language (the model translates), auto lines the
caller's; the triage texts are in the project's language in either mode."""

from __future__ import annotations

from analyzer_testkit import GOOD
from test_analyze import FakeModel, analyse, deps, ok, transcribed

from voiceticket_analyzer.triage import TRIAGE_MARKERS
from voiceticket_common.bus import TransientError


async def test_an_enforced_line_asks_for_a_translation_and_names_the_project_language() -> None:
    # The line enforces "de"; the caller spoke English (the model says so in ``language``).
    model = FakeModel(ok({**GOOD, "summary": "VPN für das ganze Büro ausgefallen"}))
    event = await analyse(deps(model, "enforced"), transcribed())
    system = model.calls[0][0][0]["content"]
    assert "ISO 639-1 code 'de'" in system and "translate" in system
    assert (event.analysis.language, event.ticket_language) == ("en", "de")
    assert not event.degraded


async def test_an_auto_line_writes_in_the_callers_language() -> None:
    model = FakeModel(ok(GOOD))  # the model heard English
    event = await analyse(deps(model, "auto"), transcribed())
    system = model.calls[0][0][0]["content"]
    assert "ISO 639-1 code '" not in system and "description in the language the caller spoke" in system
    assert (event.analysis.language, event.ticket_language) == ("en", "en")


async def test_the_triage_fallback_is_in_the_project_language_and_keeps_the_detected_one() -> None:
    model = FakeModel(TransientError("down"))
    for mode in ("enforced", "auto"):
        event = await analyse(
            deps(model, mode, attempts=1), transcribed(language="en", detected_language="en")
        )
        assert event.degraded_reason == "llm_unavailable"
        assert event.analysis.description.endswith(TRIAGE_MARKERS[1])  # German: the line's language
        assert (event.analysis.language, event.ticket_language) == ("en", "de")
