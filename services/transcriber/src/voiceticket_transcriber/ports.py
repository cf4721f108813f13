"""The transcriber's outside world: where recordings come from and what turns them into text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import SecretStr


@dataclass(frozen=True)
class Recording:
    audio: bytes
    content_type: str
    filename: str


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: SecretStr


@dataclass(frozen=True)
class SpeechToTextTarget:
    """Where and how to transcribe: the tenant's OpenAI (or compatible) server and model."""

    base_url: str
    api_key: SecretStr
    model: str
    language: str | None
    """ISO 639-1 hint when the line enforces a language; None lets the model detect it."""
    prompt: str | None = None
    """The tenant's vocabulary (product names, terms), so the model spells them right."""


class RecordingSource(Protocol):
    async def fetch(self, recording_url: str, account: TwilioAccount) -> Recording:
        """Download the recording's media; TransientError while Twilio has not stored it yet."""


class TranscriptionEngine(Protocol):
    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> str:
        """Speech to text of one upload (at most the provider's size limit); raises
        TransientError/PermanentError as the provider answers."""
