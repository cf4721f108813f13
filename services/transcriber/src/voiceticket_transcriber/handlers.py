"""recording completed -> transcript."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from voiceticket_common.bus import Envelope
from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import CallTranscribed, Event, RecordingCompleted
from voiceticket_common.metrics import record_transcription

from .ports import RecordingSource, SpeechToTextTarget, TranscriptionEngine, TwilioAccount

log = logging.getLogger(__name__)


@dataclass
class TranscriberDeps:
    config: RuntimeConfig
    recordings: RecordingSource
    engine: TranscriptionEngine


async def transcribe_recording(envelope: Envelope, deps: TranscriberDeps) -> Sequence[Event]:
    event = envelope.event
    assert isinstance(event, RecordingCompleted)
    config = await deps.config.line(event.line_number)
    account = TwilioAccount(
        account_sid=config.tenant.get("twilio_account_sid") or event.account_sid,
        auth_token=config.secret("twilio_auth_token"),
    )
    recording = await deps.recordings.fetch(event.recording_url, account)
    language = config.line.get("language") if config.line.get("language_mode") == "enforced" else None
    target = SpeechToTextTarget(
        base_url=config.tenant.get("openai_base_url") or "https://api.openai.com/v1",
        api_key=config.secret("openai_api_key"),
        model=config.tenant.get("transcription_model") or "gpt-4o-mini-transcribe",
        language=language,
    )
    transcript = await deps.engine.transcribe(recording, target)
    record_transcription(event.tenant_id, target.model, event.duration_seconds)
    log.info("recording transcribed", extra={"audio_bytes": len(recording.audio), "chars": len(transcript)})
    return [
        CallTranscribed(
            tenant_id=event.tenant_id,
            call_sid=event.call_sid,
            line_number=event.line_number,
            caller_number=event.caller_number,
            recording_sid=event.recording_sid,
            duration_seconds=event.duration_seconds,
            transcript=transcript,
            language=language,
            model=target.model,
        )
    ]
