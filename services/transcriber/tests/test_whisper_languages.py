"""The language a server reports, in the words or codes servers use, as the events' ISO 639-1."""

from __future__ import annotations

import pytest

from voiceticket_transcriber.whisper_languages import iso_language


@pytest.mark.parametrize(
    ("reported", "iso"),
    [
        ("german", "de"),  # OpenAI's verbose_json
        ("English", "en"),
        ("de", "de"),  # faster-whisper-server, whisper.cpp
        ("pt-BR", "pt"),
        ("javanese", "jv"),  # Whisper's "jw" is ISO "jv"
        ("jw", "jv"),
        ("haitian creole", "ht"),
        ("flemish", "nl"),  # Whisper's aliases
        ("cantonese", "yue"),  # no two-letter code: passed as Whisper has it
        (" Spanish ", "es"),
    ],
)
def test_names_and_codes_become_iso_639_1(reported: str, iso: str) -> None:
    assert iso_language(reported) == iso


@pytest.mark.parametrize("reported", [None, "", "klingon", "xx", 42, "zz-ZZ"])
def test_anything_else_is_unknown_rather_than_passed_on(reported: object) -> None:
    assert iso_language(reported) is None
