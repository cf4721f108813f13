"""Test doubles around the transcriber's files: recordings written into the handler's file, and
uploads read back as an engine reads them; and a line's view with an OpenAI tenant."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import SecretStr

from voiceticket_common.runtime_views import TranscriberLine, TranscriberTenant, TranscriberView
from voiceticket_common.testing import LINE, StaticRuntimeConfig
from voiceticket_common.twilio import TwilioAccount
from voiceticket_transcriber.audio_prep import (
    Part,
    SpeechCheck,
    UploadLimits,
    plan_uploads,
    write_part,
)
from voiceticket_transcriber.ports import Recording
from voiceticket_transcriber.staging import AudioFile, Workspace


class WrittenRecordings:
    """A ``RecordingSource``: each fetch writes the next outcome (bytes) into the handler's file or
    raises it (an exception); the last outcome repeats. Records what was fetched."""

    def __init__(self, *outcomes: bytes | Exception, content_type: str = "audio/x-wav") -> None:
        self.outcomes = list(outcomes)
        self.content_type = content_type
        self.fetched: list[tuple[str, str]] = []

    async def fetch(self, account: TwilioAccount, recording_sid: str, into: BinaryIO) -> str:
        self.fetched.append((account.account_sid, recording_sid))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        into.write(outcome)
        return self.content_type


def read_upload(recording: Recording) -> bytes:
    """The whole upload, read from its file the way a streaming client does (64 KiB at a time)."""

    chunks = []
    while chunk := recording.audio.read(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def prepared(
    blob: bytes, limits: UploadLimits, speech: SpeechCheck | None = None, content_type: str = "audio/x-wav"
) -> list[tuple[str, str, bytes]]:
    """(filename, content type, bytes) of each upload the preparation makes of ``blob``, in order."""

    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp, Workspace.opened() as work:
        path = Path(tmp) / "recording"
        path.write_bytes(blob)
        plan = plan_uploads(
            AudioFile(path, content_type, "recording.wav"), limits, speech or SpeechCheck(), work, stop
        )
        out = []
        for upload in plan.uploads:
            file = write_part(upload, work, stop) if isinstance(upload, Part) else upload
            out.append((file.filename, file.content_type, file.path.read_bytes()))
        return out


def openai_line_config(**line_fields: Any) -> StaticRuntimeConfig[TranscriberView]:
    """The test line (``line_fields`` set) of a tenant transcribing with whisper-1 at OpenAI."""
    view = TranscriberView(
        tenant_id="acme",
        line=TranscriberLine(number=LINE, **line_fields),
        tenant=TranscriberTenant(
            twilio_account_sid="AC" + "a" * 32,
            twilio_auth_token=SecretStr("tok"),
            openai_base_url="http://127.0.0.1:1/v1",
            openai_api_key=SecretStr("sk-test"),
            transcription_model="whisper-1",
        ),
    )
    return StaticRuntimeConfig({LINE: view})
