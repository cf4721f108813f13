"""Flow control toward Twilio's Messages API: a burst of tickets sends at most the tenant's
``provider_concurrency.sms`` SMS at a time, waiting for a slot never makes a send ambiguous, and
a 429 gives its slot back at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from voiceticket_common.bus import TransientError
from voiceticket_common.call_context import DEVELOPMENT_KEY
from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.db import create_engine
from voiceticket_common.events import NotificationSent, TicketCreated
from voiceticket_common.provider_limits import ProviderLimits
from voiceticket_common.runtime_views import NotifierView
from voiceticket_common.testing import StaticRuntimeConfig
from voiceticket_notifier.adapters import TwilioSmsSender
from voiceticket_notifier.handlers import CALLER_HASH_PURPOSE, NotifierDeps, notify_caller
from voiceticket_notifier.ledger import SqlSmsLedger
from voiceticket_notifier.ports import SmsReceipt
from voiceticket_sandbox import SandboxState, create_twilio_app
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.state import Fault
from voiceticket_sandbox.testing import InFlight

LINE = "+15005550006"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-token-0123456789"  # noqa: S105 - the stand-in's
TICKETS = 12


@pytest.fixture
async def ledger(tmp_path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'sms.db'}")
    ledger = SqlSmsLedger(engine)
    await ledger.create_schema()
    yield ledger
    await engine.dispose()


def deps(sender: Any, ledger: SqlSmsLedger, sms_limit: int | None, slots: ProviderLimits) -> NotifierDeps:
    tenant = {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "provider_concurrency": {"sms": sms_limit},
    }
    line = {"sms_enabled": True, "sms_from": "+15005550001", "sms_template": "Request {request_key}"}
    return NotifierDeps(
        config=StaticRuntimeConfig.of(NotifierView, {LINE: ("acme", line, tenant)}),
        sender=sender,
        ledger=ledger,
        hasher=CallerHasher(SecretStr(DEVELOPMENT_KEY), CALLER_HASH_PURPOSE),
        slots=slots,
    )


def ticket(n: int) -> TicketCreated:
    return TicketCreated(
        tenant_id="acme",
        call_sid="CA" + f"{n:032x}",
        line_number=LINE,
        caller_number=f"+1415555{n:04d}",
        issue_key=f"HELP-{n}",
        issue_id=str(10_000 + n),
        service_desk_id="4",
        request_type_id="41",
        summary="VPN down",
    )


async def burst(ledger: SqlSmsLedger, sms_limit: int | None, specs: None) -> tuple[InFlight, SandboxState]:
    state = SandboxState()
    state.twilio.accounts[ACCOUNT_SID] = AUTH_TOKEN
    stand_in = InFlight(create_twilio_app(state), delay=0.15)
    async with serve_app(stand_in) as origin, TwilioSmsSender(["http://127.0.0.1:*"], origin) as sender:
        d = deps(sender, ledger, sms_limit, ProviderLimits())
        results = await asyncio.gather(*(notify_caller(ticket(n), d) for n in range(TICKETS)))
    assert all(isinstance(e, NotificationSent) for [e] in results)
    assert stand_in.total == TICKETS and len(state.twilio.messages) == TICKETS
    assert all(r["valid"] for r in state.records)
    return stand_in, state


async def test_a_burst_never_sends_more_than_the_tenants_sms_limit_at_once(ledger, specs) -> None:  # type: ignore[no-untyped-def]
    stand_in, _ = await burst(ledger, 2, specs)
    assert stand_in.peak == 2


async def test_unlimited_sends_the_burst_at_once(ledger, specs) -> None:  # type: ignore[no-untyped-def]
    stand_in, _ = await burst(ledger, None, specs)
    assert stand_in.peak > 2  # more than any limit would let through (all of them, on an idle machine)


async def test_a_rate_limited_send_gives_its_slot_back_for_the_bus_to_wait_out(ledger, specs) -> None:  # type: ignore[no-untyped-def]
    state = SandboxState()
    state.twilio.accounts[ACCOUNT_SID] = AUTH_TOKEN
    state.faults.append(Fault("twilio", "POST", r"/Messages\.json$", 429, retry_after=30))
    slots = ProviderLimits()
    async with (
        serve_app(create_twilio_app(state)) as origin,
        TwilioSmsSender(["http://127.0.0.1:*"], origin) as s,
    ):
        d = deps(s, ledger, 1, slots)
        with pytest.raises(TransientError) as raised:
            await notify_caller(ticket(1), d)
        assert raised.value.retry_after == 30  # the bus waits it out, holding no slot meanwhile
        assert slots.in_use("acme", "sms") == 0
        # the tenant's one slot is free for the next call at once, and the retry sends
        [sent] = await asyncio.wait_for(notify_caller(ticket(2), d), 5)
        [retried] = await notify_caller(ticket(1), d)
    assert isinstance(sent, NotificationSent) and isinstance(retried, NotificationSent)


class SlowSender:
    """Sends after ``delay``; records how many sends were in flight at once."""

    def __init__(self, delay: float) -> None:
        self.delay, self.now, self.peak = delay, 0, 0

    async def send(self, account: Any, sms: Any) -> SmsReceipt:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await asyncio.sleep(self.delay)
        self.now -= 1
        return SmsReceipt(message_sid="SM" + "f" * 32, segments=1)


async def test_waiting_for_a_slot_does_not_eat_into_the_sends_lease(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lease.db'}")
    # A lease of 5.3 s leaves each send the 5 s minimum after the margin; with one slot and
    # 0.4 s per send, the last of 16 waits 6 s for its slot: longer than a lease.
    ledger = SqlSmsLedger(engine, lease=timedelta(seconds=5.3))
    await ledger.create_schema()
    try:
        sender = SlowSender(0.4)
        d = deps(sender, ledger, 1, ProviderLimits())
        results = await asyncio.gather(*(notify_caller(ticket(n), d) for n in range(16)))
    finally:
        await engine.dispose()
    assert sender.peak == 1
    assert all(isinstance(e, NotificationSent) for [e] in results)  # none timed out as ambiguous
