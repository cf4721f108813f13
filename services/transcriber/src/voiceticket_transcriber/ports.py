"""The transcriber's outside world: where recordings come from, what turns them into text, and
where the transcripts it produced are kept for duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Protocol

from voiceticket_common.events import CallTranscribed, RecordingCompleted
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


@dataclass(frozen=True)
class SpeechToTextTarget(OpenAIEndpoint):
    """Where and how to transcribe: the tenant's OpenAI (or compatible) server and model."""

    language: str | None
    """ISO 639-1 hint when the line enforces a language; None lets the model detect it."""
    prompt: str | None = None
    """The tenant's vocabulary (product names, terms), so the model spells them right."""


class RecordingSource(Protocol):
    async def fetch(self, account: TwilioAccount, recording_sid: str, into: BinaryIO) -> str:
        """Stream the recording's media from Twilio (never from a URL an event names) into
        ``into``, a file in the call's workspace, and return its content type. Nothing but a
        whole recording counts as fetched: TransientError while Twilio has not stored it yet or
        when the download is cut, RecordingTooLarge over the cap."""


class TranscriptionEngine(Protocol):
    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> str:
        """Speech to text of one upload (at most the provider's size limit); raises
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
