"""The heuristic triage analysis and the guard's own consistency."""

from __future__ import annotations

import pytest

from voiceticket_analyzer.output_guard import LEAK_MARKERS, grounded
from voiceticket_analyzer.prompt import REMINDER, SYSTEM_PROMPT
from voiceticket_analyzer.triage import (
    LLM_OUTPUT_INVALID,
    LLM_REFUSED,
    LLM_UNAVAILABLE,
    NO_SPEECH,
    TRANSCRIPT_MISSING,
    TRIAGE_MARKERS,
    default_intent,
    first_sentence,
    triage_analysis,
)

REASONS = (NO_SPEECH, TRANSCRIPT_MISSING, LLM_UNAVAILABLE, LLM_REFUSED, LLM_OUTPUT_INVALID)


def test_default_intent_is_the_key_of_the_lines_default_request_type() -> None:
    types = {"incident": "41", "question": 43, "other": "45"}
    assert default_intent(types, "43") == "question"
    assert default_intent(types, 45) == "other"
    assert default_intent(types, "99") == "other"
    assert default_intent({}, None) == "other"


def test_first_sentence_skips_bare_greetings_and_handles_no_punctuation() -> None:
    assert first_sentence("Hello. Hi there. My VPN is down since Monday. Please help.") == (
        "My VPN is down since Monday."
    )
    assert first_sentence("Hello.") == "Hello."
    assert first_sentence("  my   printer is broken  ") == "my printer is broken"
    assert first_sentence("") == ""


@pytest.mark.parametrize("reason", REASONS)
@pytest.mark.parametrize("language", ["en", "de", "es", "fr", "it", None])
def test_every_reason_and_language_gives_a_valid_marked_analysis(reason: str, language: str | None) -> None:
    analysis = triage_analysis("word " * 400, reason, "other", language or "en", language)
    assert len(analysis.summary) <= 255 and analysis.summary.endswith("…")
    assert analysis.description.endswith(TRIAGE_MARKERS)
    assert (analysis.priority.value, analysis.sentiment.value, analysis.entities) == ("medium", "neutral", [])


def test_leak_markers_are_phrases_of_our_own_instructions() -> None:
    ours = " ".join((SYSTEM_PROMPT + " " + REMINDER).casefold().split())
    assert all(marker in ours for marker in LEAK_MARKERS)


@pytest.mark.parametrize(
    ("value", "transcript", "expected"),
    [
        ("44817723", "my account number is four four eight one seven seven two three", True),
        ("Jonas Weber", "Mein Name ist Jonas Weber.", True),
        ("4111 1111 1111 1111", "my account is 44817723", False),
        ("", "anything", False),
    ],
)
def test_grounding(value: str, transcript: str, expected: bool) -> None:
    assert grounded(value, transcript) is expected
