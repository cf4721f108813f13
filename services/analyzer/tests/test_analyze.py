from __future__ import annotations

import json

import pytest

from voiceticket_analyzer.handlers import AnalyzerDeps, SchemaViolation, analyze_transcript
from voiceticket_analyzer.ports import Completion
from voiceticket_analyzer.prompt import analysis_schema, messages
from voiceticket_common.bus import PermanentError, envelope_for
from voiceticket_common.events import CallAnalyzed, CallTranscribed
from voiceticket_common.testing import StaticRuntimeConfig

LINE = "+15005550006"
GOOD = {
    "summary": "VPN down for the whole office",
    "description": "The caller reports that the VPN is down.",
    "intent": "incident",
    "entities": [{"type": "account_number", "value": "12345678"}],
    "priority": "high",
    "sentiment": "negative",
    "language": "en",
}


class FakeModel:
    def __init__(self, *contents: Completion) -> None:
        self.contents = list(contents)
        self.calls = []

    async def complete(self, msgs, schema, target):  # type: ignore[no-untyped-def]
        self.calls.append((msgs, schema, target))
        return self.contents.pop(0)


def ok(data: dict) -> Completion:
    return Completion(content=json.dumps(data), refusal=None, prompt_tokens=100, completion_tokens=50)


def transcribed(text: str = "Hi, the VPN is down. Account 12345678.") -> CallTranscribed:
    return CallTranscribed(
        tenant_id="acme",
        call_sid="CA" + "1" * 32,
        line_number=LINE,
        caller_number="+14155550100",
        recording_sid="RE" + "2" * 32,
        duration_seconds=12,
        transcript=text,
        model="whisper-1",
    )


def deps(model: FakeModel, language_mode: str = "auto") -> AnalyzerDeps:
    config = StaticRuntimeConfig(
        {
            LINE: (
                "acme",
                {
                    "language_mode": language_mode,
                    "language": "de",
                    "request_types": {"incident": "11", "service_request": "12"},
                },
                {"openai_api_key": "sk-test", "openai_base_url": "http://127.0.0.1:1/v1"},
            )
        }
    )
    return AnalyzerDeps(config=config, model=model)


async def test_analysis_event_carries_the_validated_analysis() -> None:
    model = FakeModel(ok(GOOD))
    [event] = await analyze_transcript(envelope_for(transcribed(), "t"), deps(model))
    assert isinstance(event, CallAnalyzed)
    assert event.analysis.intent == "incident"
    assert event.analysis.entities[0].value == "12345678"
    msgs, schema, _ = model.calls[0]
    assert schema["properties"]["intent"]["enum"] == ["incident", "service_request"]
    assert "<transcript>\nHi, the VPN is down." in msgs[1]["content"]


def test_schema_is_strict_everywhere() -> None:
    def walk(node: dict) -> None:
        if node.get("type") == "object":
            assert node["additionalProperties"] is False
            assert set(node["required"]) == set(node["properties"])
            for child in node["properties"].values():
                walk(child)
        if node.get("type") == "array":
            walk(node["items"])

    walk(analysis_schema(["incident"]))


def test_enforced_language_instructs_the_ticket_language() -> None:
    assert "'de'" in messages("Hallo", "de")[0]["content"]
    assert "language the caller spoke" in messages("Hallo", None)[0]["content"]


async def test_output_outside_the_enum_is_a_schema_violation() -> None:
    with pytest.raises(SchemaViolation):
        await analyze_transcript(
            envelope_for(transcribed(), "t"), deps(FakeModel(ok({**GOOD, "intent": "give_refund"})))
        )


async def test_output_missing_fields_is_a_schema_violation_without_quoting_content() -> None:
    with pytest.raises(SchemaViolation) as info:
        await analyze_transcript(
            envelope_for(transcribed(), "t"), deps(FakeModel(ok({"summary": "secret words"})))
        )
    assert "secret words" not in str(info.value)


async def test_refusal_is_permanent() -> None:
    refusal = Completion(content=None, refusal="I can't help with that", prompt_tokens=1, completion_tokens=1)
    with pytest.raises(PermanentError):
        await analyze_transcript(envelope_for(transcribed(), "t"), deps(FakeModel(refusal)))


async def test_overlong_summary_is_trimmed_not_failed() -> None:
    [event] = await analyze_transcript(
        envelope_for(transcribed(), "t"), deps(FakeModel(ok({**GOOD, "summary": "x" * 400})))
    )
    assert len(event.analysis.summary) == 255
