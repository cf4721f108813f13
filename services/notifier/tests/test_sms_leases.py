"""Issue #11 point 15: the SMS claim is a lease. A concurrent delivery waits; a crash after
claiming (before or during the send) still leads to exactly one SMS on replay; a crash after the
send, before the ledger heard of it, leads to none more: the replay finds it in Twilio's list.

The ledger runs on a clock the test moves (60 s lease); nothing sleeps.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import format_datetime

import pytest
from test_notify import CALLER, LINE, FakeSms, deps, ticket

from voiceticket_common.bus import TransientError
from voiceticket_common.db import create_engine
from voiceticket_common.events import NotificationSent, SmsReceived
from voiceticket_common.events.v1 import SMS_KEYWORD_HELP
from voiceticket_common.testing import FakeClock
from voiceticket_notifier.adapters import AmbiguousSend
from voiceticket_notifier.handlers import notify_caller
from voiceticket_notifier.ledger import SqlSmsLedger
from voiceticket_notifier.ports import SmsReceipt
from voiceticket_notifier.replies import answer_sms
from voiceticket_notifier.sms_encoding import measure

CALL_SID = "CA" + "1" * 32


class Crash(BaseException):
    """The process dies here: nothing after it runs, not even the handler's clean-up."""


class TwilioLike(FakeSms):
    """Keeps what it sent as Twilio's Messages list does; can crash around a send or hold it."""

    def __init__(self, clock: FakeClock, crash: str | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.crash = crash
        self.messages: list[dict[str, str]] = []
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.lookups = 0

    async def send(self, account, sms):  # type: ignore[no-untyped-def]
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.crash == "before-send":
            self.crash = None
            raise Crash("killed before the request reached Twilio")
        receipt = await super().send(account, sms)
        sid = "SM" + f"{len(self.messages):032x}"
        self.messages.append(
            {"sid": sid, "to": sms.to, "from": sms.from_number, "body": sms.body,
             "date_created": format_datetime(self.clock(), usegmt=True)}
        )  # fmt: skip
        if self.crash == "after-send":
            self.crash = None
            raise Crash("killed after Twilio accepted the message")
        return SmsReceipt(sid, receipt.segments)

    async def find_sent(self, account, sms, marker, since):  # type: ignore[no-untyped-def]
        self.lookups += 1
        for message in self.messages:
            if message["to"] == sms.to and marker in message["body"]:
                return SmsReceipt(message["sid"], measure(message["body"]).segments)
        return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def ledger(tmp_path, clock):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/sms.db")
    ledger = SqlSmsLedger(engine, lease=timedelta(seconds=60), clock=clock)
    await ledger.create_schema()
    yield ledger
    await engine.dispose()


async def replay_after_the_lease(ledger, sms, clock):  # type: ignore[no-untyped-def]
    with pytest.raises(TransientError) as busy:  # redelivered at once: the dead lease is still live
        await notify_caller(ticket(), deps(sms, ledger))
    assert busy.value.retry_after is not None and 59 <= busy.value.retry_after <= 61
    clock.advance(61)
    return await notify_caller(ticket(), deps(sms, ledger))


@pytest.mark.parametrize("where", ["before-send-started", "before-send"])
async def test_a_crash_after_claiming_sends_exactly_once_on_replay(ledger, clock, where) -> None:
    sms = TwilioLike(clock, crash="before-send" if where == "before-send" else None)
    handler_deps = deps(sms, ledger)
    if where == "before-send-started":

        def crash(tenant_id: str, number: str) -> str:
            raise Crash("killed between the claim and the send")

        handler_deps.hasher.hash = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await notify_caller(ticket(), handler_deps)
    assert sms.messages == []

    [event] = await replay_after_the_lease(ledger, sms, clock)
    assert isinstance(event, NotificationSent) and len(sms.messages) == 1
    assert sms.messages[0]["to"] == CALLER and "HELP-7" in sms.messages[0]["body"]
    assert sms.lookups == (1 if where == "before-send" else 0), "looked at Twilio only if a send had started"
    assert await notify_caller(ticket(), deps(sms, ledger)) == [] and len(sms.messages) == 1


async def test_a_crash_after_sending_sends_nothing_more_and_reports_the_sms_found(ledger, clock) -> None:
    sms = TwilioLike(clock, crash="after-send")
    with pytest.raises(Crash):
        await notify_caller(ticket(), deps(sms, ledger))
    [sent] = sms.messages

    [event] = await replay_after_the_lease(ledger, sms, clock)
    assert isinstance(event, NotificationSent) and event.message_sid == sent["sid"]
    assert len(sms.messages) == 1 and sms.lookups == 1
    assert await notify_caller(ticket(), deps(sms, ledger)) == [], "settled as sent"
    assert len(sms.messages) == 1


@pytest.mark.parametrize("made", [True, False], ids=["twilio-made-it", "twilio-never-saw-it"])
async def test_a_send_whose_outcome_is_unknown_is_looked_up_after_the_lease(ledger, clock, made) -> None:
    """The connection drops (a reset, a read timeout) with the send at Twilio: the message may or
    may not exist. The attempt keeps its lease and fails for a retry; the retry, once the lease
    ends, looks at Twilio's list and sends only if there is none: exactly one SMS either way."""
    sms = TwilioLike(clock)
    if made:  # Twilio made the message, then the answer was lost
        sms.messages.append(
            {"sid": "SM" + "e" * 32, "to": CALLER, "from": "", "body": "Your request HELP-7 was received",
             "date_created": format_datetime(clock(), usegmt=True)}
        )  # fmt: skip
    sms.failures.append(AmbiguousSend("twilio send sms outcome unknown: ReadError"))
    with pytest.raises(TransientError, match="outcome unknown"):
        await notify_caller(ticket(), deps(sms, ledger))

    [event] = await replay_after_the_lease(ledger, sms, clock)
    assert isinstance(event, NotificationSent) and len(sms.messages) == 1 and sms.lookups == 1
    if made:
        assert event.message_sid == "SM" + "e" * 32 and sms.attempts == 1, "found it, sent none"
    else:
        assert sms.attempts == 2 and "HELP-7" in sms.messages[0]["body"], "none found: sent once"
    assert await notify_caller(ticket(), deps(sms, ledger)) == [] and len(sms.messages) == 1


async def test_a_second_delivery_during_a_slow_send_waits_and_sends_nothing(ledger, clock) -> None:
    sms = TwilioLike(clock)
    sms.gate = asyncio.Event()
    first = asyncio.create_task(notify_caller(ticket(), deps(sms, ledger)))
    await sms.started.wait()
    with pytest.raises(TransientError) as busy:
        await notify_caller(ticket(), deps(sms, ledger))
    assert busy.value.retry_after is not None and busy.value.retry_after > 59
    sms.gate.set()
    [event] = await first
    assert isinstance(event, NotificationSent)
    assert await notify_caller(ticket(), deps(sms, ledger)) == [] and len(sms.messages) == 1


async def test_a_stale_claim_cannot_settle_the_sms(ledger, clock) -> None:
    first = await ledger.claim("acme", CALL_SID)
    clock.advance(61)
    second = await ledger.claim("acme", CALL_SID)
    assert first is not None and second is not None and second.token > first.token
    with pytest.raises(TransientError, match="taken over"):
        await ledger.complete(first, "sent", "SM" + "0" * 32)
    with pytest.raises(TransientError, match="taken over"):
        await ledger.begin_send(first)
    await ledger.complete(second, "sent", "SM" + "1" * 32)
    assert await ledger.claim("acme", CALL_SID) is None


async def test_an_attempt_cancelled_during_the_send_keeps_its_lease_until_the_send_is_settled(
    ledger, clock
) -> None:
    """A partition handed back (or a SIGTERM) cancels the handler while its request is at Twilio:
    cancelling does not call the request back, and Twilio makes the message a moment later. The
    next attempt must wait for the lease the send began under, then find that message; giving the
    lease back at once would let it look before the message exists and send a second SMS."""
    sms = TwilioLike(clock)
    sms.gate = asyncio.Event()
    first = asyncio.create_task(notify_caller(ticket(), deps(sms, ledger)))
    await sms.started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    # The request had reached Twilio: it makes the message after the client gave up.
    sms.gate = None
    sms.messages.append(
        {"sid": "SM" + "f" * 32, "to": CALLER, "from": "", "body": "Your request HELP-7 was received",
         "date_created": format_datetime(clock(), usegmt=True)}
    )  # fmt: skip

    [event] = await replay_after_the_lease(ledger, sms, clock)
    assert isinstance(event, NotificationSent) and event.message_sid == "SM" + "f" * 32
    assert len(sms.messages) == 1 and sms.lookups == 1, "found the cancelled attempt's SMS, sent none"


async def test_an_answer_cancelled_during_the_send_keeps_its_lease_as_a_calls_sms_does(ledger, clock) -> None:
    """Two-way SMS answers go through the same send as a call's SMS: cancelled while the request
    is at Twilio, the lease is kept, so a redelivery at once does not send a second answer."""
    sms = TwilioLike(clock)
    sms.gate = asyncio.Event()
    help_text = SmsReceived(tenant_id="acme", call_sid="SM" + "2" * 32, line_number=LINE,
                            caller_number=CALLER, body="HELP", keyword=SMS_KEYWORD_HELP)  # fmt: skip
    first = asyncio.create_task(answer_sms(help_text, deps(sms, ledger)))
    await sms.started.wait()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    sms.gate = None
    with pytest.raises(TransientError) as busy:
        await answer_sms(help_text, deps(sms, ledger))
    assert busy.value.retry_after is not None and 59 <= busy.value.retry_after <= 61
    assert sms.messages == [], "no second answer while the cancelled send may still land"
