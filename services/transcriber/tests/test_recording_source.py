"""Downloading Twilio recording media (TwilioRecordingSource) against the Twilio stand-in: basic
auth, waiting out the 404 right after the callback, the size cap with bounded memory, and cut or
truncated downloads recognised as transient."""

from __future__ import annotations

import base64
import time
import tracemalloc
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import EgressDenied
from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.server import serve_app
from voiceticket_transcriber.ports import TwilioAccount
from voiceticket_transcriber.recording_source import PartialMedia, RecordingTooLarge, TwilioRecordingSource

RECORDING_SID = "RE" + "4" * 32
AUDIO = make_tone_wav(1.0, frequency=611.0)


async def register(sandbox, audio: bytes = AUDIO) -> str:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.twilio}/_sandbox/recordings", json={
            "account_sid": sandbox.account_sid, "recording_sid": RECORDING_SID,
            "audio_base64": base64.b64encode(audio).decode(), "transcript": "x"})).raise_for_status()  # fmt: skip
    return f"{sandbox.urls.twilio}/2010-04-01/Accounts/{sandbox.account_sid}/Recordings/{RECORDING_SID}"


async def media_faults(sandbox, **faults: object) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.twilio}/_sandbox/media-faults", json=faults)).raise_for_status()


async def media_requests(sandbox) -> list[dict]:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        records = (await client.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()
    return [r for r in records if "/Recordings/" in r["path"]]


def account(sandbox, token: str | None = None) -> TwilioAccount:  # type: ignore[no-untyped-def]
    return TwilioAccount(sandbox.account_sid, SecretStr(token or sandbox.auth_token))


class FakeTime:
    """A clock that advances only when the adapter sleeps, so waits cost no real time."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
async def source() -> AsyncIterator[TwilioRecordingSource]:
    adapter = TwilioRecordingSource(["127.0.0.1"], max_bytes=1_000_000, wait_seconds=5.0, initial_backoff=0.1)
    yield adapter
    await adapter.aclose()


async def test_download_uses_basic_auth_and_returns_the_wav(sandbox, source) -> None:  # type: ignore[no-untyped-def]
    recording = await source.fetch(await register(sandbox), account(sandbox))
    assert (recording.audio, recording.content_type, recording.filename) == (
        AUDIO,
        "audio/x-wav",
        "recording.wav",
    )
    [request] = await media_requests(sandbox)
    assert request["path"].endswith(f"/Recordings/{RECORDING_SID}.wav")
    assert request["auth"] == {"scheme": "basic", "username": sandbox.account_sid}
    assert request["headers"]["accept-encoding"] == "identity"


async def test_404_for_the_first_requests_is_waited_out_inside_the_adapter(sandbox) -> None:  # type: ignore[no-untyped-def]
    await media_faults(sandbox, unavailable_requests=3)
    fake = FakeTime()
    source = TwilioRecordingSource(
        ["127.0.0.1"], 1_000_000, wait_seconds=10.0, sleep=fake.sleep, clock=fake.clock
    )
    try:
        recording = await source.fetch(await register(sandbox), account(sandbox))
    finally:
        await source.aclose()
    assert recording.audio == AUDIO
    assert [r["status"] for r in await media_requests(sandbox)] == [404, 404, 404, 200]
    assert len(fake.sleeps) == 3 and fake.sleeps[0] <= 0.5 and fake.sleeps[2] <= 2.0  # backoff with jitter


async def test_404_for_the_first_second_is_waited_out_in_real_time(sandbox, source) -> None:  # type: ignore[no-untyped-def]
    await media_faults(sandbox, unavailable_seconds=1.0)
    url = await register(sandbox)
    started = time.monotonic()
    recording = await source.fetch(url, account(sandbox))
    assert recording.audio == AUDIO and time.monotonic() - started >= 0.9
    statuses = [r["status"] for r in await media_requests(sandbox)]
    assert statuses[-1] == 200 and set(statuses[:-1]) == {404} and 2 <= len(statuses) <= 8


async def test_media_still_missing_after_the_wait_is_transient_with_retry_after(sandbox) -> None:  # type: ignore[no-untyped-def]
    url = f"{sandbox.urls.twilio}/2010-04-01/Accounts/{sandbox.account_sid}/Recordings/RE{'9' * 32}"
    fake = FakeTime()
    source = TwilioRecordingSource(
        ["127.0.0.1"], 1_000_000, wait_seconds=10.0, sleep=fake.sleep, clock=fake.clock
    )
    try:
        with pytest.raises(TransientError, match="not available yet") as info:
            await source.fetch(url, account(sandbox))
    finally:
        await source.aclose()
    assert info.value.retry_after == 10.0
    assert sum(fake.sleeps) <= 10.0 and 4 <= len(fake.sleeps) <= 8
    assert len(await media_requests(sandbox)) == len(fake.sleeps) + 1


async def test_bad_credentials_are_permanent_and_not_retried(sandbox, source) -> None:  # type: ignore[no-untyped-def]
    url = await register(sandbox)
    with pytest.raises(PermanentError, match="HTTP 401"):
        await source.fetch(url, account(sandbox, "wrong-token"))
    assert len(await media_requests(sandbox)) == 1


async def test_server_errors_go_to_the_bus_at_once(sandbox, source) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        await client.post(f"{sandbox.urls.twilio}/_sandbox/faults",
                          json={"method": "GET", "path_regex": "Recordings", "status": 503, "retry_after": 7})  # fmt: skip
    with pytest.raises(TransientError) as info:
        await source.fetch(await register(sandbox), account(sandbox))
    assert not isinstance(info.value, PartialMedia) and info.value.retry_after == 7.0
    assert len(await media_requests(sandbox)) == 1


async def test_a_declared_size_over_the_limit_is_refused_before_reading(sandbox) -> None:  # type: ignore[no-untyped-def]
    source = TwilioRecordingSource(["127.0.0.1"], max_bytes=10_000)
    try:
        with pytest.raises(RecordingTooLarge, match=f"{len(AUDIO)} bytes, limit 10000"):
            await source.fetch(await register(sandbox), account(sandbox))
    finally:
        await source.aclose()


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
        source = TwilioRecordingSource(["127.0.0.1"], max_bytes=200_000)
        tracemalloc.start()
        try:
            with pytest.raises(RecordingTooLarge, match="exceeds 200000 bytes"):
                await source.fetch(f"{origin}/2010-04-01/Accounts/AC{'1' * 32}/Recordings/{RECORDING_SID}",
                                   TwilioAccount("AC" + "1" * 32, SecretStr("t")))  # fmt: skip
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await source.aclose()
    assert peak < 4_000_000, f"peak {peak} bytes: the download held far more than its limit"


@pytest.mark.parametrize("mode", ["cut", "short"])
async def test_partial_media_is_transient_and_the_next_attempt_gets_it_all(
    sandbox, source, mode: str
) -> None:  # type: ignore[no-untyped-def]
    await media_faults(sandbox, partial=mode, partial_times=1)
    url = await register(sandbox)
    with pytest.raises(PartialMedia) as info:
        await source.fetch(url, account(sandbox))
    assert isinstance(info.value, TransientError)
    assert (await source.fetch(url, account(sandbox))).audio == AUDIO


async def test_hosts_outside_the_allow_list_are_refused(sandbox) -> None:  # type: ignore[no-untyped-def]
    source = TwilioRecordingSource(["api.twilio.com"], max_bytes=1_000_000)
    try:
        with pytest.raises(EgressDenied):
            await source.fetch(await register(sandbox), account(sandbox))
    finally:
        await source.aclose()
    assert await media_requests(sandbox) == []
