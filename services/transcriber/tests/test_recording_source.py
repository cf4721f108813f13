"""The transcriber's recording source: the media comes from the configured Twilio base URL and the
SIDs, never from the event's ``recording_url`` (what produced the event cannot choose where the
tenant's Twilio credentials go). The download itself (waits, cap, cut media) is tested with the
shared client in libs/common."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import SecretStr

from voiceticket_common.events import CallTranscribed, RecordingCompleted
from voiceticket_common.runtime_views import TranscriberView
from voiceticket_common.testing import StaticRuntimeConfig
from voiceticket_common.twilio import TwilioAccount
from voiceticket_common.twilio_media import FreshMediaWait, TwilioMediaClient
from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.testing import Sandbox
from voiceticket_transcriber.handlers import TranscriberDeps, transcribe_recording
from voiceticket_transcriber.ports import Recording, SpeechToTextTarget, Transcript
from voiceticket_transcriber.recording_source import TwilioRecordingSource

LINE = "+15005550006"
RECORDING_SID = "RE" + "4" * 32
AUDIO = make_tone_wav(1.0, frequency=611.0)


async def register(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.twilio}/_sandbox/recordings", json={
            "account_sid": sandbox.account_sid, "recording_sid": RECORDING_SID,
            "audio_base64": base64.b64encode(AUDIO).decode(), "transcript": "x"})).raise_for_status()  # fmt: skip


async def twilio_requests(sandbox: Sandbox) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        records: list[dict[str, Any]] = (await client.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()
    return [r for r in records if r["path"].startswith("/2010-04-01/")]


def source(sandbox: Sandbox) -> TwilioRecordingSource:
    wait = FreshMediaWait(seconds=1.0, initial_backoff=0.1)
    return TwilioRecordingSource(
        TwilioMediaClient(sandbox.urls.twilio, ["http://127.0.0.1:*"], 1_000_000, fresh_media_wait=wait)
    )


class HeardEngine:
    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        return Transcript("heard")


async def test_the_recording_is_streamed_into_the_file_with_basic_auth(sandbox: Sandbox) -> None:
    await register(sandbox)
    recordings = source(sandbox)
    into = io.BytesIO()
    try:
        account = TwilioAccount(sandbox.account_sid, SecretStr(sandbox.auth_token))
        content_type = await recordings.fetch(account, RECORDING_SID, into)
    finally:
        await recordings.aclose()
    assert (into.getvalue(), content_type) == (AUDIO, "audio/x-wav")
    [request] = await twilio_requests(sandbox)
    assert request["path"] == f"/2010-04-01/Accounts/{sandbox.account_sid}/Recordings/{RECORDING_SID}.wav"
    assert request["auth"] == {"scheme": "basic", "username": sandbox.account_sid}


@pytest.mark.parametrize("hostile", ["host", "path"])
async def test_a_hostile_recording_url_in_the_event_is_not_followed(sandbox: Sandbox, hostile: str) -> None:
    """The credentials go to the configured Twilio base URL and the recording's path only: not to
    another host the event names (the egress allow-list does not tell it apart: both are loopback
    here), nor to another path on the Twilio host."""
    await register(sandbox)
    heard: list[str] = []
    app = FastAPI()

    @app.get("/{path:path}")
    async def collect(path: str, request: Request) -> Response:
        heard.append(request.headers.get("authorization", ""))
        return Response(AUDIO, media_type="audio/x-wav")

    async with serve_app(app) as origin:
        named = {
            "host": f"{origin}/2010-04-01/Accounts/{sandbox.account_sid}/Recordings/{RECORDING_SID}",
            "path": f"{sandbox.urls.twilio}/2010-04-01/Accounts/{sandbox.account_sid}/Calls/CA{'5' * 32}",
        }[hostile]
        event = RecordingCompleted(
            tenant_id="acme",
            call_sid="CA" + "1" * 32,
            line_number=LINE,
            caller_number="+14155550100",
            account_sid=sandbox.account_sid,
            recording_sid=RECORDING_SID,
            recording_url=named,
            duration_seconds=1,
        )
        tenant = {
            "twilio_account_sid": sandbox.account_sid,
            "twilio_auth_token": sandbox.auth_token,
            "openai_api_key": "sk-test",
        }
        config = StaticRuntimeConfig.of(TranscriberView, {LINE: ("acme", {}, tenant)})
        recordings = source(sandbox)
        deps = TranscriberDeps(config=config, recordings=recordings, engine=HeardEngine())
        try:
            [transcribed] = await transcribe_recording(event, deps)
        finally:
            await recordings.aclose()
    assert heard == [], "the tenant's credentials went to a host the event named"
    assert [r["path"] for r in await twilio_requests(sandbox)] == [
        f"/2010-04-01/Accounts/{sandbox.account_sid}/Recordings/{RECORDING_SID}.wav"
    ]
    assert isinstance(transcribed, CallTranscribed) and transcribed.transcript == "heard"
