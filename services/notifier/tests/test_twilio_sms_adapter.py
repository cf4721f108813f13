"""The real Twilio Messages adapter against the Twilio stand-in (spec-validated)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.twilio import TwilioAccount
from voiceticket_notifier.adapters import TwilioSmsSender
from voiceticket_notifier.ports import Sms, SmsRejected
from voiceticket_notifier.sms_encoding import measure


@pytest.fixture
async def sender(sandbox):  # type: ignore[no-untyped-def]
    adapter = TwilioSmsSender(["http://127.0.0.1:*"], api_base_url=sandbox.urls.twilio)
    yield adapter
    await adapter.aclose()


def account(sandbox, token: str | None = None) -> TwilioAccount:  # type: ignore[no-untyped-def]
    return TwilioAccount(sandbox.account_sid, SecretStr(token or sandbox.auth_token))


async def recorded(sandbox) -> list[dict]:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{sandbox.urls.twilio}/_sandbox/requests")).json()


async def test_sms_is_sent_and_valid_per_spec(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    callback = "https://voice.example.com/twilio/message-status?ctx=abc&tp=00-1-2-01"
    receipt = await sender.send(
        account(sandbox),
        Sms(to="+14155550100", from_number="+15005550006", body="HELP-1 created", status_callback=callback),
    )
    assert receipt.message_sid.startswith("SM") and receipt.segments == 1
    [request] = await recorded(sandbox)
    assert request["valid"] and request["body"]["Body"] == "HELP-1 created"
    assert request["body"]["StatusCallback"] == callback and request["body"]["From"] == "+15005550006"


async def test_messaging_service_sid_is_used_as_sender(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    sms = Sms(to="+14155550100", body="x", from_number="+15005550006", messaging_service_sid="MG" + "1" * 32)
    await sender.send(account(sandbox), sms)
    [request] = await recorded(sandbox)
    assert request["valid"] and request["body"]["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in request["body"]


async def test_ucs2_body_is_counted_in_ucs2_segments_by_twilio(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    body = "HELP-9: Drukarka nie działa, wydruk się zacina 🙁 " * 2  # 100 UTF-16 units: two UCS-2 segments
    receipt = await sender.send(
        account(sandbox), Sms(to="+14155550100", from_number="+15005550006", body=body)
    )
    assert measure(body).encoding == "UCS-2"
    assert receipt.segments == measure(body).segments == 2
    [message] = sandbox.state.twilio.messages
    assert message["encoding"] == "UCS-2" and message["body"] == body


async def test_a_body_over_1600_characters_is_refused_for_good(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermanentError, match="HTTP 400"):
        await sender.send(
            account(sandbox), Sms(to="+14155550100", from_number="+15005550006", body="x" * 1601)
        )


async def test_no_sender_is_refused_before_calling_twilio(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermanentError, match="From number or a MessagingServiceSid"):
        await sender.send(account(sandbox), Sms(to="+14155550100", body="x"))
    assert await recorded(sandbox) == []


@pytest.mark.parametrize(("to", "code"), [("+14155550199", "21610"), ("0800 123", "21211")])
async def test_opted_out_or_invalid_recipient_is_rejected_for_good(
    sandbox, sender, to: str, code: str
) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        await client.post(f"{sandbox.urls.twilio}/_sandbox/opted-out", json={"number": "+14155550199"})
    with pytest.raises(SmsRejected) as info:
        await sender.send(account(sandbox), Sms(to=to, from_number="+15005550006", body="x"))
    assert info.value.code == code


async def test_server_errors_are_transient_and_bad_credentials_permanent(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        await client.post(f"{sandbox.urls.twilio}/_sandbox/faults",
                          json={"method": "POST", "path_regex": "Messages", "status": 503, "times": 1})  # fmt: skip
    sms = Sms(to="+14155550100", from_number="+15005550006", body="x")
    with pytest.raises(TransientError):
        await sender.send(account(sandbox), sms)
    with pytest.raises(PermanentError, match="HTTP 401"):
        await sender.send(account(sandbox, "wrong"), sms)


async def test_an_earlier_sms_is_found_in_twilios_message_list(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    before = datetime.now(UTC)
    sms = Sms(to="+14155550100", from_number="+15005550006", body="Request HELP-7: VPN down")
    sent = await sender.send(account(sandbox), sms)
    await sender.send(account(sandbox), Sms(to="+14155550111", from_number="+15005550006", body="HELP-8"))
    found = await sender.find_sent(account(sandbox), sms, "HELP-7", before)
    assert found is not None and found.message_sid == sent.message_sid and found.segments == 1
    assert await sender.find_sent(account(sandbox), sms, "HELP-9", before) is None, "another call's key"
    later = before + timedelta(hours=1)
    assert await sender.find_sent(account(sandbox), sms, "HELP-7", later) is None, "sent before the claim"
    [*_, listing] = await recorded(sandbox)
    assert listing["method"] == "GET" and listing["valid"], "the list request satisfies the spec"


async def test_the_message_list_is_paged(sandbox, sender) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from voiceticket_notifier import adapters

    before = datetime.now(UTC)
    first = Sms(to="+14155550100", from_number="+15005550006", body="Request HELP-1")
    sent = await sender.send(account(sandbox), first)
    for number in range(2, 5):
        await sender.send(
            account(sandbox), Sms(to=first.to, from_number=first.from_number, body=f"HELP-{number}")
        )
    adapters.LIST_PAGE_SIZE, size = 2, adapters.LIST_PAGE_SIZE
    try:
        found = await sender.find_sent(account(sandbox), first, "HELP-1", before)
    finally:
        adapters.LIST_PAGE_SIZE = size
    assert found is not None and found.message_sid == sent.message_sid
