"""Built-in texts per language; a line's own text wins, a stored built-in one follows the language."""

from __future__ import annotations

import pytest

from voiceticket_common import texts
from voiceticket_common.runtime_views import DEFAULT_GREETING, DEFAULT_SMS_TEMPLATE, DEFAULT_VOICE
from voiceticket_common.sms_template import check_template


@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
def test_every_kind_of_text_has_a_default_in_the_four_languages(language: str) -> None:
    for table in (
        texts.GREETINGS,
        texts.RECORDING_NOTICES,
        texts.GOODBYES,
        texts.SMS_TEMPLATES,
        texts.VOICES,
    ):
        assert table[language].strip()
    assert check_template(texts.SMS_TEMPLATES[language])  # notifier can render every template


def test_a_stored_built_in_text_means_the_built_in_text_of_the_language_asked_for() -> None:
    assert texts.greeting("de", DEFAULT_GREETING) == texts.GREETINGS["de"]
    assert texts.greeting("fr", texts.GREETINGS["de"]) == texts.GREETINGS["fr"]  # any language's
    assert texts.sms_template("es", DEFAULT_SMS_TEMPLATE) == texts.SMS_TEMPLATES["es"]
    assert texts.recording_notice("de", "  ") == texts.RECORDING_NOTICES["de"]  # blank: built-in
    assert texts.goodbye("fr-CA").startswith("Merci")
    assert texts.greeting("ja", None) == DEFAULT_GREETING  # no Japanese text: English


def test_a_lines_own_text_and_voice_win_in_every_language() -> None:
    assert texts.greeting("de", "Willkommen bei Acme.") == "Willkommen bei Acme."
    assert texts.sms_template("fr", "Ticket {request_key}") == "Ticket {request_key}"
    assert texts.voice("de", "Google.de-DE-Standard-A") == "Google.de-DE-Standard-A"


def test_a_built_in_voice_becomes_the_voice_of_the_language() -> None:
    assert texts.voice("de", DEFAULT_VOICE) == "Polly.Vicki"
    assert texts.voice("es", "Polly.Vicki") == "Polly.Lucia"
    assert texts.voice("en", DEFAULT_VOICE) == DEFAULT_VOICE
