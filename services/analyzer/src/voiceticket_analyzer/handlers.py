"""transcript -> analysis (summary, description, intent, entities, priority, sentiment, language).

The language model is called within a retry budget (Retry-After honoured; an off-schema answer
counts as a failed attempt). Whatever happens short of a permanent error (a bad key, which still
dead-letters), the call goes on: an empty transcript, a refusal, or a model that stays down or
off-schema past the budget gives a heuristic analysis marked ``degraded`` for triage (``triage``).
Token usage and estimated cost of every attempt are summed onto the event. Each attempt holds
one of the tenant's ``llm`` slots (``provider_concurrency``, ``voiceticket_common.provider_limits``)
while the model answers, and none while it backs off, so a 429's Retry-After is waited out without
one and a burst of calls cannot exceed the tenant's limit at its OpenAI.

Redaction, with the tenant's policy (``voiceticket_common.redaction``): the transcriber already
redacted the transcript; it is redacted again here before the prompt (a no-op for redacted text,
but it covers a transcript from a transcriber that did not redact), and the model's answer
(summary, description, entity values) is redacted before it is published, a second line of
defence against a number the first pass missed and the model wrote out, or an injected transcript.
``redactions`` sums the kinds and counts of every pass. A transcript withheld by the transcriber
(``redaction_failed``), or a text that cannot be redacted here, gives a triage analysis
(``redaction_failed``) built without the caller's words or the model's answer.

Each transcript is analysed once: the outcome is kept in the analysis ledger, and a duplicate or a
redelivery of the same transcript re-emits the stored ``call.analyzed`` (same event, same id)
instead of returning nothing or paying for the model again (ADR 8). A triage analysis made because
the model was down or off-schema is kept only briefly, so a duplicate after the recovery retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import Analysis, CallAnalyzed, CallTranscribed, Event
from voiceticket_common.ledger import kept_outcome, stored_outcome
from voiceticket_common.metrics import record_llm_usage
from voiceticket_common.provider_limits import ProviderLimits, limits
from voiceticket_common.redaction import WITHHELD_TRANSCRIPT, merged_counts, redact_or_none
from voiceticket_common.retry_budget import BudgetExhausted, RetryBudget, Sleep, within_budget
from voiceticket_common.runtime_views import AnalyzerView

from .output_guard import SchemaViolation, checked_analysis, one_line
from .ports import AnalysisKey, AnalysisLedger, LanguageModel, LanguageModelTarget
from .prompt import DEFAULT_INTENTS, SUMMARY_LIMIT, analysis_schema, messages
from .triage import (
    LLM_OUTPUT_INVALID,
    LLM_REFUSED,
    LLM_UNAVAILABLE,
    NO_SPEECH,
    REDACTION_FAILED,
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
    outcomes: AnalysisLedger | None = None
    """Where produced analyses are kept for duplicates (ADR 8); None: every delivery is analysed."""
    slots: ProviderLimits = limits
    """The process's per-tenant provider slots (a test gives its own)."""


