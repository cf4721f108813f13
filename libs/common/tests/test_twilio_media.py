"""The shared Twilio media client against the Twilio stand-in: the URL built from the SIDs only,
basic auth, waiting out the 404 right after the callback (or a 404 meaning gone), the size cap with
bounded memory, cut or truncated downloads recognised as transient, into memory or a file."""

from __future__ import annotations

import base64
import io
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import EgressDenied
from voiceticket_common.twilio import TwilioAccount
from voiceticket_common.twilio_media import (
    DownloadedMedia,
    FreshMediaWait,
    PartialMedia,
    RecordingGone,
    RecordingTooLarge,
    TwilioMediaClient,
    recording_media_url,
)
from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.testing import Sandbox

RECORDING_SID = "RE" + "4" * 32
AUDIO = make_tone_wav(1.0, frequency=611.0)


async def register(sandbox: Sandbox, audio: bytes = AUDIO) -> None:
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.twilio}/_sandbox/recordings", json={
            "account_sid": sandbox.account_sid, "recording_sid": RECORDING_SID,
            "audio_base64": base64.b64encode(audio).decode(), "transcript": "x"})).raise_for_status()  # fmt: skip


async def media_faults(sandbox: Sandbox, **faults: object) -> None:
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.twilio}/_sandbox/media-faults", json=faults)).raise_for_status()


