"""Invented text for silence is dropped; the vocabulary prompt stays within Whisper's window."""

from __future__ import annotations

import pytest

from voiceticket_transcriber.phantoms import without_phantoms
from voiceticket_transcriber.vocabulary import MAX_PROMPT_CHARS, prompt_for_part, vocabulary_prompt


@pytest.mark.parametrize(
    "transcript",
    [
        "Thank you for watching.",
        "Thanks for watching!",
        "Subtitles by the Amara.org community",
        "you",
        "Bye.",
        " Thank you. Thank you. ",
        "you you you",
        "[BLANK_AUDIO]",
        "(Music)",
        "Untertitel im Auftrag des ZDF für funk, 2017",
        "Sous-titres réalisés para la communauté d'Amara.org",
        "Gracias por ver el video. Adiós.",
        "",
    ],
)
def test_a_transcript_of_nothing_but_phantom_phrases_is_empty(transcript: str) -> None:
    assert without_phantoms(transcript) == ""


@pytest.mark.parametrize(
    ("transcript", "expected"),
    [
        (
            "My VPN is down since this morning. Thank you.",
            "My VPN is down since this morning. Thank you.",
        ),
        (
            "Please call me back about order 5531. Thanks for watching!",
            "Please call me back about order 5531.",
        ),
        ("Thank you for the quick help last week, but the printer broke again.",) * 2,
        ("You charged me twice.",) * 2,
    ],
)
def test_real_speech_is_kept_and_only_video_phrases_are_cut_from_it(transcript: str, expected: str) -> None:
    assert without_phantoms(transcript) == expected


def test_vocabulary_prompt_lists_terms_whole_and_within_the_bound() -> None:
    assert vocabulary_prompt([]) is None
    assert vocabulary_prompt(["Acme Router X2", " FlexiBill ", "", "FlexiBill", "VoIP"]) == (
        "Acme Router X2, FlexiBill, VoIP."
    )
    many = [f"Product{i:03d}" for i in range(200)]
    prompt = vocabulary_prompt(many)
    assert prompt is not None and len(prompt) <= MAX_PROMPT_CHARS
    assert prompt.startswith("Product000, Product001") and prompt.endswith(".")
    assert all(term in many for term in prompt.rstrip(".").split(", "))


def test_a_later_part_is_prompted_with_the_end_of_the_previous_one() -> None:
    previous = "word " * 100 + "and my account number is 4481."
    prompt = prompt_for_part("FlexiBill.", previous)
    assert prompt is not None and prompt.startswith("FlexiBill. ")
    assert prompt.endswith("my account number is 4481.") and len(prompt) <= len("FlexiBill. ") + 200
    assert prompt_for_part(None, "") is None