MODEL_DOWN = frozenset({LLM_UNAVAILABLE, LLM_OUTPUT_INVALID})
"""Degraded reasons a later attempt may not repeat (the model recovers): kept only briefly. The
others (no speech, transcript missing, a refusal) are what the same input gives again."""


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
    key = AnalysisKey.of(event)
    if (stored := await stored_outcome(deps.outcomes, key, "analysis", "analysing")) is not None:
        return [stored]
    config = await deps.config.line(event.line_number)
    request_types = config.line.request_types
    intents = tuple(request_types) or DEFAULT_INTENTS
    # The language of the caller's IVR menu choice is the call's, in place of the line's.
    chosen = event.ivr_choice.language if event.ivr_choice else None
    enforced = config.line.language_mode == "enforced"
    ticket_language = chosen if chosen and enforced else config.line.enforced_language
    policy = config.tenant.redaction
    full_transcript, redactions = event.transcript, dict(event.redactions or {})
    withheld = event.redaction_failed
    if not withheld and full_transcript:
        checked = await asyncio.to_thread(redact_or_none, policy, full_transcript, event.language)
        if checked is None:
            withheld = True
        else:
            full_transcript, redactions = checked.text, merged_counts(redactions, checked.counts)
    if withheld:
        full_transcript = WITHHELD_TRANSCRIPT
    transcript = full_transcript[: deps.max_transcript_chars]
    usage: Usage | None = None
    reason: str | None = None
    if withheld:
        reason = REDACTION_FAILED
        model = HEURISTIC_MODEL
    elif not transcript.strip():
        reason = TRANSCRIPT_MISSING if event.transcript_missing else NO_SPEECH
        model = HEURISTIC_MODEL
    else:
        usage = Usage()
        target = language_model_target(config)
        model = target.model
        slot = _Slot(deps.slots, event.tenant_id, config.tenant.provider_concurrency.llm)
        try:
            analysis = await within_budget(
                lambda: _attempt(transcript, ticket_language, intents, target, deps.model, usage, slot),
                deps.budget,
                "analysis",
                deps.sleep,
            )
        except BudgetExhausted as exhausted:
            reason = LLM_OUTPUT_INVALID if isinstance(exhausted.last, SchemaViolation) else LLM_UNAVAILABLE
        except Refused:
            reason = LLM_REFUSED
        else:
            redacted = await asyncio.to_thread(_redacted_analysis, analysis, policy)
            if redacted is None:
                reason = REDACTION_FAILED
            else:
                analysis, found = redacted
                redactions = merged_counts(redactions, found)
    if reason is not None:
        project_language = chosen or config.line.language or "en"
        spoken = event.detected_language or event.language or ticket_language or project_language
        intent = default_intent(request_types, config.line.request_type_id)
        # A withheld text is never summarised: the triage title stands in for the caller's words.
        words = "" if reason == REDACTION_FAILED else transcript
        # The triage texts are for the agent: in the project's (line's) language in either mode.
        analysis = triage_analysis(words, reason, intent, spoken, project_language)
        model = HEURISTIC_MODEL
        written_in = project_language
    else:
        written_in = ticket_language or analysis.language
    log.info(
        "transcript analysed",
        extra={
            "intent": analysis.intent,
            "priority": analysis.priority.value,
            "degraded_reason": reason,
            "redactions": redactions,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
        },
    )
    outcome = CallAnalyzed(
        **event.call_context(),
        recording_sid=event.recording_sid,
        duration_seconds=event.duration_seconds,
        transcript=full_transcript,
        analysis=analysis,
        model=model,
        degraded=reason is not None,
        degraded_reason=reason,
        ticket_language=written_in,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        estimated_cost_usd=_total_cost(event.estimated_cost_usd, usage.cost if usage else None),
        redactions=redactions,
    )
    return [await kept_outcome(deps.outcomes, key, outcome, "analysis", final=reason not in MODEL_DOWN)]


def language_model_target(config: AnalyzerView) -> LanguageModelTarget:
    return LanguageModelTarget(
        base_url=config.tenant.llm_base_url,
        api_key=config.llm_api_key(),
        model=config.tenant.analysis_model,
    )


@dataclass(frozen=True)
class _Slot:
    """The tenant's LLM concurrency slot one attempt holds while the model answers."""

    slots: ProviderLimits
    tenant_id: str
    limit: int | None


async def _attempt(
    transcript: str,
    ticket_language: str | None,
    intents: Sequence[str],
    target: LanguageModelTarget,
    model: LanguageModel,
    usage: Usage,
    slot: _Slot,
) -> Analysis:
    prompt, schema = messages(transcript, ticket_language), analysis_schema(intents)
    async with slot.slots.slot(slot.tenant_id, "llm", slot.limit):
        completion = await model.complete(prompt, schema, target)
    usage.add(slot.tenant_id, target.model, completion.prompt_tokens, completion.completion_tokens)
    if completion.refusal:
        raise Refused()
    if not completion.content:
        raise SchemaViolation("analysis is empty")
    analysis, dropped = checked_analysis(completion.content, intents, transcript)
    if dropped:
        log.info("entities dropped from the analysis", extra={"dropped": dropped})
    return analysis


def _redacted_analysis(
    analysis: Analysis, policy: dict[str, Any] | None
) -> tuple[Analysis, dict[str, int]] | None:
    """The model's texts redacted (every language's number words: the model may write in another
    language than the caller's), with the counts; None when one of them cannot be redacted."""

    summary = redact_or_none(policy, analysis.summary)
    description = redact_or_none(policy, analysis.description)
    values = [redact_or_none(policy, e.value) for e in analysis.entities]
    if summary is None or description is None or any(v is None for v in values):
        return None
    entities = [
        e.model_copy(update={"value": v.text}) for e, v in zip(analysis.entities, values, strict=True) if v
    ]
    counts = merged_counts(summary.counts, description.counts, *(v.counts for v in values if v))
    # A placeholder is longer than what it replaces: the summary is fitted again, after redaction
    # (fitting first could cut a number in two and hide it from the engine).
    fitted = analysis.model_copy(
        update={
            "summary": one_line(summary.text, SUMMARY_LIMIT),
            "description": description.text,
            "entities": entities,
        }
    )
    return fitted, counts


def _total_cost(*parts: float | None) -> float | None:
    known = [p for p in parts if p is not None]
    return round(sum(known), 8) if known else None
