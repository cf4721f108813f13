"""Redaction in the transcriber (issue #10, point 2): the transcript is redacted right after
speech-to-text, before ``call.transcribed`` is published or kept, with the tenant's policy; what
was redacted is recorded as kinds and counts; a transcript that cannot be redacted is withheld."""

from __future__ import annotations

import re

import pytest
from pcm_samples import tone_wav
from test_speech_to_text_handling import ScriptedEngine, config, deps, run

from voiceticket_common.redaction import WITHHELD_TRANSCRIPT

CARD_CALLS = {
    "en": "Hi, I want to pay my invoice. My card number is 4111 1111 1111 1111, it expires oh three "
    "twenty seven and the security code is one two three. Thanks.",
    "de": "Hallo, ich möchte meine Rechnung bezahlen. Meine Kartennummer ist fünf fünf fünf fünf, fünf "
    "fünf fünf fünf, fünf fünf fünf fünf, vier vier vier vier, gültig bis März siebenundzwanzig, die "
    "Prüfnummer ist eins zwei drei.",
    "fr": "Bonjour, je voudrais payer ma facture. Ma carte : quatre deux quatre deux, 4242 4242 4242, "
    "valable jusqu'au mars vingt-sept, le cryptogramme est un deux trois.",
}
CARD_DIGITS = re.compile(r"4111|5555|4444|4242|\b123\b|03/?27")
SPOKEN_DIGITS = re.compile(r"\b(one two three|eins zwei drei|un deux trois|fünf fünf|quatre deux)\b")
COUNTS = {"card_expiry": 1, "card_security_code": 1, "payment_card": 1}


def assert_no_card(text: str) -> None:
    assert not CARD_DIGITS.search(text), text
    assert not SPOKEN_DIGITS.search(text), text


class KeepingLedger:
    """The transcript ledger: records what is kept."""

    def __init__(self) -> None:
        self.kept: list[object] = []

    async def find(self, key):  # type: ignore[no-untyped-def]
        return None

    async def keep(self, key, outcome, *, final):  # type: ignore[no-untyped-def]
        self.kept.append(outcome)
        return outcome


@pytest.mark.parametrize("language", sorted(CARD_CALLS))
async def test_a_spoken_card_is_redacted_before_the_transcript_is_published(language: str) -> None:
    ledger = KeepingLedger()
    engine = ScriptedEngine(CARD_CALLS[language])
    event = await run(deps(tone_wav(2.0, frequency=611), engine, outcomes=ledger))
    assert_no_card(event.transcript)
    assert "[redacted: payment card]" in event.transcript
    assert event.redactions == COUNTS and event.redaction_failed is False
    assert ledger.kept == [event]  # the ledger only ever holds the redacted transcript
    assert_no_card(event.transcript)


async def test_tenant_settings_choose_what_is_redacted() -> None:
    text = "Contract VT-123456, mail me at jo@example.com, card 4111 1111 1111 1111."
    settings = {
        "emails": True,
        "payment_cards": False,
        "card_details": False,
        "custom_patterns": [{"kind": "contract_number", "pattern": r"\bVT-\d{6}\b"}],
    }
    event = await run(
        deps(tone_wav(2.0, frequency=611), ScriptedEngine(text), config=config(redaction=settings))
    )
    assert event.transcript == (
        "Contract [redacted: contract number], mail me at [redacted: email address], card 4111 1111 1111 1111."
    )
    assert event.redactions == {"contract_number": 1, "email": 1}


async def test_nothing_found_records_empty_counts_and_silence_needs_no_redaction() -> None:
    event = await run(deps(tone_wav(2.0, frequency=611), ScriptedEngine("My printer is broken.")))
    assert (event.transcript, event.redactions) == ("My printer is broken.", {})


@pytest.mark.parametrize(
    "settings",
    [{"max_input_chars": 20}, {"custom_patterns": [{"kind": "x", "pattern": "(a+)+"}]}, {"bogus": True}],
    ids=["too-long-for-the-engine", "refused-pattern", "unknown-setting"],
)
async def test_a_transcript_that_cannot_be_redacted_is_withheld_not_lost(settings: dict[str, object]) -> None:
    ledger = KeepingLedger()
    engine = ScriptedEngine(CARD_CALLS["en"])
    event = await run(
        deps(tone_wav(2.0, frequency=611), engine, config=config(redaction=settings), outcomes=ledger)
    )
    assert event.transcript == WITHHELD_TRANSCRIPT and event.redaction_failed is True
    assert event.transcript_missing is False and event.redactions == {}
    assert_no_card(event.transcript)
    assert ledger.kept == [event]
