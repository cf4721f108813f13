"""POST /twilio/message-status (the SMS's StatusCallback, context sealed by the notifier) and
POST /twilio/call-status (configured on the number): signed, verified, one event each."""

from __future__ import annotations

import logging

import pytest
from ingress_testkit import ACCOUNT, BASE, CALL_SID, CALLBACK_KEY, CALLER, LINE, ingress_client, signed

from voiceticket_common.call_context import CallContext, CallContextSealer
from voiceticket_common.events import CallCompleted, NotificationDelivery
from voiceticket_common.testing import RecordingPublisher

MESSAGE_SID = "SM" + "d" * 32
SEALER = CallContextSealer(CALLBACK_KEY)


def status_url(context: CallContext | None = None) -> str:
    sealed = SEALER.seal(context or CallContext("acme", LINE, call_sid=CALL_SID))
    return f"{BASE}/twilio/message-status?ctx={sealed}"


def receipt(status: str = "delivered", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": MESSAGE_SID, "SmsSid": MESSAGE_SID, "AccountSid": ACCOUNT, "From": LINE,
        "To": CALLER, "MessageStatus": status, "SmsStatus": status, "ApiVersion": "2010-04-01", **extra,
    }  # fmt: skip


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


async def test_delivery_receipt_becomes_a_notification_delivery_event(publisher, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    url, params = status_url(), receipt("undelivered", ErrorCode="30003")
    async with ingress_client(publisher) as client:
        response = await client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 204
    [event] = publisher.published
    assert isinstance(event, NotificationDelivery)
    assert (event.tenant_id, event.call_sid, event.message_sid) == ("acme", CALL_SID, MESSAGE_SID)
    assert (event.status, event.error_code) == ("undelivered", "30003")
    assert CALLER not in caplog.text and CALLER.lstrip("+") not in caplog.text


@pytest.mark.parametrize("tamper", ["status", "other-account", "no-context", "recording-context"])
async def test_unverifiable_delivery_receipt_is_403(publisher, tamper: str) -> None:
    url, params = status_url(), receipt()
    headers = signed(url, params)
    if tamper == "status":
        params["MessageStatus"] = "read"
    elif tamper == "other-account":
        headers = signed(url, params, token="another-accounts-auth-token")
    elif tamper == "no-context":
        url = f"{BASE}/twilio/message-status"
        headers = signed(url, params)
    elif tamper == "recording-context":  # validly sealed and signed, but for a recording callback
        url = status_url(CallContext("acme", LINE, CALLER))
        headers = signed(url, params)
    async with ingress_client(publisher) as client:
        response = await client.post(url, data=params, headers=headers)
    assert response.status_code == 403
    assert publisher.published == []


def call_status(status: str = "completed", **extra: str) -> dict[str, str]:
    return {
        "CallSid": CALL_SID, "AccountSid": ACCOUNT, "From": CALLER, "To": LINE, "CallStatus": status,
        "Direction": "inbound", "ApiVersion": "2010-04-01", "CallbackSource": "call-progress-events",
        "SequenceNumber": "0", **extra,
    }  # fmt: skip


async def test_call_status_completed_publishes_call_completed(publisher) -> None:
    url, params = f"{BASE}/twilio/call-status", call_status(CallDuration="37")
    async with ingress_client(publisher) as client:
        response = await client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 204
    [event] = publisher.published
    assert isinstance(event, CallCompleted)
    assert (event.tenant_id, event.call_sid, event.status, event.duration_seconds) == (
        "acme",
        CALL_SID,
        "completed",
        37,
    )


async def test_interim_call_status_publishes_nothing(publisher) -> None:
    url, params = f"{BASE}/twilio/call-status", call_status("ringing")
    async with ingress_client(publisher) as client:
        response = await client.post(url, data=params, headers=signed(url, params))
    assert response.status_code == 204
    assert publisher.published == []


@pytest.mark.parametrize("tamper", ["duration", "unknown-line", "unsigned"])
async def test_unverifiable_call_status_is_403(publisher, tamper: str) -> None:
    url, params = f"{BASE}/twilio/call-status", call_status(CallDuration="37")
    headers = signed(url, params)
    if tamper == "duration":
        params["CallDuration"] = "3700"
    elif tamper == "unknown-line":
        params = call_status(To="+15550001111")
        headers = signed(url, params)
    elif tamper == "unsigned":
        headers = {}
    async with ingress_client(publisher) as client:
        response = await client.post(url, data=params, headers=headers)
    assert response.status_code == 403
    assert publisher.published == []
