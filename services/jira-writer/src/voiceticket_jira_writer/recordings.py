"""Twilio recording media for the attachment: streamed to a temporary file with a size cap.

The URL is built from the tenant's account SID and the event's recording SID
(``<base>/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.wav``) rather than taken from
an event: the Twilio credentials then only ever go to the configured Twilio base URL (see ADR 6).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import provider_client, raise_for_provider_status, transport_error

from .ports import RecordingGone, RecordingTooLarge, TwilioAccount, Upload

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")


def recording_media_url(base_url: str, account_sid: str, recording_sid: str) -> str:
    """Twilio's media URL of a recording, as WAV."""
    if not _ACCOUNT_SID.match(account_sid) or not _RECORDING_SID.match(recording_sid):
        raise PermanentError("not a Twilio account SID and recording SID")
    return f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}.wav"


class TwilioRecordingDownloads:
    """Downloads a recording with basic auth, streaming it to disk, refusing more than ``max_bytes``."""

    def __init__(
        self, base_url: str, allowed_hosts: Sequence[str], max_bytes: int, timeout: float = 60.0
    ) -> None:
        self._base_url = base_url
        self._client = provider_client("twilio", allowed_hosts, timeout=timeout)
        self._max_bytes = max_bytes

    @asynccontextmanager
    async def download(
        self, account: TwilioAccount, recording_sid: str, filename: str
    ) -> AsyncIterator[Upload]:
        url = recording_media_url(self._base_url, account.account_sid, recording_sid)
        auth = (account.account_sid, account.auth_token.get_secret_value())
        with tempfile.TemporaryFile() as file:
            size = 0
            try:
                async with self._client.stream("GET", url, auth=auth) as response:
                    if response.status_code == 404:
                        # The transcriber fetched it minutes ago, so it was deleted since.
                        raise RecordingGone("twilio has no such recording (404)")
                    if response.status_code >= 400:
                        await response.aread()
                        raise_for_provider_status(response, "twilio", "recording download")
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > self._max_bytes:
                        raise RecordingTooLarge(f"recording is {declared} bytes, limit {self._max_bytes}")
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self._max_bytes:
                            raise RecordingTooLarge(f"recording exceeds {self._max_bytes} bytes")
                        file.write(chunk)
                    content_type = response.headers.get("content-type", "audio/x-wav")
            except httpx.HTTPError as exc:
                raise transport_error(exc, "twilio", "recording download") from None
            if size == 0:
                raise TransientError("twilio returned an empty recording")
            file.seek(0)
            yield Upload(filename=filename, content_type=content_type, file=file, size=size)

    async def aclose(self) -> None:
        await self._client.aclose()
