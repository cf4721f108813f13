"""The analyzer composed: transcripts in, analyses out, over the tenant's language model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voiceticket_common.events import CallAnalyzed, CallTranscribed
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import AnalyzerView
from voiceticket_common.service import ConsumerService, RuntimeConfig, on

from .adapters import OpenAIChatModel
from .handlers import AnalyzerDeps, analyze_transcript
from .settings import AnalyzerSettings


@asynccontextmanager
async def adapters(
    settings: AnalyzerSettings, config: RuntimeConfig[AnalyzerView]
) -> AsyncIterator[AnalyzerDeps]:
    """The language-model client, closed when the service stops."""
    async with OpenAIChatModel(settings.egress_allowed_hosts, settings.llm_timeout_seconds) as model:
        yield AnalyzerDeps(
            config=config,
            model=model,
            max_transcript_chars=settings.max_transcript_chars,
            budget=RetryBudget(settings.llm_retry_attempts, settings.llm_retry_budget_seconds),
        )


ROUTES = [on(CallTranscribed, analyze_transcript, produces=[CallAnalyzed])]
SERVICE = ConsumerService("analyzer", AnalyzerSettings, AnalyzerView, ROUTES, adapters)
