"""Composition root: what the service consumes and produces, and its adapters built from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from voiceticket_common.bus import Handler
from voiceticket_common.config_client import RuntimeConfigClient
from voiceticket_common.events import CallTranscribed, RecordingCompleted
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.service import ConsumerSpec

from .adapters import OpenAITranscriptionEngine, TwilioRecordingSource
from .audio_prep import SpeechCheck, UploadLimits
from .handlers import TranscriberDeps, transcribe_recording
from .settings import TranscriberSettings

SPEC = ConsumerSpec(
    name="transcriber",
    group="voiceticket-transcriber",
    consumes=[RecordingCompleted],
    produces=[CallTranscribed],
)


def handler_factory(settings: TranscriberSettings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def build(_bus: object) -> AsyncIterator[Handler]:
        deps = TranscriberDeps(
            config=RuntimeConfigClient(
                settings.config_api_url, settings.config_api_token, settings.config_cache_seconds
            ),
            recordings=TwilioRecordingSource(
                settings.egress_allowed_hosts,
                settings.max_recording_bytes,
                settings.download_timeout_seconds,
                settings.media_wait_seconds,
            ),
            engine=OpenAITranscriptionEngine(settings.egress_allowed_hosts, settings.stt_timeout_seconds),
            limits=UploadLimits(settings.max_upload_bytes, settings.max_upload_seconds),
            speech=SpeechCheck(settings.silence_threshold_dbfs, settings.min_speech_seconds),
            budget=RetryBudget(settings.stt_retry_attempts, settings.stt_retry_budget_seconds),
        )
        try:
            yield partial(transcribe_recording, deps=deps)
        finally:
            await deps.config.aclose()
            await deps.recordings.aclose()  # type: ignore[attr-defined]
            await deps.engine.aclose()  # type: ignore[attr-defined]

    return build
