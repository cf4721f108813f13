"""The transcriber composed: recordings in (``on(RecordingCompleted, ...)``), transcripts out, over
Twilio media downloads, speech-to-text (the tenant's OpenAI-compatible server or the local Whisper
engine, per the tenant's ``transcription_backend``) and the transcript ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

from voiceticket_common.db import open_engine
from voiceticket_common.events import CallScreened, CallTranscribed, Event, RecordingCompleted
from voiceticket_common.ledger import purge_outcomes
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import TRANSCRIPTION_LOCAL, TRANSCRIPTION_OPENAI, TranscriberView
from voiceticket_common.service import ConsumerService, RuntimeConfig, on, vault_keys
from voiceticket_common.twilio_media import FreshMediaWait, TwilioMediaClient

from .adapters import EngineByBackend, OpenAITranscriptionEngine, TenantLimitedEngine, TwilioRecordingSource
from .audio_prep import SpeechCheck, UploadLimits
from .handlers import TranscriberDeps, transcribe_recording
from .ledger import SqlTranscriptLedger
from .local_whisper import LocalWhisperEngine, LocalWhisperOptions
from .settings import TranscriberSettings


@asynccontextmanager
async def adapters(
    settings: TranscriberSettings, config: RuntimeConfig[TranscriberView]
) -> AsyncIterator[TranscriberDeps]:
    """Twilio media downloads, speech-to-text and the transcript ledger, closed when the service stops."""
    media = TwilioMediaClient(
        settings.twilio_api_base_url,
        settings.egress_allowed_hosts,
        settings.max_recording_bytes,
        settings.download_timeout_seconds,
        fresh_media_wait=FreshMediaWait(settings.media_wait_seconds),
    )
    stt = OpenAITranscriptionEngine(
        settings.egress_allowed_hosts,
        settings.stt_timeout_seconds,
        allow_tenant_hosts=settings.egress_allow_tenant_hosts,
    )
    local = LocalWhisperEngine(local_whisper_options(settings))  # the model loads on first use
    async with (
        open_engine(settings.database_url) as engine,
        media,
        stt,
        local,
        vault_keys(settings) as keys,
    ):
        # Kept transcripts are sealed under the call's key, as on the bus (erasure unreads them).
        outcomes = await SqlTranscriptLedger.opened(engine, settings, keys)
        yield TranscriberDeps(
            config=config,
            recordings=TwilioRecordingSource(media),
            engine=EngineByBackend({TRANSCRIPTION_OPENAI: stt, TRANSCRIPTION_LOCAL: local}),
            limits=UploadLimits(settings.max_upload_bytes, settings.max_upload_seconds),
            local_limits=UploadLimits(
                settings.local_stt_max_upload_bytes, settings.local_stt_max_upload_seconds
            ),
            speech=SpeechCheck(settings.silence_threshold_dbfs, settings.min_speech_seconds),
            budget=RetryBudget(settings.stt_retry_attempts, settings.stt_retry_budget_seconds),
            outcomes=outcomes,
        )


def local_whisper_options(settings: TranscriberSettings) -> LocalWhisperOptions:
    return LocalWhisperOptions(
        model_dir=settings.local_stt_model_dir,
        compute_type=settings.local_stt_compute_type,
        workers=settings.local_stt_workers,
        cpu_threads=settings.local_stt_cpu_threads,
        beam_size=settings.local_stt_beam_size,
    )


async def transcribe_within_tenant_limit(event: RecordingCompleted, deps: TranscriberDeps) -> Sequence[Event]:
    """``transcribe_recording`` with each speech-to-text request in one of the call's tenant's
    slots: a burst of recordings sends at most ``provider_concurrency.speech_to_text`` at once."""
    engine = TenantLimitedEngine(deps.engine, deps.config, event.tenant_id, event.line_number)
    return await transcribe_recording(event, replace(deps, engine=engine))


ROUTES = [on(RecordingCompleted, transcribe_within_tenant_limit, produces=[CallTranscribed, CallScreened])]
SERVICE = ConsumerService(
    "transcriber", TranscriberSettings, TranscriberView, ROUTES, adapters, purge=purge_outcomes
)
