"""transcript -> analysis (summary, description, intent, entities, priority, sentiment, language)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from voiceticket_common.bus import Envelope, PermanentError, TransientError
from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import Analysis, CallAnalyzed, CallTranscribed, Event
from voiceticket_common.metrics import record_llm_usage

from .ports import LanguageModel, LanguageModelTarget
from .prompt import DEFAULT_INTENTS, analysis_schema, messages

log = logging.getLogger(__name__)


@dataclass
class AnalyzerDeps:
    config: RuntimeConfig
    model: LanguageModel
    max_transcript_chars: int = 20_000


class SchemaViolation(TransientError):
    """The model's output broke the schema; models are not deterministic, so one more try helps."""


async def analyze_transcript(envelope: Envelope, deps: AnalyzerDeps) -> Sequence[Event]:
    event = envelope.event
    assert isinstance(event, CallTranscribed)
    config = await deps.config.line(event.line_number)
    intents = tuple(config.line.get("request_types") or {}) or DEFAULT_INTENTS
    ticket_language = config.line.get("language") if config.line.get("language_mode") == "enforced" else None
    schema = analysis_schema(intents)
    target = LanguageModelTarget(
        base_url=config.tenant.get("openai_base_url") or "https://api.openai.com/v1",
        api_key=config.secret("openai_api_key"),
        model=config.tenant.get("analysis_model") or "gpt-4o-mini",
    )
    transcript = event.transcript[: deps.max_transcript_chars]
    completion = await deps.model.complete(messages(transcript, ticket_language), schema, target)
    record_llm_usage(event.tenant_id, target.model, completion.prompt_tokens, completion.completion_tokens)
    if completion.refusal or not completion.content:
        raise PermanentError("the language model refused to analyse the transcript")
    try:
        analysis = Analysis.model_validate(_fit(json.loads(completion.content)))
    except json.JSONDecodeError:
        raise SchemaViolation("analysis is not JSON") from None
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) + ": " + e["type"] for e in exc.errors())
        raise SchemaViolation(f"analysis broke the schema ({fields})") from None
    if analysis.intent not in intents:
        raise SchemaViolation("analysis intent outside the line's request types")
    log.info(
        "transcript analysed",
        extra={
            "intent": analysis.intent,
            "priority": analysis.priority.value,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        },
    )
    return [
        CallAnalyzed(
            tenant_id=event.tenant_id,
            call_sid=event.call_sid,
            line_number=event.line_number,
            caller_number=event.caller_number,
            recording_sid=event.recording_sid,
            duration_seconds=event.duration_seconds,
            transcript=event.transcript,
            analysis=analysis,
            model=target.model,
        )
    ]


def _fit(data: object) -> object:
    """Trim what Jira would reject anyway, instead of failing the call over a long summary."""

    if isinstance(data, dict):
        summary = data.get("summary")
        if isinstance(summary, str):
            summary = " ".join(summary.split())
            data["summary"] = summary if len(summary) <= 255 else summary[:254] + "…"
        language = data.get("language")
        if isinstance(language, str):
            data["language"] = language.strip().lower()[:2]
    return data
