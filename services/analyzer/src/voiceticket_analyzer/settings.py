from __future__ import annotations

from pydantic import Field, model_validator

from voiceticket_common.retry_budget import fits_poll_interval
from voiceticket_common.settings import ServiceSettings


class AnalyzerSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.local/analyzer.db"
    """The analysis ledger's database (Postgres in a deployment): produced analyses, kept so a
    duplicate transcript is not analysed again (ADR 8)."""
    outcome_retention_seconds: float = Field(default=86_400.0, gt=0.0)
    """How long a produced ``call.analyzed`` (transcript, caller's number, entities: personal data)
    is kept for duplicates; expired rows are deleted as new ones are written."""
    degraded_outcome_seconds: float = Field(default=300.0, ge=0.0)
    """How long a triage analysis made because the model was down or off-schema is kept: long
    enough for a burst of redeliveries, short enough that a duplicate after the recovery retries."""
    llm_timeout_seconds: float = 60.0
    max_transcript_chars: int = 20_000
    llm_retry_attempts: int = Field(default=40, ge=1)
    """Cap on calls to the language model per transcript; the budget is ``llm_retry_budget_seconds``.
    After 4 off-schema answers (paid completions) the call degrades whatever time is left
    (``RetryBudget.rejected_answers``)."""
    llm_retry_budget_seconds: float = Field(default=120.0, ge=0.0)
    """How long a transcript's analysis keeps retrying a rate-limited or unavailable model, from
    the first attempt (exponential backoff with jitter, Retry-After honoured). 120 s outlasts two of
    OpenAI's per-minute rate-limit windows; past it the request is created from a heuristic
    analysis, marked for triage, instead of the call being lost. Budget plus
    ``llm_timeout_seconds`` must stay at most 240 s, inside the consumer's 300 s poll interval."""

    @model_validator(mode="after")
    def _budget_fits_the_poll_interval(self) -> AnalyzerSettings:
        fits_poll_interval(self.llm_retry_budget_seconds, self.llm_timeout_seconds, "analysis")
        return self
