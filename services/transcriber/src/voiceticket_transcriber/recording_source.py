"""Twilio recording media over HTTPS: basic auth, a short wait while the media is not there yet,
a size cap, bounded memory, and partial downloads recognised as such.

Right after the ``completed`` recording callback, the media URL can still answer 404 for a few
seconds. Rather than fail the handler at once (and wait for the bus's backoff), the download is
retried here with a short backoff for up to ``wait_seconds``; past that, TransientError with a
Retry-After hands the wait to the bus. A body shorter than its Content-Length, or a WAV shorter
than its RIFF header says, is a cut download: transient too, never passed on as a recording.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence

import httpx

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import provider_client, raise_for_provider_status, transport_error

from .ports import Recording, TwilioAccount

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
_MAX_ERROR_BODY = 16 * 1024


class RecordingTooLarge(PermanentError):
    pass


class PartialMedia(TransientError):
    """The download ended before the whole recording arrived; a later attempt may get it all."""


class _NotThereYet(Exception):
    pass


class TwilioRecordingSource:
    """Downloads ``<RecordingUrl>.wav`` with the tenant's basic auth, streaming with a size cap."""

    def __init__(
        self,
        allowed_hosts: Sequence[str],
        max_bytes: int,
        timeout: float = 30.0,
        wait_seconds: float = 10.0,
        *,
        initial_backoff: float = 0.5,
        max_backoff: float = 4.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = provider_client("twilio", allowed_hosts, timeout=timeout)
        self._max_bytes = max_bytes
        self._wait = wait_seconds
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._clock = clock

    async def fetch(self, recording_url: str, account: TwilioAccount) -> Recording:
        url = recording_url + ".wav"
        auth = (account.account_sid, account.auth_token.get_secret_value())
        started, backoff, attempts = self._clock(), self._initial_backoff, 0
        while True:
            attempts += 1
            try:
                return await self._download(url, auth)
            except _NotThereYet:
                waited = self._clock() - started
                if waited + backoff > self._wait:
                    raise TransientError(
                        f"twilio recording media not available yet (404 after {attempts} attempts "
                        f"in {waited:.1f}s)",
                        retry_after=self._wait,
                    ) from None
            log.info("recording media not there yet, retrying", extra={"attempt": attempts})
            await self._sleep(random.uniform(backoff / 2, backoff))  # noqa: S311 - jitter only
            backoff = min(backoff * 2, self._max_backoff)

    async def _download(self, url: str, auth: tuple[str, str]) -> Recording:
        try:
            # identity: the cap must count what is held in memory, not compressed bytes
            headers = {"Accept-Encoding": "identity"}
            async with self._client.stream("GET", url, auth=auth, headers=headers) as response:
                if response.status_code == 404:
                    raise _NotThereYet()
                if response.status_code >= 400:
                    raise_for_provider_status(await _error_of(response), "twilio", "recording download")
                declared = _content_length(response)
                if declared is not None and declared > self._max_bytes:
                    raise RecordingTooLarge(f"recording is {declared} bytes, limit {self._max_bytes}")
                audio = bytearray()
                async for chunk in response.aiter_bytes():
                    if len(audio) + len(chunk) > self._max_bytes:
                        raise RecordingTooLarge(f"recording exceeds {self._max_bytes} bytes")
                    audio += chunk
                content_type = response.headers.get("content-type", "audio/x-wav")
        except httpx.RemoteProtocolError:
            raise PartialMedia("twilio recording download was cut off before the end") from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, "twilio", "recording download") from None
        if declared is not None and len(audio) != declared:
            raise PartialMedia(f"twilio recording download got {len(audio)} of {declared} bytes")
        if not audio:
            raise PartialMedia("twilio returned an empty recording")
        _check_wav_complete(audio)
        return Recording(audio=bytes(audio), content_type=content_type, filename="recording.wav")

    async def aclose(self) -> None:
        await self._client.aclose()


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


async def _error_of(response: httpx.Response) -> httpx.Response:
    """The error response with at most a few KiB of its body, for Twilio's JSON message."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk[: _MAX_ERROR_BODY - len(body)]
        if len(body) >= _MAX_ERROR_BODY:
            break
    kept = {k: v for k, v in response.headers.items() if k.lower() in ("content-type", "retry-after")}
    return httpx.Response(response.status_code, headers=kept, content=bytes(body))


def _check_wav_complete(audio: bytearray) -> None:
    """A RIFF header states the file's size: fewer bytes than that means a cut download."""
    if len(audio) < 12 or audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
        return
    declared = int.from_bytes(audio[4:8], "little")
    if declared in (0, 0xFFFFFFFF):  # streaming writers leave the size open
        return
    if len(audio) < declared + 8:
        raise PartialMedia(f"twilio recording is a truncated WAV ({len(audio)} of {declared + 8} bytes)")
