"""Twilio recording media for speech-to-text, through the shared Twilio media client.

The media URL is built from the configured Twilio API base URL, the tenant's account SID and the
event's recording SID; the event's ``recording_url`` is not used: whatever produced the event
cannot choose where the tenant's credentials go (ADR 6). The client waits out the 404 of media
Twilio has just reported complete, caps the size and recognises cut downloads
(``voiceticket_common.twilio_media``).
"""

from __future__ import annotations

import io

from voiceticket_common.twilio import TwilioAccount
from voiceticket_common.twilio_media import TwilioMediaClient

from .ports import Recording


class TwilioRecordingSource:
    """The recording, in memory, as the upload speech-to-text starts from."""

    def __init__(self, media: TwilioMediaClient) -> None:
        self._media = media

    async def fetch(self, account: TwilioAccount, recording_sid: str) -> Recording:
        # In memory: the recording is measured, re-encoded or split before speech-to-text anyway.
        buffer = io.BytesIO()
        media = await self._media.download(account, recording_sid, buffer)
        return Recording(audio=buffer.getvalue(), content_type=media.content_type, filename="recording.wav")

    async def aclose(self) -> None:
        await self._media.aclose()
