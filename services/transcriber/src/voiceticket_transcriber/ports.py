"""The transcriber's outside world: where recordings come from, what turns them into text (the
tenant's OpenAI-compatible server or the local Whisper engine), and where the transcripts it
produced are kept for duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from voiceticket_common.events import CallTranscribed, RecordingCompleted, TranscriptSegment
from voiceticket_common.ledger import LedgerUnavailable as LedgerUnavailable
from voiceticket_common.ledger import OutcomeStore
from voiceticket_common.openai_client import OpenAIEndpoint
from voiceticket_common.twilio import TwilioAccount


@dataclass(frozen=True)
class Recording:
    """One upload for speech-to-text: a binary file open at its start, which the engine streams
    (reads as it sends, never whole into memory) and does not close. The handler opens it from
    the call's workspace for each attempt; it is at most the upload limit (``UploadLimits``)."""

    audio: BinaryIO
    content_type: str
    filename: str
    path: Path | None = None
    """Where ``audio`` is on disk (the workspace), for engines that decode from a file themselves."""


@dataclass(frozen=True)
class SpeechToTextTarget(OpenAIEndpoint):
    """Where and how to transcribe: the tenant's OpenAI (or compatible) server and model."""

    language: str | None
    """ISO 639-1 code forcing the language; None (what the handler always sends: a caller may speak
    another language than the line's, even an enforced one) lets the model detect it."""
    prompt: str | None = None
    """The tenant's vocabulary (product names, terms), so the model spells them right; for a part
    of a long recording, followed by the end of the previous part's text."""
    backend: str = "openai"
    """``openai`` (the endpoint above) or ``local`` (this service's own engine; no endpoint)."""
    vocabulary: str | None = None
    """The tenant's terms alone, the same for every part (the local engine's hotwords)."""


@dataclass(frozen=True)
class Transcript:
    """What an engine heard in one upload: the text and, when the engine reports them, the
    language it detected and each segment's timings and confidence."""

    text: str
    model: str | None = None
    """The model that produced it when the engine chose it (the local engine); None: the target's."""
    language: str | None = None
    language_probability: float | None = None
    segments: tuple[TranscriptSegment, ...] | None = None


class RecordingSource(Protocol):
    async def fetch(self, account: TwilioAccount, recording_sid: str, into: BinaryIO) -> str:
        """Stream the recording's media from Twilio (never from a URL an event names) into
        ``into``, a file in the call's workspace, and return its content type. Nothing but a
        whole recording counts as fetched: TransientError while Twilio has not stored it yet or
        when the download is cut, RecordingTooLarge over the cap."""


class TranscriptionEngine(Protocol):
    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        """Speech to text of one upload (at most the engine's upload limit); raises
        TransientError/PermanentError as the provider answers."""


@dataclass(frozen=True)
class RecordingKey:
    """What a transcript is kept under: the recording."""

    tenant_id: str
    call_sid: str
    recording_sid: str

    @classmethod
    def of(cls, event: RecordingCompleted | CallTranscribed) -> RecordingKey:
        return cls(event.tenant_id, event.call_sid, event.recording_sid)


TranscriptLedger = OutcomeStore[RecordingKey, CallTranscribed]
"""The ``call.transcribed`` each recording produced, kept for a while (ADR 8). When it is
unavailable (``LedgerUnavailable``) the call is transcribed (again) rather than delayed or lost."""
