"""The caller simulator plays Twilio's side of a call against a fake ingress that checks signatures."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
import openai
import pytest_asyncio
from fastapi import FastAPI, Request
from fastapi.responses import Response
from twilio.request_validator import RequestValidator

from voiceticket_sandbox import CallerSimulator, make_tone_wav
from voiceticket_sandbox.proxy import ForwardingProxy
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.twilio_webhooks import send_json_webhook

if TYPE_CHECKING:
    from conftest import Sandbox

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Please leave a message.</Say>'
    '<Record action="/twilio/recording-done?tenant=acme" maxLength="120" '
    'recordingStatusCallback="/twilio/recording?traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" '
    'recordingStatusCallbackEvent="completed absent"/></Response>'
)


@dataclass
class FakeIngress:
    """Answers like the ingress service and remembers each webhook with its signature check."""

    auth_token: str
    twiml: str = TWIML
    received: list[tuple[str, dict[str, str], bool]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/twilio/{hook}")
        async def hook(hook: str, request: Request) -> Response:
            form = {k: str(v) for k, v in (await request.form()).items()}
            valid = RequestValidator(self.auth_token).validate(
                str(request.url), form, request.headers.get("x-twilio-signature", "")
            )
            self.received.append((str(request.url), form, valid))
            if not valid:
                return Response(status_code=403)
            if hook == "voice":
                return Response(self.twiml, media_type="application/xml")
            return Response(status_code=204)

        return app

    def hooks(self) -> list[str]:
        return [url.split("/twilio/")[1].split("?")[0] for url, _, _ in self.received]


@pytest_asyncio.fixture
async def ingress(sandbox: Sandbox) -> AsyncIterator[tuple[FakeIngress, str]]:
    fake = FakeIngress(sandbox.auth_token)
    async with serve_app(fake.app()) as origin:
        yield fake, origin


def caller(sandbox: Sandbox, origin: str) -> CallerSimulator:
    return CallerSimulator(origin, sandbox.account_sid, sandbox.auth_token, sandbox.urls.twilio)


async def test_call_sends_signed_webhooks_in_twilio_order(
    sandbox: Sandbox, ingress: tuple[FakeIngress, str], http: httpx.AsyncClient
) -> None:
    fake, origin = ingress
    audio = make_tone_wav(seconds=1.5)
    transcript = "My order number 55120 never arrived."

    played = await caller(sandbox, origin).play_call("+4915112345678", "+15005550006", audio, transcript, 9)

    assert re.fullmatch(r"CA[0-9a-f]{32}", played.call_sid)
    assert re.fullmatch(r"RE[0-9a-f]{32}", played.recording_sid)
    assert played.twiml == TWIML
    assert (played.voice_status, played.recording_status, played.action_status) == (200, 204, 204)
    assert fake.hooks() == ["voice", "recording", "recording-done"]
    assert all(valid for _, _, valid in fake.received)
    (_, voice, _), (callback_url, callback, _), (action_url, action, _) = fake.received
    assert voice["CallStatus"] == "ringing" and voice["Direction"] == "inbound"
    assert (voice["From"], voice["Caller"], voice["FromCountry"], voice["ToCountry"]) == (
        "+4915112345678", "+4915112345678", "DE", "US",
    )  # fmt: skip
    assert callback_url.endswith(
        "/twilio/recording?traceparent=00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    )
    recording_url = (
        f"{sandbox.urls.twilio}/2010-04-01/Accounts/{sandbox.account_sid}/Recordings/{played.recording_sid}"
    )
    assert callback["RecordingUrl"] == recording_url
    assert (callback["RecordingStatus"], callback["RecordingDuration"], callback["RecordingSource"]) == (
        "completed", "9", "RecordVerb",
    )  # fmt: skip
    assert callback["CallSid"] == played.call_sid
    assert action_url.endswith("/twilio/recording-done?tenant=acme")
    assert (action["Digits"], action["RecordingUrl"]) == ("hangup", recording_url)

    # what the transcriber would do next: download the media, then transcribe it
    media = await http.get(recording_url + ".wav", auth=sandbox.twilio_auth)
    assert media.content == audio
    with wave.open(io.BytesIO(media.content)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
    client = openai.AsyncOpenAI(api_key="sk-x", base_url=sandbox.urls.openai_v1, http_client=http)
    result = await client.audio.transcriptions.create(
        model="whisper-1", file=("r.wav", media.content, "audio/wav")
    )
    assert result.text == transcript


async def test_absent_call_reports_16101(sandbox: Sandbox, ingress: tuple[FakeIngress, str]) -> None:
    fake, origin = ingress

    played = await caller(sandbox, origin).play_absent_call("+15551230000", "+15005550006")

    assert played.recording_status == 204
    callback = fake.received[1][1]
    assert (callback["RecordingStatus"], callback["ErrorCode"], callback["RecordingDuration"]) == (
        "absent", "16101", "0",
    )  # fmt: skip


async def test_without_record_only_the_voice_webhook_is_sent(
    sandbox: Sandbox, ingress: tuple[FakeIngress, str]
) -> None:
    fake, origin = ingress
    fake.twiml = "<Response><Say>We are closed.</Say><Hangup/></Response>"

    played = await caller(sandbox, origin).play_call("+15551230000", "+15005550006", make_tone_wav(0.2), "x")

    assert (played.recording_status, played.action_status) == (None, None)
    assert fake.hooks() == ["voice"]


async def test_wrong_token_is_caught_by_the_ingress_check(
    sandbox: Sandbox, ingress: tuple[FakeIngress, str]
) -> None:
    fake, origin = ingress
    impostor = CallerSimulator(origin, sandbox.account_sid, "not-the-token", sandbox.urls.twilio)

    played = await impostor.play_absent_call("+15551230000", "+15005550006")

    assert played.voice_status == 403
    assert fake.received[0][2] is False


def test_sign_matches_the_twilio_validator() -> None:
    sim = CallerSimulator("http://ingress", "AC" + "0" * 32, "secret", "http://twilio")
    url = "https://ingress.example/twilio/recording?traceparent=00-abc-def-01"
    params = {"CallSid": "CA" + "1" * 32, "RecordingStatus": "completed", "Digits": "hangup"}

    signature = sim.sign(url, params)

    assert RequestValidator("secret").validate(url, params, signature)
    assert not RequestValidator("other").validate(url, params, signature)


def test_tone_wav_is_mono_16_bit_pcm() -> None:
    with wave.open(io.BytesIO(make_tone_wav(seconds=2.0, rate=8000))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()) == (
            1,
            2,
            8000,
            16000,
        )


async def test_calls_through_a_proxy_are_signed_for_the_public_url(sandbox: Sandbox) -> None:
    seen: list[tuple[str, bool]] = []
    behind = FastAPI()

    @behind.post("/twilio/{hook}")
    async def hook(hook: str, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        public = f"{request.headers['x-forwarded-proto']}://{request.headers['x-forwarded-host']}{request.url.path}"
        if request.url.query:
            public += "?" + request.url.query
        valid = RequestValidator(sandbox.auth_token).validate(
            public, form, request.headers["x-twilio-signature"]
        )
        seen.append((public, valid))
        if hook == "voice":
            return Response(
                TWIML.replace('"/twilio/', '"https://voice.example.test/twilio/'),
                media_type="application/xml",
            )
        return Response(status_code=204)

    async with serve_app(behind) as upstream:
        proxy = ForwardingProxy(upstream)
        async with serve_app(proxy) as proxy_origin:
            simulator = CallerSimulator(
                "https://voice.example.test", sandbox.account_sid, sandbox.auth_token, sandbox.urls.twilio,
                connect={"https://voice.example.test": proxy_origin},
            )  # fmt: skip
            played = await simulator.play_call(
                "+15551230000", "+15005550006", make_tone_wav(0.3, frequency=701), "x"
            )

    assert (played.voice_status, played.recording_status, played.action_status) == (200, 204, 204)
    assert [url.split("?")[0] for url, _ in seen] == [
        "https://voice.example.test/twilio/voice",
        "https://voice.example.test/twilio/recording",
        "https://voice.example.test/twilio/recording-done",
    ]
    assert all(valid for _, valid in seen)
    assert {f["X-Forwarded-Host"] for f in proxy.forwarded} == {"voice.example.test"}
    assert {f["X-Forwarded-Proto"] for f in proxy.forwarded} == {"https"}


async def test_json_webhooks_carry_a_body_hash_in_the_signed_url() -> None:
    received: list[tuple[str, str, str]] = []
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        received.append(
            (str(request.url), (await request.body()).decode(), request.headers["x-twilio-signature"])
        )
        return Response(status_code=204)

    async with serve_app(app) as origin, httpx.AsyncClient() as client:
        await send_json_webhook(client, "secret", f"{origin}/hook?x=1", b'{"CallSid": "CA1"}')
    [(url, body, signature)] = received
    assert "bodySHA256=" in url and url.startswith(f"{origin}/hook?x=1&")
    assert RequestValidator("secret").validate(url, body, signature)
    assert not RequestValidator("secret").validate(url, body.replace("CA1", "CA2"), signature)
