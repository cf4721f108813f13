from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from voiceticket_common.bus import TransientError
from voiceticket_common.call_context import DEVELOPMENT_KEY, CallContextSealer
from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.db import create_engine
from voiceticket_common.events import NotificationFailed, NotificationSent, TicketCreated
from voiceticket_common.runtime_views import NotifierView
from voiceticket_common.testing import StaticRuntimeConfig
from voiceticket_notifier.adapters import AmbiguousSend
from voiceticket_notifier.handlers import CALLER_HASH_PURPOSE, NotifierDeps, notify_caller
from voiceticket_notifier.ledger import SqlSmsLedger
from voiceticket_notifier.ports import SmsReceipt, SmsRejected
from voiceticket_notifier.sms_encoding import measure
from voiceticket_notifier.status_callback import MessageStatusCallback

LINE = "+15005550006"
CALLER = "+14155550100"
KEY = SecretStr(DEVELOPMENT_KEY)


class FakeSms:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.sent = []
        self.attempts = 0

    async def send(self, account, sms):  # type: ignore[no-untyped-def]
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(sms)
        return SmsReceipt(message_sid="SM" + "f" * 32, segments=measure(sms.body).segments)


@pytest.fixture
def db_path(tmp_path):  # type: ignore[no-untyped-def]
    return tmp_path / "sms.db"


