"""Signatures behind proxies: the public URL comes from PUBLIC_BASE_URL, or from X-Forwarded-* only
when the direct peer is a trusted proxy. Tampered URLs, parameters and bodies, and other accounts'
signatures are refused with 403 and publish nothing. JSON webhooks verify through bodySHA256."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from ingress_testkit import (
    BASE,
    CALL_SID,
    LINE,
    TOKEN,
    incoming,
    ingress_client,
    recording_params,
    signed,
)
from twilio.request_validator import RequestValidator

from voiceticket_common.events import CallCompleted, CallReceived, RecordingCompleted
from voiceticket_common.testing import RecordingPublisher

PUBLIC = "https://voice.example.org"
PROXY = "10.0.0.5"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "voice.example.org", "X-Forwarded-Port": "443"}
INTERNAL = "http://voiceticket-ingress.voiceticket.svc:8080"  # what ingress itself sees


async def post_voice(client, signed_for: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    params = incoming()
    return await client.post(
        "/twilio/voice",
        data=params,
        headers={**signed(f"{signed_for}/twilio/voice", params), **(headers or {})},
    )


async def test_trusted_proxy_names_the_public_url_and_callbacks_use_it() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(
        publisher, peer=PROXY, base_url=INTERNAL, public_base_url="http://127.0.0.1:8080",
        trusted_proxies="10.0.0.0/8",
    ) as client:  # fmt: skip
        response = await post_voice(client, PUBLIC, FORWARDED)
    assert response.status_code == 200, response.text
    assert isinstance(publisher.published[0], CallReceived)
    record = ET.fromstring(response.text).find("Record")
    assert record.get("recordingStatusCallback").startswith(f"{PUBLIC}/twilio/recording?ctx=")
    assert record.get("action").startswith(f"{PUBLIC}/twilio/record-done?ctx=")


@pytest.mark.parametrize(
    ("headers", "public"),
    [
        ({**FORWARDED, "X-Forwarded-Port": "8443"}, "https://voice.example.org:8443"),
        ({"X-Forwarded-Proto": "http, https", "X-Forwarded-Host": "evil.example, voice.example.org"}, PUBLIC),
        ({"X-Forwarded-Proto": "https"}, "https://voiceticket-ingress.voiceticket.svc:8080"),
    ],
    ids=["non-default-port", "appended-lists-take-the-proxys-own-value", "proto-only-keeps-host"],
)
async def test_forwarded_header_forms(headers: dict[str, str], public: str) -> None:
    publisher = RecordingPublisher()
    async with ingress_client(
        publisher, peer=PROXY, base_url=INTERNAL, trusted_proxies=["10.0.0.5"]
    ) as client:
        response = await post_voice(client, public, headers)
    assert response.status_code == 200, response.text
    assert len(publisher.published) == 1


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, peer="198.51.100.7", trusted_proxies="10.0.0.0/8") as client:
        forged = await post_voice(client, PUBLIC, FORWARDED)
        assert forged.status_code == 403
        assert publisher.published == []
        # the same peer, signed for the configured public URL, is fine: only the headers are ignored
        genuine = await post_voice(client, BASE, FORWARDED)
    assert genuine.status_code == 200
    assert len(publisher.published) == 1


async def test_without_trusted_proxies_forwarded_headers_never_count() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, peer="127.0.0.1") as client:
        response = await post_voice(client, PUBLIC, FORWARDED)
    assert response.status_code == 403
    assert publisher.published == []


@pytest.mark.parametrize(
    "bad",
    [
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "voice.example.org/evil@x"},
        {"X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "voice.example.org"},
    ],
    ids=["host-with-path", "unknown-scheme"],
)
async def test_malformed_forwarded_headers_fall_back_to_the_public_base_url(bad: dict[str, str]) -> None:
    publisher = RecordingPublisher()
    async with ingress_client(
        publisher, peer=PROXY, base_url=INTERNAL, trusted_proxies="10.0.0.0/8"
    ) as client:
        assert (await post_voice(client, PUBLIC, bad)).status_code == 403
        assert (await post_voice(client, BASE, bad)).status_code == 200


@pytest.fixture
async def answered():  # type: ignore[no-untyped-def]
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        params = incoming()
        response = await client.post(
            "/twilio/voice", data=params, headers=signed(f"{BASE}/twilio/voice", params)
        )
        url = ET.fromstring(response.text).find("Record").get("recordingStatusCallback")
        yield client, publisher, url


@pytest.mark.parametrize(
    "tamper",
    ["parameter", "added-parameter", "query", "added-query", "other-account", "path"],
)
async def test_tampered_recording_callback_is_403_and_publishes_nothing(answered, tamper: str) -> None:
    client, publisher, url = answered
    params = recording_params()
    headers = signed(url, params)
    sent_url, sent_params = url, dict(params)
    if tamper == "parameter":
        sent_params["RecordingUrl"] = "https://attacker.example.com/recording"
    elif tamper == "added-parameter":
        sent_params["RecordingDuration2"] = "1"
    elif tamper == "query":
        sent_url = url.replace("ctx=", "ctx=A")
    elif tamper == "added-query":  # e.g. a forged trace context
        sent_url = url + "&tp=00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    elif tamper == "other-account":
        headers = signed(url, params, token="another-accounts-auth-token")
    elif tamper == "path":
        sent_url = url.replace("/twilio/recording?", "/twilio/record-done?")
    response = await client.post(sent_url, data=sent_params, headers=headers)
    assert response.status_code == 403
    assert [type(e) for e in publisher.published] == [CallReceived]


async def test_unchanged_recording_callback_passes(answered) -> None:
    client, publisher, url = answered
    params = recording_params()
    response = await client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 204
    assert isinstance(publisher.published[-1], RecordingCompleted)


def json_webhook(url: str, payload: dict[str, object], token: str = TOKEN):  # type: ignore[no-untyped-def]
    body = json.dumps(payload).encode()
    signed_url = f"{url}?{urlencode({'bodySHA256': hashlib.sha256(body).hexdigest()})}"
    signature = RequestValidator(token).compute_signature(signed_url, {})
    return signed_url, body, {"X-Twilio-Signature": signature, "Content-Type": "application/json"}


CALL_DONE = {"CallSid": CALL_SID, "To": LINE, "CallStatus": "completed", "CallDuration": 42}


async def test_json_webhook_verifies_through_its_body_hash() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        url, body, headers = json_webhook(f"{BASE}/twilio/call-status", CALL_DONE)
        response = await client.post(url, content=body, headers=headers)
    assert response.status_code == 204, response.text
    [event] = publisher.published
    assert isinstance(event, CallCompleted) and event.duration_seconds == 42


@pytest.mark.parametrize("tamper", ["body", "hash", "no-hash", "other-account"])
async def test_tampered_json_webhook_is_403(tamper: str) -> None:
    publisher = RecordingPublisher()
    url, body, headers = json_webhook(f"{BASE}/twilio/call-status", CALL_DONE)
    if tamper == "body":
        body = body.replace(b"42", b"4200")
    elif tamper == "hash":
        url = url[:-4] + "0000"
    elif tamper == "no-hash":
        url = f"{BASE}/twilio/call-status"
        headers["X-Twilio-Signature"] = RequestValidator(
            "tenant-auth-token-0123456789abcdef"
        ).compute_signature(url, {})
    elif tamper == "other-account":
        url, body, headers = json_webhook(f"{BASE}/twilio/call-status", CALL_DONE, token="other-token")
    async with ingress_client(publisher) as client:
        response = await client.post(url, content=body, headers=headers)
    assert response.status_code == 403
    assert publisher.published == []
