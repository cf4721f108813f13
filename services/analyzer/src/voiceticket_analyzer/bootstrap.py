"""The analyzer composed: transcripts in, analyses out, over the tenant's language model and the
analysis ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voiceticket_common.db import open_engine
from voiceticket_common.events import CallAnalyzed, CallTranscribed
from voiceticket_common.ledger import purge_outcomes
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import AnalyzerView
from voiceticket_common.service import ConsumerService, RuntimeConfig, on, vault_keys

from .adapters import OpenAIChatModel
from .handlers import AnalyzerDeps, analyze_transcript
from .ledger import SqlAnalysisLedger
from .settings import AnalyzerSettings


@asynccontextmanager
async def adapters(
    settings: AnalyzerSettings, config: RuntimeConfig[AnalyzerView]
) -> AsyncIterator[AnalyzerDeps]:
    """The language-model client and the analysis ledger, closed when the service stops."""
    async with (
        open_engine(settings.database_url) as engine,
        OpenAIChatModel(
            settings.egress_allowed_hosts,
            settings.llm_timeout_seconds,
            allow_tenant_hosts=settings.egress_allow_tenant_hosts,
        ) as model,
        vault_keys(settings) as keys,
    ):
        # Kept analyses are sealed under the call's key, as on the bus (erasure unreads them).
        outcomes = await SqlAnalysisLedger.opened(engine, settings, keys)
        yield AnalyzerDeps(
            config=config,
            model=model,
            max_transcript_chars=settings.max_transcript_chars,
            budget=RetryBudget(settings.llm_retry_attempts, settings.llm_retry_budget_seconds),
            outcomes=outcomes,
        )


ROUTES = [on(CallTranscribed, analyze_transcript, produces=[CallAnalyzed])]
SERVICE = ConsumerService("analyzer", AnalyzerSettings, AnalyzerView, ROUTES, adapters, purge=purge_outcomes)
