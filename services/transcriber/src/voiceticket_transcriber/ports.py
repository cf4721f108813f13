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
    base_url: str
    api_key: SecretStr
    model: str
    language: str | None


class RecordingSource(Protocol):
    async def fetch(self, recording_url: str, account: TwilioAccount) -> Recording:
        """Download the recording's media; TransientError while Twilio has not stored it yet."""


class TranscriptionEngine(Protocol):
    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> str:
        """Speech to text; raises TransientError/PermanentError as the provider answers."""
