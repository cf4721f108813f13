"""Real adapters: Twilio recording media over HTTPS, OpenAI (or compatible) speech-to-text."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import openai

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import provider_client, raise_for_provider_status, transport_error
from voiceticket_common.openai_errors import translate_openai_error

from .ports import Recording, SpeechToTextTarget, TwilioAccount


class RecordingTooLarge(PermanentError):
    pass


class TwilioRecordingSource:
    """Downloads ``<RecordingUrl>.wav`` with basic auth, streaming with a size cap."""

    def __init__(self, allowed_hosts: Sequence[str], max_bytes: int, timeout: float = 30.0) -> None:
        self._client = provider_client("twilio", allowed_hosts, timeout=timeout)
        self._max_bytes = max_bytes

    async def fetch(self, recording_url: str, account: TwilioAccount) -> Recording:
        url = recording_url + ".wav"
        auth = (account.account_sid, account.auth_token.get_secret_value())
        try:
            async with self._client.stream("GET", url, auth=auth) as response:
                if response.status_code == 404:
                    # Right after the callback the media may not be there yet: retry later.
                    raise TransientError("twilio recording media not available yet (404)")
                if response.status_code >= 400:
                    await response.aread()
                    raise_for_provider_status(response, "twilio", "recording download")
                declared = int(response.headers.get("content-length") or 0)
                if declared > self._max_bytes:
                    raise RecordingTooLarge(f"recording is {declared} bytes, limit {self._max_bytes}")
                chunks = bytearray()
                async for chunk in response.aiter_bytes():
                    chunks += chunk
                    if len(chunks) > self._max_bytes:
                        raise RecordingTooLarge(f"recording exceeds {self._max_bytes} bytes")
                content_type = response.headers.get("content-type", "audio/x-wav")
        except httpx.HTTPError as exc:
            raise transport_error(exc, "twilio", "recording download") from None
        if not chunks:
            raise PermanentError("twilio returned an empty recording")
        return Recording(audio=bytes(chunks), content_type=content_type, filename="recording.wav")

    async def aclose(self) -> None:
        await self._client.aclose()


class OpenAITranscriptionEngine:
    """OpenAI's /audio/transcriptions through the official SDK, on our traced, allow-listed client."""

    def __init__(self, allowed_hosts: Sequence[str], timeout: float = 120.0) -> None:
        self._http = provider_client("openai", allowed_hosts, timeout=timeout)

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> str:
        client = openai.AsyncOpenAI(
            api_key=target.api_key.get_secret_value(),
            base_url=target.base_url,
            http_client=self._http,
            max_retries=0,  # the bus owns retries, with Retry-After honoured
        )
        kwargs = {}
        if target.language:
            kwargs["language"] = target.language
        try:
            result = await client.audio.transcriptions.create(
                model=target.model,
                file=(recording.filename, recording.audio, recording.content_type),
                response_format="json",
                **kwargs,
            )
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, "transcription") from None
        return result.text.strip()

    async def aclose(self) -> None:
        await self._http.aclose()
