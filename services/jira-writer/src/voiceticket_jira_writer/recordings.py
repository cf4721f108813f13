"""Twilio recording media for the attachment, through the shared Twilio media client: streamed to
a temporary file with a size cap.

The URL is built from the configured Twilio base URL, the tenant's account SID and the event's
recording SID rather than taken from an event: the Twilio credentials then only ever go to the
configured Twilio host (see ADR 6). The transcriber fetched the media minutes before, so a 404
here means the recording was deleted since (``RecordingGone``), not that it is not stored yet.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voiceticket_common.twilio import TwilioAccount
from voiceticket_common.twilio_media import TwilioMediaClient

from .ports import Upload


class TwilioRecordingDownloads:
    """The recording as the attachment's upload, on local disk while it is attached."""

    def __init__(self, media: TwilioMediaClient) -> None:
        self._media = media

    @asynccontextmanager
    async def download(
        self, account: TwilioAccount, recording_sid: str, filename: str
    ) -> AsyncIterator[Upload]:
        # An unlinked temporary file, never held in memory: the upload streams from it.
        with tempfile.TemporaryFile() as file:
            media = await self._media.download(account, recording_sid, file)
            file.seek(0)
            yield Upload(filename=filename, content_type=media.content_type, file=file, size=media.size)

    async def delete(self, account: TwilioAccount, recording_sid: str) -> bool:
        """Delete the recording at Twilio (retention); False when it was already gone."""
        return await self._media.delete(account, recording_sid)

    async def aclose(self) -> None:
        await self._media.aclose()
