"""Composition root: what the service consumes and produces, and its adapters built from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from voiceticket_common.bus import Handler
from voiceticket_common.config_client import RuntimeConfigClient
from voiceticket_common.events import CallAnalyzed, CallTranscribed
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.service import ConsumerSpec

from .adapters import OpenAIChatModel
from .handlers import AnalyzerDeps, analyze_transcript
from .settings import AnalyzerSettings

SPEC = ConsumerSpec(
    name="analyzer",
    group="voiceticket-analyzer",
    consumes=[CallTranscribed],
    produces=[CallAnalyzed],
)


def handler_factory(settings: AnalyzerSettings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def build(_bus: object) -> AsyncIterator[Handler]:
        deps = AnalyzerDeps(
            config=RuntimeConfigClient(
                settings.config_api_url, settings.config_api_token, settings.config_cache_seconds
            ),
            model=OpenAIChatModel(settings.egress_allowed_hosts, settings.llm_timeout_seconds),
            max_transcript_chars=settings.max_transcript_chars,
            budget=RetryBudget(settings.llm_retry_attempts, settings.llm_retry_budget_seconds),
        )
        try:
            yield partial(analyze_transcript, deps=deps)
        finally:
            await deps.config.aclose()
            await deps.model.aclose()  # type: ignore[attr-defined]

    return build