async def media_requests(sandbox: Sandbox) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        records: list[dict[str, Any]] = (await client.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()
    return [r for r in records if "/Recordings/" in r["path"]]


def account(sandbox: Sandbox, token: str | None = None) -> TwilioAccount:
    return TwilioAccount(sandbox.account_sid, SecretStr(token or sandbox.auth_token))


async def fetch(
    media: TwilioMediaClient, account: TwilioAccount, recording_sid: str = RECORDING_SID
) -> tuple[bytes, DownloadedMedia]:
    """Downloaded into memory, as the transcriber does."""
    buffer = io.BytesIO()
    downloaded = await media.download(account, recording_sid, buffer)
    return buffer.getvalue(), downloaded


class FakeTime:
    """A clock that advances only when the client sleeps, so waits cost no real time."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, list[float]()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def fresh_media_client(
    sandbox: Sandbox, fake: FakeTime | None = None, max_bytes: int = 1_000_000
) -> TwilioMediaClient:
    """A client as the transcriber builds it: a 404 may be media Twilio has not stored yet."""
    if fake is None:
        wait = FreshMediaWait(seconds=5.0, initial_backoff=0.1)
        return TwilioMediaClient(
            sandbox.urls.twilio, ["http://127.0.0.1:*"], max_bytes, fresh_media_wait=wait
        )
    return TwilioMediaClient(
        sandbox.urls.twilio,
        ["http://127.0.0.1:*"],
        max_bytes,
        fresh_media_wait=FreshMediaWait(seconds=10.0),
        sleep=fake.sleep,
        clock=fake.clock,
    )


@pytest.fixture
async def media(sandbox: Sandbox) -> AsyncIterator[TwilioMediaClient]:
    client = fresh_media_client(sandbox)
    yield client
    await client.aclose()


def test_the_media_url_is_built_from_the_sids_only() -> None:
    url = recording_media_url("https://api.twilio.com/", "AC" + "1" * 32, RECORDING_SID)
    assert url == f"https://api.twilio.com/2010-04-01/Accounts/AC{'1' * 32}/Recordings/{RECORDING_SID}.wav"
    with pytest.raises(PermanentError):
        recording_media_url("https://api.twilio.com", "AC1/../../evil", RECORDING_SID)
    with pytest.raises(PermanentError):
        recording_media_url("https://api.twilio.com", "AC" + "1" * 32, "RE1?x=https://evil.example")


async def test_download_uses_basic_auth_and_returns_the_wav(
    sandbox: Sandbox, media: TwilioMediaClient
) -> None:
    await register(sandbox)
    assert await fetch(media, account(sandbox)) == (AUDIO, DownloadedMedia("audio/x-wav", len(AUDIO)))
    [request] = await media_requests(sandbox)
    assert request["path"].endswith(f"/Accounts/{sandbox.account_sid}/Recordings/{RECORDING_SID}.wav")
    assert request["auth"] == {"scheme": "basic", "username": sandbox.account_sid}
    assert request["headers"]["accept-encoding"] == "identity"


async def test_download_streams_into_a_file(sandbox: Sandbox, media: TwilioMediaClient) -> None:
    await register(sandbox)
    with tempfile.TemporaryFile() as file:
        file.write(b"left over from an earlier attempt")
        downloaded = await media.download(account(sandbox), RECORDING_SID, file)
        file.seek(0)
        assert (file.read(), downloaded.size) == (AUDIO, len(AUDIO))


async def test_404_for_the_first_requests_is_waited_out_inside_the_client(sandbox: Sandbox) -> None:
    await media_faults(sandbox, unavailable_requests=3)
    await register(sandbox)
    fake = FakeTime()
    media = fresh_media_client(sandbox, fake)
    try:
        audio, _ = await fetch(media, account(sandbox))
    finally:
        await media.aclose()
    assert audio == AUDIO
    assert [r["status"] for r in await media_requests(sandbox)] == [404, 404, 404, 200]
    assert len(fake.sleeps) == 3 and fake.sleeps[0] <= 0.5 and fake.sleeps[2] <= 2.0  # backoff with jitter


async def test_404_for_the_first_second_is_waited_out_in_real_time(
    sandbox: Sandbox, media: TwilioMediaClient
) -> None:
    await media_faults(sandbox, unavailable_seconds=1.0)
    await register(sandbox)
    started = time.monotonic()
    audio, _ = await fetch(media, account(sandbox))
    assert audio == AUDIO and time.monotonic() - started >= 0.9
    statuses = [r["status"] for r in await media_requests(sandbox)]
    assert statuses[-1] == 200 and set(statuses[:-1]) == {404} and 2 <= len(statuses) <= 8


async def test_media_still_missing_after_the_wait_is_transient_with_retry_after(sandbox: Sandbox) -> None:
    fake = FakeTime()
    media = fresh_media_client(sandbox, fake)
    try:
        with pytest.raises(TransientError, match="not available yet") as info:
            await fetch(media, account(sandbox), "RE" + "9" * 32)
    finally:
        await media.aclose()
    assert info.value.retry_after == 10.0
    assert sum(fake.sleeps) <= 10.0 and 4 <= len(fake.sleeps) <= 8
    assert len(await media_requests(sandbox)) == len(fake.sleeps) + 1


async def test_without_a_fresh_media_wait_a_404_means_gone_at_once(sandbox: Sandbox) -> None:
    media = TwilioMediaClient(sandbox.urls.twilio, ["http://127.0.0.1:*"], max_bytes=1_000_000)
    try:
        with pytest.raises(RecordingGone, match="404"):
            await fetch(media, account(sandbox), "RE" + "9" * 32)
    finally:
        await media.aclose()
    assert len(await media_requests(sandbox)) == 1


async def test_bad_credentials_are_permanent_and_not_retried(
    sandbox: Sandbox, media: TwilioMediaClient
) -> None:
    await register(sandbox)
    with pytest.raises(PermanentError, match="HTTP 401"):
        await fetch(media, account(sandbox, "wrong-token"))
    assert len(await media_requests(sandbox)) == 1


async def test_server_errors_go_to_the_bus_at_once(sandbox: Sandbox, media: TwilioMediaClient) -> None:
    await register(sandbox)
    async with httpx.AsyncClient() as client:
        await client.post(f"{sandbox.urls.twilio}/_sandbox/faults",
                          json={"method": "GET", "path_regex": "Recordings", "status": 503, "retry_after": 7})  # fmt: skip
    with pytest.raises(TransientError) as info:
        await fetch(media, account(sandbox))
    assert not isinstance(info.value, PartialMedia) and info.value.retry_after == 7.0
    assert len(await media_requests(sandbox)) == 1


async def test_a_declared_size_over_the_limit_is_refused_before_reading(sandbox: Sandbox) -> None:
    await register(sandbox)
    media = fresh_media_client(sandbox, max_bytes=10_000)
    try:
        with pytest.raises(RecordingTooLarge, match=f"{len(AUDIO)} bytes, limit 10000"):
            await fetch(media, account(sandbox))
    finally:
        await media.aclose()


async def test_an_undeclared_stream_is_cut_off_at_the_limit_in_bounded_memory() -> None:
    chunk, total = b"\0" * 65536, 1024  # 64 MiB offered, chunked, without a Content-Length
    app = FastAPI()

    @app.get("/2010-04-01/Accounts/{sid}/Recordings/{name}")
    async def endless(sid: str, name: str) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(total):
                yield chunk

        return StreamingResponse(body(), media_type="audio/x-wav")

    async with serve_app(app) as origin:
        media = TwilioMediaClient(origin, ["http://127.0.0.1:*"], max_bytes=200_000)
        tracemalloc.start()
        try:
            with pytest.raises(RecordingTooLarge, match="exceeds 200000 bytes"):
                await fetch(media, TwilioAccount("AC" + "1" * 32, SecretStr("t")))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await media.aclose()
    assert peak < 4_000_000, f"peak {peak} bytes: the download held far more than its limit"


@pytest.mark.parametrize("mode", ["cut", "short"])
async def test_partial_media_is_transient_and_the_next_attempt_gets_it_all(
    sandbox: Sandbox, media: TwilioMediaClient, mode: str
) -> None:
    await media_faults(sandbox, partial=mode, partial_times=2)
    await register(sandbox)
    with pytest.raises(PartialMedia) as info:
        await fetch(media, account(sandbox))
    assert isinstance(info.value, TransientError)
    with tempfile.TemporaryFile() as file, pytest.raises(PartialMedia):
        await media.download(account(sandbox), RECORDING_SID, file)
    assert (await fetch(media, account(sandbox)))[0] == AUDIO


async def test_hosts_outside_the_allow_list_are_refused(sandbox: Sandbox) -> None:
    await register(sandbox)
    media = TwilioMediaClient(sandbox.urls.twilio, ["api.twilio.com"], max_bytes=1_000_000)
    try:
        with pytest.raises(EgressDenied):
            await fetch(media, account(sandbox))
    finally:
        await media.aclose()
    assert await media_requests(sandbox) == []
