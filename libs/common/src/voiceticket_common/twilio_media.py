"""Twilio recording media, one client for every service that downloads it (transcriber, jira-writer).

The media URL is built from the configured Twilio API base URL, the tenant's account SID and the
recording SID (``<base>/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.wav``), both
checked against Twilio's SID formats; never taken from an event. The tenant's Twilio credentials
then only ever go to the configured Twilio host and to a recording's path (ADR 6): whatever
produced an event cannot choose where they are sent.

The download is streamed with basic auth and a size cap into a file the caller chooses (a buffer
in memory, a temporary file on disk). A body shorter than its Content-Length, or a WAV shorter
than its RIFF header says, is a cut download: ``PartialMedia``, transient, never passed on as a
recording. A 404 means one of two things, and the caller says which (``FreshMediaWait``): right
after the ``completed`` recording callback, media Twilio has not stored yet (waited out here with
a short backoff, then TransientError with Retry-After hands the wait to the bus); later, a
recording that is gone (``RecordingGone``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

import httpx

from .bus.errors import PermanentError, TransientError
from .http import provider_client, raise_for_provider_status, transport_error
from .resources import AsyncResource
from .retry_budget import Sleep
from .twilio import TwilioAccount

log = logging.getLogger(__name__)

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
_MAX_ERROR_BODY = 16 * 1024
_WAV_HEADER = 12


class RecordingTooLarge(PermanentError):
    """The recording is over the size this service accepts."""


class RecordingGone(PermanentError):
    """Twilio no longer has the recording (deleted, or a retention policy removed it)."""


class PartialMedia(TransientError):
    """The download ended before the whole recording arrived; a later attempt may get it all."""


class _NotThereYet(Exception):
    pass


@dataclass(frozen=True)
class FreshMediaWait:
    """How long a 404 is taken for media Twilio has just reported complete but not stored yet.

    Right after the ``completed`` callback the media URL can answer 404 for a few seconds; the
    download is retried with a jittered, doubling backoff for up to ``seconds``.
    """

    seconds: float = 10.0
    initial_backoff: float = 0.5
    max_backoff: float = 4.0


@dataclass(frozen=True)
class DownloadedMedia:
    """What arrived: the whole recording, ``size`` bytes of ``content_type``."""

    content_type: str
    size: int


def recording_media_url(base_url: str, account_sid: str, recording_sid: str) -> str:
    """Twilio's media URL of a recording, as WAV."""
    if not _ACCOUNT_SID.match(account_sid) or not _RECORDING_SID.match(recording_sid):
        raise PermanentError("not a Twilio account SID and recording SID")
    return f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}.wav"


def recording_resource_url(base_url: str, account_sid: str, recording_sid: str) -> str:
    """Twilio's Recording resource (what ``DELETE`` removes, media and metadata alike)."""
    media = recording_media_url(base_url, account_sid, recording_sid)
    return media.removesuffix(".wav") + ".json"


class TwilioMediaClient(AsyncResource):
    """Downloads recordings with the tenant's basic auth, streaming, refusing more than ``max_bytes``.

    ``fresh_media_wait``: None when the recording is known to have been stored (a 404 then means
    it is gone); set when it may have been reported complete a moment ago.
    """

    def __init__(
        self,
        base_url: str,
        allowed_hosts: Sequence[str],
        max_bytes: int,
        timeout: float = 30.0,
        *,
        fresh_media_wait: FreshMediaWait | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = base_url
        self._client = provider_client("twilio", allowed_hosts, timeout=timeout)
        self._max_bytes = max_bytes
        self._wait = fresh_media_wait
        self._sleep = sleep
        self._clock = clock

    async def download(self, account: TwilioAccount, recording_sid: str, into: IO[bytes]) -> DownloadedMedia:
        """Streams the recording into ``into`` (emptied first; left positioned at its end), waiting
        out a fresh recording's 404. Nothing but a whole recording is returned as downloaded."""
        url = recording_media_url(self._base_url, account.account_sid, recording_sid)
        auth = (account.account_sid, account.auth_token.get_secret_value())
        wait = self._wait
        started, attempts = self._clock(), 0
        backoff = wait.initial_backoff if wait else 0.0
        while True:
            attempts += 1
            into.seek(0)
            into.truncate()
            try:
                return await self._stream(url, auth, into)
            except _NotThereYet:
                if wait is None:
                    raise RecordingGone("twilio has no such recording (404)") from None
                waited = self._clock() - started
                if waited + backoff > wait.seconds:
                    raise TransientError(
                        f"twilio recording media not available yet (404 after {attempts} attempts "
                        f"in {waited:.1f}s)",
                        retry_after=wait.seconds,
                    ) from None
                log.info("recording media not there yet, retrying", extra={"attempt": attempts})
                await self._sleep(random.uniform(backoff / 2, backoff))  # noqa: S311 - jitter only
                backoff = min(backoff * 2, wait.max_backoff)

    async def delete(self, account: TwilioAccount, recording_sid: str) -> bool:
        """Delete the recording at Twilio (``DELETE .../Recordings/{Sid}.json``, retention): True
        when it was deleted now, False when Twilio no longer had it (404: deleted before, which
        counts as done). 429/5xx raise TransientError, other refusals PermanentError."""
        url = recording_resource_url(self._base_url, account.account_sid, recording_sid)
        auth = (account.account_sid, account.auth_token.get_secret_value())
        try:
            response = await self._client.delete(url, auth=auth, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise transport_error(exc, "twilio", "recording delete") from None
        if response.status_code == 404:
            return False
        raise_for_provider_status(response, "twilio", "recording delete")
        return True

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _stream(self, url: str, auth: tuple[str, str], into: IO[bytes]) -> DownloadedMedia:
        size, head = 0, bytearray()
        try:
            # identity: the cap must count the bytes received, not compressed ones
            headers = {"Accept-Encoding": "identity"}
            async with self._client.stream("GET", url, auth=auth, headers=headers) as response:
                if response.status_code == 404:
                    raise _NotThereYet()
                if response.status_code >= 400:
                    raise_for_provider_status(await _error_of(response), "twilio", "recording download")
                declared = _content_length(response)
                if declared is not None and declared > self._max_bytes:
                    raise RecordingTooLarge(f"recording is {declared} bytes, limit {self._max_bytes}")
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise RecordingTooLarge(f"recording exceeds {self._max_bytes} bytes")
                    if len(head) < _WAV_HEADER:
                        head += chunk[: _WAV_HEADER - len(head)]
                    into.write(chunk)
                content_type: str = response.headers.get("content-type", "audio/x-wav")
        except httpx.RemoteProtocolError:
            raise PartialMedia("twilio recording download was cut off before the end") from None
        except httpx.HTTPError as exc:
            raise transport_error(exc, "twilio", "recording download") from None
        if declared is not None and size != declared:
            raise PartialMedia(f"twilio recording download got {size} of {declared} bytes")
        if not size:
            raise PartialMedia("twilio returned an empty recording")
        _check_wav_complete(bytes(head), size)
        return DownloadedMedia(content_type=content_type, size=size)


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


def _check_wav_complete(head: bytes, size: int) -> None:
    """A RIFF header states the file's size: fewer bytes than that means a cut download."""
    if len(head) < _WAV_HEADER or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return
    declared = int.from_bytes(head[4:8], "little")
    if declared in (0, 0xFFFFFFFF):  # streaming writers leave the size open
        return
    if size < declared + 8:
        raise PartialMedia(f"twilio recording is a truncated WAV ({size} of {declared + 8} bytes)")
