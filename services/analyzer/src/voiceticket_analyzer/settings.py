from __future__ import annotations

from pydantic import Field

from voiceticket_common.settings import ServiceSettings


class AnalyzerSettings(ServiceSettings):
    llm_timeout_seconds: float = 60.0
    max_transcript_chars: int = 20_000
    llm_retry_attempts: int = Field(default=4, ge=1)
    """Calls to the language model per transcript (an off-schema answer counts as one)."""
    llm_retry_budget_seconds: float = Field(default=60.0, ge=0.0)
    """Longest wait between attempts in all (Retry-After honoured); past the budget the request is
    created from a heuristic analysis, marked for triage, instead of the call being lost."""
