"""Recording media from the Twilio stand-in: basic auth, streamed to disk, capped in size."""

from __future__ import annotations

import base64

import httpx
import pytest
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError
from voiceticket_common.twilio import TwilioAccount
from voiceticket_common.twilio_media import TwilioMediaClient
from voiceticket_jira_writer.ports import RecordingGone, RecordingTooLarge
from voiceticket_jira_writer.recordings import TwilioRecordingDownloads

RECORDING_SID = "RE" + "a" * 32
AUDIO = b"RIFF" + bytes(range(256)) * 8


@pytest.fixture
async def recording(sandbox):  # type: ignore[no-untyped-def]
    body = {"account_sid": sandbox.account_sid, "recording_sid": RECORDING_SID,
            "audio_base64": base64.b64encode(AUDIO).decode(), "transcript": "hello"}  # fmt: skip
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.twilio}/_sandbox/recordings", json=body)).raise_for_status()
    return sandbox


def account(sandbox, token: str | None = None) -> TwilioAccount:  # type: ignore[no-untyped-def]
    return TwilioAccount(sandbox.account_sid, SecretStr(token or sandbox.auth_token))


async def test_the_recording_is_downloaded_to_a_file_with_basic_auth(recording) -> None:  # type: ignore[no-untyped-def]
    downloads = TwilioRecordingDownloads(
        TwilioMediaClient(recording.urls.twilio, ["http://127.0.0.1:*"], max_bytes=len(AUDIO))
    )
    try:
        async with downloads.download(account(recording), RECORDING_SID, "call-x.wav") as upload:
            data = upload.file.read()
            assert (upload.filename, upload.size, data) == ("call-x.wav", len(AUDIO), AUDIO)
            assert upload.file.fileno() >= 0, "on disk, not in memory"
    finally:
        await downloads.aclose()
    [fetched] = recording.state.records_of("twilio")
    assert (
        fetched["path"].endswith(f"/Recordings/{RECORDING_SID}.wav") and fetched["auth"]["scheme"] == "basic"
    )
    assert fetched["valid"]


@pytest.mark.parametrize(
    ("sid", "limit", "token", "error"),
    [
        (RECORDING_SID, 100, None, RecordingTooLarge),
        ("RE" + "b" * 32, 10_000, None, RecordingGone),
        (RECORDING_SID, 10_000, "wrong-token", PermanentError),
    ],
    ids=["over-the-limit", "deleted", "bad-credentials"],
)
async def test_download_failures(recording, sid, limit, token, error) -> None:  # type: ignore[no-untyped-def]
    downloads = TwilioRecordingDownloads(
        TwilioMediaClient(recording.urls.twilio, ["http://127.0.0.1:*"], max_bytes=limit)
    )
    try:
        with pytest.raises(error):
            async with downloads.download(account(recording, token), sid, "call-x.wav"):
                pass
    finally:
        await downloads.aclose()