@pytest.fixture
async def ledger(db_path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{db_path}")
    ledger = SqlSmsLedger(engine)
    await ledger.create_schema()
    yield ledger
    await engine.dispose()


def deps(sms: FakeSms, ledger, enabled: bool = True, **line: object) -> NotifierDeps:  # type: ignore[no-untyped-def]
    fields = {
        "sms_enabled": enabled,
        "sms_from": "+15005550001",
        "sms_template": "Request {request_key}: {summary}",
        **line,
    }
    config = StaticRuntimeConfig.of(
        NotifierView,
        {LINE: ("acme", fields, {"twilio_account_sid": "AC" + "a" * 32, "twilio_auth_token": "tok"})},
    )
    return NotifierDeps(
        config=config,
        sender=sms,
        ledger=ledger,
        hasher=CallerHasher(KEY, CALLER_HASH_PURPOSE),
        status_callback=MessageStatusCallback("https://voice.example.com/", KEY),
    )


def ticket(call: str = "1", summary: str = "VPN down", caller: str = CALLER) -> TicketCreated:
    return TicketCreated(
        tenant_id="acme",
        call_sid="CA" + call * 32,
        line_number=LINE,
        caller_number=caller,
        issue_key="HELP-7",
        issue_id="10007",
        service_desk_id="4",
        request_type_id="41",
        summary=summary,
    )


async def test_caller_gets_one_sms_with_the_request_key(ledger) -> None:
    sms = FakeSms()
    [event] = await notify_caller(ticket(), deps(sms, ledger))
    assert isinstance(event, NotificationSent) and event.segments == 1
    [message] = sms.sent
    assert (message.to, message.from_number, message.body) == (
        CALLER,
        "+15005550001",
        "Request HELP-7: VPN down",
    )
    assert message.messaging_service_sid is None


async def test_messaging_service_wins_over_sms_from(ledger) -> None:
    sms = FakeSms()
    await notify_caller(ticket(), deps(sms, ledger, sms_messaging_service_sid="MG" + "2" * 32))
    [message] = sms.sent
    assert (message.messaging_service_sid, message.from_number) == ("MG" + "2" * 32, None)


async def test_without_sms_from_the_line_number_sends(ledger) -> None:
    sms = FakeSms()
    await notify_caller(ticket(), deps(sms, ledger, sms_from=None))
    assert sms.sent[0].from_number == LINE


async def test_each_sms_carries_a_sealed_status_callback_for_its_call(ledger) -> None:
    sms = FakeSms()
    await notify_caller(ticket(), deps(sms, ledger))
    callback = urlsplit(sms.sent[0].status_callback)
    assert (callback.scheme, callback.netloc, callback.path) == (
        "https",
        "voice.example.com",
        "/twilio/message-status",
    )
    assert CALLER not in sms.sent[0].status_callback and LINE not in sms.sent[0].status_callback
    context = CallContextSealer(KEY).open(parse_qs(callback.query)["ctx"][0])
    assert (context.tenant_id, context.line_number, context.call_sid) == ("acme", LINE, "CA" + "1" * 32)
    assert context.caller_number == ""


async def test_a_long_non_gsm_summary_is_shortened_to_the_segment_budget_never_the_key(ledger) -> None:
    summary = "Drukarka w biurze nie działa 🙁 " + "wydruk się zacina i świeci się błąd " * 6
    sms = FakeSms()
    [event] = await notify_caller(ticket(summary=summary.strip()), deps(sms, ledger))
    body = sms.sent[0].body
    assert body.startswith("Request HELP-7: Drukarka w biurze") and body.endswith("...")
    assert measure(body).segments <= 2 and event.segments <= 2
    assert measure("Request HELP-7: " + summary.strip()).segments > 2


async def test_redelivery_sends_no_second_sms(ledger) -> None:
    sms = FakeSms()
    await notify_caller(ticket(), deps(sms, ledger))
    assert await notify_caller(ticket(), deps(sms, ledger)) == []
    assert len(sms.sent) == 1


async def test_disabled_sms_sends_nothing(ledger) -> None:
    sms = FakeSms()
    assert await notify_caller(ticket(), deps(sms, ledger, enabled=False)) == []
    assert sms.sent == []


@pytest.mark.parametrize(("code", "reason"), [("21610", "recipient opted out"), ("21211", "invalid number"),
                                              ("21614", "not a mobile number")])  # fmt: skip
async def test_permanent_rejections_are_recorded_not_retried(ledger, code: str, reason: str) -> None:
    sms = FakeSms(SmsRejected(code, reason))
    [event] = await notify_caller(ticket(), deps(sms, ledger))
    assert isinstance(event, NotificationFailed) and event.error_code == code and not event.retryable
    assert await notify_caller(ticket(), deps(sms, ledger)) == []
    assert sms.attempts == 1


async def test_an_opted_out_caller_is_remembered_by_hash_and_later_calls_skip_the_send(
    ledger, db_path
) -> None:
    sms = FakeSms(SmsRejected("21610", "recipient opted out"))
    await notify_caller(ticket("1"), deps(sms, ledger))
    [event] = await notify_caller(ticket("2"), deps(sms, ledger))
    assert isinstance(event, NotificationFailed) and (event.error_code, event.retryable) == ("21610", False)
    assert sms.attempts == 1, "the second call's SMS was not attempted"
    # another caller of the same tenant is not affected
    [other] = await notify_caller(ticket("3", caller="+14155550111"), deps(sms, ledger))
    assert isinstance(other, NotificationSent)
    with sqlite3.connect(db_path) as conn:
        [(tenant, stored)] = conn.execute("SELECT tenant_id, caller_hash FROM notifier_opt_outs").fetchall()
    assert tenant == "acme" and len(stored) == 64 and CALLER.lstrip("+") not in stored
    assert CALLER.lstrip("+").encode() not in db_path.read_bytes()


async def test_an_opt_out_is_rechecked_after_a_while(ledger) -> None:
    hashed = CallerHasher(KEY, CALLER_HASH_PURPOSE).hash("acme", CALLER)
    await ledger.record_opt_out("acme", hashed)
    sms = FakeSms()
    quick = deps(sms, ledger)
    [skipped] = await notify_caller(ticket("1"), quick)
    assert isinstance(skipped, NotificationFailed)
    later = deps(sms, ledger)
    later.opt_out_recheck = timedelta(0)  # as if the recheck period had passed
    [sent] = await notify_caller(ticket("2"), later)
    assert isinstance(sent, NotificationSent) and len(sms.sent) == 1
    assert await ledger.opted_out_since("acme", hashed) <= datetime.now(UTC)


def test_caller_hash_is_keyed_and_per_tenant() -> None:
    one, other = (
        CallerHasher(KEY, CALLER_HASH_PURPOSE),
        CallerHasher(SecretStr("another-key"), CALLER_HASH_PURPOSE),
    )
    assert one.hash("acme", CALLER) == one.hash("acme", " " + CALLER)
    assert one.hash("acme", CALLER) != other.hash("acme", CALLER)
    assert one.hash("acme", CALLER) != one.hash("globex", CALLER)


async def test_transient_failure_releases_the_claim_so_a_retry_sends(ledger) -> None:
    sms = FakeSms(TransientError("429"))
    with pytest.raises(TransientError):
        await notify_caller(ticket(), deps(sms, ledger))
    [event] = await notify_caller(ticket(), deps(sms, ledger))
    assert isinstance(event, NotificationSent) and len(sms.sent) == 1


async def test_an_ambiguous_send_is_retried_not_given_up_and_never_resent_at_once(ledger) -> None:
    """A read timeout or a dropped connection: the SMS may or may not exist. No NotificationFailed
    (that would leave a caller without their text for good); a retry, and an immediate
    redelivery waits for the lease instead of sending again (test_sms_leases has the look-up)."""
    sms = FakeSms(AmbiguousSend("read timeout"))
    with pytest.raises(TransientError) as unknown:
        await notify_caller(ticket(), deps(sms, ledger))
    assert "outcome unknown" in str(unknown.value)
    with pytest.raises(TransientError) as busy:
        await notify_caller(ticket(), deps(sms, ledger))
    assert busy.value.retry_after is not None and busy.value.retry_after > 30
    assert sms.sent == [] and sms.attempts == 1
