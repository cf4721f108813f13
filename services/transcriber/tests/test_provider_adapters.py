"""Recording download and transcription adapters against the Twilio and OpenAI stand-ins."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from pydantic import SecretStr

from voiceticket_common.bus import TransientError
from voiceticket_common.twilio import TwilioAccount
from voiceticket_common.twilio_media import TwilioMediaClient
from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_transcriber.adapters import (
    OpenAITranscriptionEngine,
    TwilioRecordingSource,
)
from voiceticket_transcriber.ports import Recording, SpeechToTextTarget

RECORDING_SID = "RE" + "3" * 32


async def register(sandbox, audio: bytes, transcript: str) -> str:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.twilio}/_sandbox/recordings", json={
            "account_sid": sandbox.account_sid, "recording_sid": RECORDING_SID,
            "audio_base64": base64.b64encode(audio).decode(), "content_type": "audio/x-wav",
            "transcript": transcript})).raise_for_status()  # fmt: skip
    return f"{sandbox.urls.twilio}/2010-04-01/Accounts/{sandbox.account_sid}/Recordings/{RECORDING_SID}"


def account(sandbox, token: str | None = None) -> TwilioAccount:  # type: ignore[no-untyped-def]
    return TwilioAccount(sandbox.account_sid, SecretStr(token or sandbox.auth_token))


async def test_download_then_transcribe(sandbox) -> None:  # type: ignore[no-untyped-def]
    audio = make_tone_wav(1.5, frequency=523.0)
    await register(sandbox, audio, "My order 5531 never arrived.")
    source = TwilioRecordingSource(
        TwilioMediaClient(sandbox.urls.twilio, ["http://127.0.0.1:*"], max_bytes=1_000_000)
    )
    engine = OpenAITranscriptionEngine(["http://127.0.0.1:*"])
    try:
        into = io.BytesIO()
        content_type = await source.fetch(account(sandbox), RECORDING_SID, into)
        assert into.getvalue() == audio
        into.seek(0)
        target = SpeechToTextTarget(
            sandbox.urls.openai + "/v1", SecretStr(sandbox.openai_key), "whisper-1", "en"
        )
        recording = Recording(into, content_type, "recording.wav")
        assert (await engine.transcribe(recording, target)).text == "My order 5531 never arrived."
    finally:
        await source.aclose()
        await engine.aclose()
    async with httpx.AsyncClient() as client:
        recorded = (await client.get(f"{sandbox.urls.openai}/_sandbox/requests")).json()
    assert recorded and all(r["valid"] for r in recorded)


async def test_openai_rate_limit_is_transient_with_retry_after(sandbox) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        await client.post(f"{sandbox.urls.openai}/_sandbox/faults",
                          json={"method": "POST", "path_regex": "transcriptions", "status": 429, "retry_after": 3, "times": 1})  # fmt: skip
    engine = OpenAITranscriptionEngine(["http://127.0.0.1:*"])
    try:
        target = SpeechToTextTarget(
            sandbox.urls.openai + "/v1", SecretStr(sandbox.openai_key), "whisper-1", None
        )
        with pytest.raises(TransientError) as info:
            await engine.transcribe(Recording(io.BytesIO(make_tone_wav(0.2)), "audio/x-wav", "r.wav"), target)
        assert info.value.retry_after == 3.0
    finally:
        await engine.aclose()
