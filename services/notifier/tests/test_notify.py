from __future__ import annotations

import pytest

from voiceticket_common.bus import TransientError, envelope_for
from voiceticket_common.db import create_engine
from voiceticket_common.events import NotificationFailed, NotificationSent, TicketCreated
from voiceticket_common.testing import StaticRuntimeConfig
from voiceticket_notifier.adapters import AmbiguousSend
from voiceticket_notifier.handlers import NotifierDeps, notify_caller
from voiceticket_notifier.ledger import SqlSmsLedger
from voiceticket_notifier.ports import SmsReceipt, SmsRejected

LINE = "+15005550006"
CALLER = "+14155550100"


class FakeSms:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.sent = []

    async def send(self, account, sms):  # type: ignore[no-untyped-def]
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(sms)
        return SmsReceipt(message_sid="SM" + "f" * 32, segments=1)


@pytest.fixture
async def ledger(tmp_path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/sms.db")
    ledger = SqlSmsLedger(engine)
    await ledger.create_schema()
    yield ledger
    await engine.dispose()


def deps(sms: FakeSms, ledger, enabled: bool = True) -> NotifierDeps:  # type: ignore[no-untyped-def]
    config = StaticRuntimeConfig(
        {
            LINE: (
                "acme",
                {
                    "sms_enabled": enabled,
                    "sms_from": "+15005550001",
                    "sms_template": "Request {request_key}: {summary}",
                },
                {"twilio_account_sid": "AC" + "a" * 32, "twilio_auth_token": "tok"},
            )
        }
    )
    return NotifierDeps(config=config, sender=sms, ledger=ledger)


def ticket() -> TicketCreated:
    return TicketCreated(
        tenant_id="acme",
        call_sid="CA" + "1" * 32,
        line_number=LINE,
        caller_number=CALLER,
        issue_key="HELP-7",
        issue_id="10007",
        service_desk_id="4",
        request_type_id="41",
        summary="VPN down",
    )


async def test_caller_gets_one_sms_with_the_request_key(ledger) -> None:
    sms = FakeSms()
    [event] = await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger))
    assert isinstance(event, NotificationSent)
    [message] = sms.sent
    assert (message.to, message.sender, message.body) == (CALLER, "+15005550001", "Request HELP-7: VPN down")


async def test_redelivery_sends_no_second_sms(ledger) -> None:
    sms = FakeSms()
    await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger))
    assert await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger)) == []
    assert len(sms.sent) == 1


async def test_disabled_sms_sends_nothing(ledger) -> None:
    sms = FakeSms()
    assert await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger, enabled=False)) == []
    assert sms.sent == []


async def test_opted_out_caller_is_recorded_not_retried(ledger) -> None:
    sms = FakeSms(SmsRejected("21610", "recipient opted out"))
    [event] = await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger))
    assert isinstance(event, NotificationFailed) and event.error_code == "21610" and not event.retryable
    assert await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger)) == []


async def test_transient_failure_releases_the_claim_so_a_retry_sends(ledger) -> None:
    sms = FakeSms(TransientError("429"))
    with pytest.raises(TransientError):
        await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger))
    [event] = await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger))
    assert isinstance(event, NotificationSent) and len(sms.sent) == 1


async def test_ambiguous_timeout_never_resends(ledger) -> None:
    sms = FakeSms(AmbiguousSend("read timeout"))
    [event] = await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger))
    assert isinstance(event, NotificationFailed)
    assert await notify_caller(envelope_for(ticket(), "t"), deps(sms, ledger)) == []
    assert sms.sent == []
