"""Twilio recording media for speech-to-text, through the shared Twilio media client.

The media URL is built from the configured Twilio API base URL, the tenant's account SID and the
event's recording SID; the event's ``recording_url`` is not used: whatever produced the event
cannot choose where the tenant's credentials go (ADR 6). The client waits out the 404 of media
Twilio has just reported complete, caps the size and recognises cut downloads
(``voiceticket_common.twilio_media``). The media is streamed to the file the handler gives (in
the call's workspace, ``staging.py``), never held in memory whole.
"""

from __future__ import annotations

from typing import BinaryIO

from voiceticket_common.twilio import TwilioAccount
from voiceticket_common.twilio_media import TwilioMediaClient


class TwilioRecordingSource:
    """The recording, streamed to a file, as the preparation for speech-to-text starts from."""

    def __init__(self, media: TwilioMediaClient) -> None:
        self._media = media

    async def fetch(self, account: TwilioAccount, recording_sid: str, into: BinaryIO) -> str:
        media = await self._media.download(account, recording_sid, into)
        return media.content_type

    async def aclose(self) -> None:
        await self._media.aclose()
