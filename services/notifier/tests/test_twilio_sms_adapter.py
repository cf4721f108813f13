"""The real Twilio Messages adapter against the Twilio stand-in (spec-validated)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_notifier.adapters import TwilioSmsSender
from voiceticket_notifier.ports import Sms, SmsAccount, SmsRejected


@pytest.fixture
async def sender(sandbox):  # type: ignore[no-untyped-def]
    adapter = TwilioSmsSender(["127.0.0.1"], api_base_url=sandbox.urls.twilio)
    yield adapter
    await adapter.aclose()


def account(sandbox, token: str | None = None) -> SmsAccount:  # type: ignore[no-untyped-def]
    return SmsAccount(sandbox.account_sid, SecretStr(token or sandbox.auth_token))


async def test_sms_is_sent_and_valid_per_spec(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    receipt = await sender.send(
        account(sandbox), Sms(to="+14155550100", sender="+15005550006", body="HELP-1 created")
    )
    assert receipt.message_sid.startswith("SM")
    async with httpx.AsyncClient() as client:
        [request] = (await client.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()
    assert request["valid"] and request["body"]["Body"] == "HELP-1 created"


async def test_messaging_service_sid_is_used_as_sender(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    await sender.send(account(sandbox), Sms(to="+14155550100", sender="MG" + "1" * 32, body="x"))
    async with httpx.AsyncClient() as client:
        [request] = (await client.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()
    assert request["body"]["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in request["body"]


async def test_opted_out_recipient_is_rejected_for_good(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        await client.post(f"{sandbox.urls.twilio}/_sandbox/opted-out", json={"number": "+14155550199"})
    with pytest.raises(SmsRejected) as info:
        await sender.send(account(sandbox), Sms(to="+14155550199", sender="+15005550006", body="x"))
    assert info.value.code == "21610"


async def test_server_errors_are_transient_and_bad_credentials_permanent(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        await client.post(f"{sandbox.urls.twilio}/_sandbox/faults",
                          json={"method": "POST", "path_regex": "Messages", "status": 503, "times": 1})  # fmt: skip
    with pytest.raises(TransientError):
        await sender.send(account(sandbox), Sms(to="+14155550100", sender="+15005550006", body="x"))
    with pytest.raises(PermanentError, match="HTTP 401"):
        await sender.send(account(sandbox, "wrong"), Sms(to="+14155550100", sender="+15005550006", body="x"))
