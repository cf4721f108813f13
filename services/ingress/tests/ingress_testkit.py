"""Shared pieces of the ingress tests: a line, its tenant's token, signing, and the app over ASGI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from cryptography.fernet import Fernet
from pydantic import SecretStr
from twilio.request_validator import RequestValidator

from voiceticket_common.runtime_views import IngressView
from voiceticket_common.testing import CALLER, LINE, RecordingPublisher, StaticRuntimeConfig
from voiceticket_ingress.app import create_app
from voiceticket_ingress.settings import IngressSettings

BASE = "https://voice.example.com"
TOKEN = "tenant-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "a" * 32
CALL_SID = "CA" + "c" * 32
# BASE is not loopback, so the public development key would be refused: a key of the tests' own.
CALLBACK_KEY = SecretStr(Fernet.generate_key().decode())
LINE_FIELDS: dict[str, Any] = {
    "greeting": "Welcome to Acme support.",
    "recording_notice": "This call is recorded.",
    "language": "en",
    "voice": "Polly.Joanna",
    "max_recording_seconds": 90,
}


def runtime_config(**line_fields: Any) -> StaticRuntimeConfig[IngressView]:
    return StaticRuntimeConfig.of(
        IngressView,
        {
            LINE: (
                "acme",
                {**LINE_FIELDS, **line_fields},
                {"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN},
            )
        },
    )


@asynccontextmanager
async def ingress_client(
    publisher: RecordingPublisher,
    config: StaticRuntimeConfig[IngressView] | None = None,
    peer: str = "127.0.0.1",
    base_url: str = BASE,
    **settings: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app over ASGI; ``peer`` is the direct peer's address ingress sees."""
    app = create_app(
        IngressSettings(**{"public_base_url": BASE, "callback_context_key": CALLBACK_KEY, **settings}),
        publisher=publisher,
        config=config or runtime_config(),
    )
    # a crash is answered 500 as a server would, so tests can count 5xx instead of stopping
    transport = httpx.ASGITransport(app=app, client=(peer, 40000), raise_app_exceptions=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def signed(url: str, params: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def incoming(**overrides: str) -> dict[str, str]:
    params = {
        "CallSid": CALL_SID,
        "AccountSid": ACCOUNT,
        "From": CALLER,
        "To": LINE,
        "CallStatus": "ringing",
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
    }
    params.update(overrides)
    return params


def recording_params(status: str = "completed") -> dict[str, str]:
    params = {
        "AccountSid": ACCOUNT,
        "CallSid": CALL_SID,
        "RecordingSid": "RE" + "e" * 32,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{'e' * 32}",
        "RecordingStatus": status,
        "RecordingDuration": "17",
        "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
    }
    if status == "absent":
        params["ErrorCode"] = "16101"
    return params


async def answer_and_hang_up(**line_fields: Any) -> tuple[ET.Element, ET.Element]:
    """The TwiML of an incoming call on a line with ``line_fields``, and of its recording's end
    (the caller pressed ``#``)."""
    async with ingress_client(RecordingPublisher(), config=runtime_config(**line_fields)) as client:
        params = incoming()
        response = await client.post(
            "/twilio/voice", data=params, headers=signed(f"{BASE}/twilio/voice", params)
        )
        assert response.status_code == 200
        root = ET.fromstring(response.text)
        action = root.find("Record").get("action")
        done = {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "Digits": "#"}
        goodbye = await client.post(action, data=done, headers=signed(action, done))
        return root, ET.fromstring(goodbye.text)
