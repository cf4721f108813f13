"""Redaction in the analyzer (issue #10, point 2): the prompt carries no card data even when the
transcript arrives unredacted, the model's answer is redacted before it is published (a second
line of defence), the counts of every pass are summed, and a withheld transcript is triaged
without calling the model."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import SecretStr
from test_analyze import GOOD, FakeModel, ok, transcribed

from voiceticket_analyzer.handlers import AnalyzerDeps, analyze_transcript
from voiceticket_analyzer.triage import REDACTION_FAILED
from voiceticket_common.events import CallAnalyzed
from voiceticket_common.redaction import WITHHELD_TRANSCRIPT
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import AnalyzerLine, AnalyzerTenant, AnalyzerView
from voiceticket_common.testing import LINE, RecordingSleep, StaticRuntimeConfig

CARD_CALLS = {
    "en": "My card number is 4111 1111 1111 1111, it expires oh three twenty seven and the security "
    "code is one two three. Please book the renewal.",
    "de": "Meine Kartennummer ist fünf fünf fünf fünf, fünf fünf fünf fünf, fünf fünf fünf fünf, vier "
    "vier vier vier, gültig bis März siebenundzwanzig, die Prüfnummer ist eins zwei drei.",
    "fr": "Ma carte : quatre deux quatre deux, 4242 4242 4242, valable jusqu'au mars vingt-sept, le "
    "cryptogramme est un deux trois.",
}
CARD = re.compile(
    r"4111|5555|4444|4242|\b123\b|one two three|eins zwei drei|un deux trois|fünf fünf|quatre deux"
)
IBAN = "DE89 3704 0044 0532 0130 00"


def deps(model: FakeModel, redaction: dict[str, object] | None = None) -> AnalyzerDeps:
    view = AnalyzerView(
        tenant_id="acme",
        line=AnalyzerLine(
            number=LINE,
            language="en",
            request_types={"incident": "11", "billing": "12"},
            request_type_id="12",
        ),  # fmt: skip
        tenant=AnalyzerTenant(
            openai_api_key=SecretStr("sk-test"), openai_base_url="http://127.0.0.1:1/v1", redaction=redaction
        ),
    )
    return AnalyzerDeps(
        config=StaticRuntimeConfig({LINE: view}),
        model=model,
        budget=RetryBudget(2, 60),
        sleep=RecordingSleep(),
    )


async def analyse(d: AnalyzerDeps, **event: object) -> CallAnalyzed:
    [result] = await analyze_transcript(transcribed(**event), d)  # type: ignore[arg-type]
    assert isinstance(result, CallAnalyzed)
    return result


def prompt_of(model: FakeModel) -> str:
    [(messages, _schema, _target)] = model.calls
    return json.dumps(messages, ensure_ascii=False)


@pytest.mark.parametrize("language", sorted(CARD_CALLS))
async def test_an_unredacted_transcript_is_redacted_before_the_prompt(language: str) -> None:
    # A transcript from a transcriber that did not redact (redactions None): redacted here.
    model = FakeModel(ok({**GOOD, "intent": "billing", "entities": []}))
    event = await analyse(deps(model), text=CARD_CALLS[language], language=language)
    prompt = prompt_of(model)
    assert not CARD.search(prompt) and "[redacted: payment card]" in prompt
    assert not CARD.search(event.transcript)
    assert event.redactions == {"card_expiry": 1, "card_security_code": 1, "payment_card": 1}


async def test_a_redacted_transcript_keeps_the_transcribers_counts() -> None:
    model = FakeModel(ok({**GOOD, "entities": []}))
    text = "Card [redacted: payment card], the VPN is down."
    event = await analyse(deps(model), text=text, redactions={"payment_card": 1})
    assert event.transcript == text and event.redactions == {"payment_card": 1}


async def test_an_echoed_iban_in_the_models_answer_is_redacted() -> None:
    # The transcript names the IBAN in a way the engine does not read; the model writes it out.
    text = "Please refund me. My bank account is the one ending in the usual number, account 12345678."
    answer = {
        **GOOD,
        "summary": f"Refund to IBAN {IBAN}",
        "description": f"The caller asks for a refund to {IBAN.replace(' ', '')}. Card 4111 1111 1111 1111.",
        "entities": [{"type": "account_number", "value": "12345678"}],
    }
    model = FakeModel(ok(answer))
    event = await analyse(deps(model), text=text, redactions={})
    analysis = event.analysis
    assert analysis.summary == "Refund to IBAN [redacted: IBAN]"
    assert "DE89" not in analysis.description and "4111" not in analysis.description
    assert "[redacted: IBAN]" in analysis.description and "[redacted: payment card]" in analysis.description
    assert event.redactions == {"iban": 2, "payment_card": 1}
    assert analysis.entities[0].value == "12345678"  # not a kind the policy redacts


async def test_entity_values_are_redacted_with_the_tenants_own_patterns() -> None:
    text = "My contract is VT-123456 and the VPN is down."
    answer = {**GOOD, "summary": "VPN down on contract VT-123456",
              "entities": [{"type": "account_number", "value": "VT-123456"}]}  # fmt: skip
    model = FakeModel(ok(answer))
    policy = {"custom_patterns": [{"kind": "contract_number", "pattern": r"\bVT-\d{6}\b"}]}
    event = await analyse(deps(model, policy), text=text, redactions={})
    assert "VT-123456" not in prompt_of(model)
    # The prompt already had it redacted, so the entity is only grounded as the placeholder; the
    # model's echo is caught on the way out.
    assert event.analysis.summary == "VPN down on contract [redacted: contract number]"
    assert "VT-123456" not in event.model_dump_json()
    assert event.redactions["contract_number"] >= 2


async def test_a_withheld_transcript_is_triaged_without_the_model() -> None:
    model = FakeModel(ok(GOOD))
    event = await analyse(deps(model), text=WITHHELD_TRANSCRIPT, redaction_failed=True, redactions={})
    assert model.calls == []
    assert (event.degraded, event.degraded_reason) == (True, REDACTION_FAILED)
    assert event.analysis.summary == "Voicemail transcript withheld"
    assert event.transcript == WITHHELD_TRANSCRIPT


async def test_a_transcript_the_analyzer_cannot_redact_is_withheld() -> None:
    model = FakeModel(ok(GOOD))
    event = await analyse(deps(model, {"max_input_chars": 10}), text=CARD_CALLS["en"])
    assert model.calls == []
    assert event.degraded_reason == REDACTION_FAILED and event.transcript == WITHHELD_TRANSCRIPT
    assert not CARD.search(event.model_dump_json(include={"transcript", "analysis"}))
