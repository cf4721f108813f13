"""transcript -> analysis (summary, description, intent, entities, priority, sentiment, language).

The language model is called within a retry budget (Retry-After honoured; an off-schema answer
counts as a failed attempt). Whatever happens short of a permanent error (a bad key, which still
dead-letters), the call goes on: an empty transcript, a refusal, or a model that stays down or
off-schema past the budget gives a heuristic analysis marked ``degraded`` for triage (``triage``).
Token usage and estimated cost of every attempt are summed onto the event.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import Analysis, CallAnalyzed, CallTranscribed, Event
from voiceticket_common.metrics import record_llm_usage
from voiceticket_common.retry_budget import BudgetExhausted, RetryBudget, Sleep, within_budget
from voiceticket_common.runtime_views import AnalyzerView

from .output_guard import SchemaViolation, checked_analysis
from .ports import LanguageModel, LanguageModelTarget
from .prompt import DEFAULT_INTENTS, analysis_schema, messages
from .triage import (
    LLM_OUTPUT_INVALID,
    LLM_REFUSED,
    LLM_UNAVAILABLE,
    NO_SPEECH,
    TRANSCRIPT_MISSING,
    default_intent,
    triage_analysis,
)

__all__ = ["AnalyzerDeps", "SchemaViolation", "analyze_transcript"]

log = logging.getLogger(__name__)

HEURISTIC_MODEL = "heuristic"
"""``CallAnalyzed.model`` when no language model produced the analysis."""


@dataclass
class AnalyzerDeps:
    config: RuntimeConfig[AnalyzerView]
    model: LanguageModel
    max_transcript_chars: int = 20_000
    budget: RetryBudget = field(default_factory=RetryBudget)
    sleep: Sleep = asyncio.sleep


class Refused(Exception):
    """The model declined to answer (a structured-outputs refusal)."""


@dataclass
class Usage:
    """What the call's completions cost, summed over attempts."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    def add(self, tenant: str, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        cost = record_llm_usage(tenant, model, prompt_tokens, completion_tokens)
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


async def analyze_transcript(event: CallTranscribed, deps: AnalyzerDeps) -> Sequence[Event]:
    config = await deps.config.line(event.line_number)
    request_types = config.line.request_types
    intents = tuple(request_types) or DEFAULT_INTENTS
    ticket_language = config.line.enforced_language
    transcript = event.transcript[: deps.max_transcript_chars]
    usage: Usage | None = None
    reason: str | None = None
    if not transcript.strip():
        reason = TRANSCRIPT_MISSING if event.transcript_missing else NO_SPEECH
        model = HEURISTIC_MODEL
    else:
        usage = Usage()
        target = language_model_target(config)
        model = target.model
        try:
            analysis = await within_budget(
                lambda: _attempt(
                    transcript, ticket_language, intents, target, deps.model, usage, event.tenant_id
                ),
                deps.budget,
                "analysis",
                deps.sleep,
            )
        except BudgetExhausted as exhausted:
            reason = LLM_OUTPUT_INVALID if isinstance(exhausted.last, SchemaViolation) else LLM_UNAVAILABLE
        except Refused:
            reason = LLM_REFUSED
    if reason is not None:
        language = event.language or ticket_language or config.line.language or "en"
        intent = default_intent(request_types, config.line.request_type_id)
        analysis = triage_analysis(transcript, reason, intent, language, ticket_language)
        model = HEURISTIC_MODEL
    log.info(
        "transcript analysed",
        extra={
            "intent": analysis.intent,
            "priority": analysis.priority.value,
            "degraded_reason": reason,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
        },
    )
    return [
        CallAnalyzed(
            **event.call_context(),
            recording_sid=event.recording_sid,
            duration_seconds=event.duration_seconds,
            transcript=event.transcript,
            analysis=analysis,
            model=model,
            degraded=reason is not None,
            degraded_reason=reason,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            estimated_cost_usd=_total_cost(event.estimated_cost_usd, usage.cost if usage else None),
        )
    ]


def language_model_target(config: AnalyzerView) -> LanguageModelTarget:
    return LanguageModelTarget(
        base_url=config.tenant.openai_base_url,
        api_key=config.openai_api_key(),
        model=config.tenant.analysis_model,
    )


async def _attempt(
    transcript: str,
    ticket_language: str | None,
    intents: Sequence[str],
    target: LanguageModelTarget,
    model: LanguageModel,
    usage: Usage,
    tenant: str,
) -> Analysis:
    completion = await model.complete(messages(transcript, ticket_language), analysis_schema(intents), target)
    usage.add(tenant, target.model, completion.prompt_tokens, completion.completion_tokens)
    if completion.refusal:
        raise Refused()
    if not completion.content:
        raise SchemaViolation("analysis is empty")
    analysis, dropped = checked_analysis(completion.content, intents, transcript)
    if dropped:
        log.info("entities dropped from the analysis", extra={"dropped": dropped})
    return analysis


def _total_cost(*parts: float | None) -> float | None:
    known = [p for p in parts if p is not None]
    return round(sum(known), 8) if known else None
