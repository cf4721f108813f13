"""Ingress against signed and unsigned Twilio webhooks (real app over ASGI, fakes for bus and config)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from ingress_testkit import (
    ACCOUNT,
    BASE,
    CALL_SID,
    CALLER,
    LINE,
    incoming,
    ingress_client,
    recording_params,
    signed,
)

from voiceticket_common.events import CallReceived, RecordingAbsent, RecordingCompleted
from voiceticket_common.sealing import CallErased
from voiceticket_common.testing import RecordingPublisher


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
async def client(publisher: RecordingPublisher) -> AsyncIterator[httpx.AsyncClient]:
    async with ingress_client(publisher) as c:
        yield c


async def answer(client: httpx.AsyncClient) -> ET.Element:
    params = incoming()
    response = await client.post("/twilio/voice", data=params, headers=signed(f"{BASE}/twilio/voice", params))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    return ET.fromstring(response.text)


async def test_signed_incoming_call_gets_greeting_notice_and_record(client, publisher) -> None:
    root = await answer(client)
    says = [e.text for e in root.findall("Say")]
    assert says == ["Welcome to Acme support.", "This call is recorded."]
    assert root.find("Say").get("voice") == "Polly.Joanna"
    record = root.find("Record")
    assert record is not None
    assert record.get("maxLength") == "90"
    assert record.get("recordingStatusCallbackEvent") == "completed absent"
    callback = urlsplit(record.get("recordingStatusCallback"))
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{BASE}/twilio/recording"
    assert "ctx" in parse_qs(callback.query)
    assert CALLER not in record.get("recordingStatusCallback"), "no phone number in callback URLs"
    assert record.get("action").startswith(f"{BASE}/twilio/record-done?")

    [event] = publisher.published
    assert isinstance(event, CallReceived)
    assert (event.tenant_id, event.call_sid, event.caller_number, event.line_number) == (
        "acme",
        CALL_SID,
        CALLER,
        LINE,
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"},
        signed(f"{BASE}/twilio/voice", incoming(), token="another-accounts-token"),
        signed("https://attacker.example.com/twilio/voice", incoming()),
    ],
    ids=["unsigned", "garbage", "other-account-token", "other-url"],
)
async def test_unverified_incoming_call_is_403_and_publishes_nothing(client, publisher, headers) -> None:
    response = await client.post("/twilio/voice", data=incoming(), headers=headers)
    assert response.status_code == 403
    assert publisher.published == []


async def test_tampered_parameter_is_rejected(client, publisher) -> None:
    headers = signed(f"{BASE}/twilio/voice", incoming())
    response = await client.post("/twilio/voice", data=incoming(From="+19999999999"), headers=headers)
    assert response.status_code == 403
    assert publisher.published == []


async def test_unknown_number_gets_a_polite_hangup_and_no_event(client, publisher) -> None:
    params = incoming(To="+15550001111")
    response = await client.post("/twilio/voice", data=params, headers=signed(f"{BASE}/twilio/voice", params))
    root = ET.fromstring(response.text)
    assert response.status_code == 200
    assert "not in service" in root.find("Say").text
    assert root.find("Hangup") is not None and root.find("Record") is None
    assert publisher.published == []


async def recording_callback_url(client) -> str:
    return (await answer(client)).find("Record").get("recordingStatusCallback")


async def test_recording_completed_publishes_event_with_call_context(client, publisher) -> None:
    url = await recording_callback_url(client)
    params = recording_params()
    response = await client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 204
    event = publisher.published[-1]
    assert isinstance(event, RecordingCompleted)
    assert event.caller_number == CALLER and event.line_number == LINE and event.tenant_id == "acme"
    assert event.recording_sid == params["RecordingSid"] and event.duration_seconds == 17


async def test_recording_absent_publishes_absent_event(client, publisher) -> None:
    url = await recording_callback_url(client)
    params = recording_params("absent")
    response = await client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 204
    event = publisher.published[-1]
    assert isinstance(event, RecordingAbsent) and event.error_code == "16101"


async def test_in_progress_recording_status_publishes_nothing(client, publisher) -> None:
    url = await recording_callback_url(client)
    params = recording_params("in-progress")
    response = await client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 204
    assert len(publisher.published) == 1


async def test_recording_callback_with_forged_context_is_403(client, publisher) -> None:
    url = await recording_callback_url(client)
    forged = url.replace("ctx=", "ctx=x")
    params = recording_params()
    response = await client.post(forged, data=params, headers=signed(forged, params))
    assert response.status_code == 403
    assert len(publisher.published) == 1  # only the CallReceived of the answer


async def test_unsigned_recording_callback_is_403(client, publisher) -> None:
    url = await recording_callback_url(client)
    response = await client.post(url, data=recording_params())
    assert response.status_code == 403
    assert len(publisher.published) == 1


async def test_record_action_says_goodbye_and_hangs_up(client) -> None:
    url = (await answer(client)).find("Record").get("action")
    params = {"CallSid": CALL_SID, "AccountSid": ACCOUNT, "RecordingUrl": "x", "Digits": "hangup"}
    response = await client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 200
    root = ET.fromstring(response.text)
    assert root.find("Hangup") is not None
    assert "Goodbye" in root.find("Say").text and root.find("Say").get("voice") == "Polly.Joanna"


async def test_health_and_readiness(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


class ErasingPublisher(RecordingPublisher):
    """A bus whose call keys say the call was erased once it has been answered."""

    async def publish(self, event, *, discriminator: str = "") -> None:  # type: ignore[no-untyped-def]
        if self.published:
            raise CallErased("the call's data was erased")
        await super().publish(event, discriminator=discriminator)


async def test_a_callback_of_an_erased_call_is_answered_empty_and_publishes_nothing() -> None:
    publisher = ErasingPublisher()
    async with ingress_client(publisher) as client:
        url = await recording_callback_url(client)
        params = recording_params()
        response = await client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 200 and ET.fromstring(response.text).tag == "Response"
    assert list(ET.fromstring(response.text)) == []
    assert [type(e) for e in publisher.published] == [CallReceived]
