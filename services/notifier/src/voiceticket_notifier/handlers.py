"""ticket created -> at most one SMS to the caller with the request key.

The call's SMS is claimed in the ledger under a lease: a concurrent delivery waits (Retry-After),
a crashed attempt's claim is taken over when its lease expires. An attempt that takes over a claim
whose send had started asks Twilio's Messages list for an SMS to the caller with the request key,
created since, and sends only if there is none: a crash after the claim sends exactly once on
replay, a crash after the send sends nothing more.

Each request to Twilio's Messages API holds one of the tenant's ``sms`` slots
(``provider_concurrency``, ``voiceticket_common.provider_limits``): a burst of tickets sends at most
that many SMS at once. The send's lease deadline is taken once the slot is held, so waiting for a
slot never turns into an ambiguous (timed out) send; a 429 leaves the handler, and so the slot,
and the bus waits out its Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from voiceticket_common import texts
from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import Event, NotificationFailed, NotificationSent, TicketCreated
from voiceticket_common.provider_limits import ProviderLimits, limits
from voiceticket_common.runtime_views import NotifierView
from voiceticket_common.tracing import tag_issue_key

from .adapters import AmbiguousSend
from .caller_hash import CallerHasher
from .message import compose_sms
from .ports import Sms, SmsClaim, SmsLedger, SmsRejected, SmsSender
from .sms_encoding import measure
from .status_callback import MessageStatusCallback

log = logging.getLogger(__name__)


class _Outcome(TypedDict):
    """What both notification outcomes name."""

    tenant_id: str
    call_sid: str
    issue_key: str


OPTED_OUT = "21610"
SEND_MARGIN_SECONDS = 5.0
"""A send is cut off this long before its lease ends (as an ambiguous send: outcome unknown)."""


@dataclass
class NotifierDeps:
    config: RuntimeConfig[NotifierView]
    sender: SmsSender
    ledger: SmsLedger
    hasher: CallerHasher
    status_callback: MessageStatusCallback | None = None
    max_segments: int = 2
    opt_out_recheck: timedelta = timedelta(days=30)
    slots: ProviderLimits = limits
    """The process's per-tenant provider slots (a test gives its own)."""


async def notify_caller(event: TicketCreated, deps: NotifierDeps) -> Sequence[Event]:
    tag_issue_key(event.issue_key)
    config = await deps.config.line(event.line_number)
    line = config.line
    base = _Outcome(tenant_id=event.tenant_id, call_sid=event.call_sid, issue_key=event.issue_key)
    if not line.sms_enabled:
        return []
    if event.screened and line.screens_out:
        # A screened call's request (screened_request) is for the agents to look at, not an
        # answer to a caller: a fax machine or a robocaller gets no text.
        log.info("screened call: no SMS", extra={"screened": event.screened})
        return []
    claim = await deps.ledger.claim(event.tenant_id, event.call_sid)
    if claim is None:
        log.info("sms already attempted for this call, not sending again")
        return []
    try:
        return await _notify(event, deps, config, claim, base)
    except (Exception, asyncio.CancelledError):
        if claim.send_in_flight:
            # Cancelled (a partition handed back, a SIGTERM) while the request was at Twilio: it
            # may still make the SMS. The lease, taken to the send's deadline, is kept, so the next
            # attempt looks at Twilio's list only once this send is settled, as after a crash.
            raise
        # Give the lease back (keeping any started send, which the retry looks up first). A dying
        # process leaves it to expire.
        await deps.ledger.release(claim)
        raise


async def _notify(
    event: TicketCreated,
    deps: NotifierDeps,
    config: NotifierView,
    claim: SmsClaim,
    base: _Outcome,
) -> Sequence[Event]:
    line = config.line
    caller = deps.hasher.hash(event.tenant_id, event.caller_number)
    opted_out = await deps.ledger.opted_out_since(event.tenant_id, caller)
    if opted_out is not None and datetime.now(UTC) - opted_out < deps.opt_out_recheck:
        await deps.ledger.complete(claim, "opted-out", None)
        log.info("caller opted out of sms earlier, not sending", extra={"error_code": OPTED_OUT})
        return [
            NotificationFailed(
                **base,
                reason="recipient opted out (on an earlier call)",
                error_code=OPTED_OUT,
                retryable=False,
            )
        ]
    account = config.twilio_account()
    # The template in the request's language (the caller's in auto mode), unless the line has its own.
    template = texts.sms_template(event.language or line.language, line.sms_template)
    body = compose_sms(template, event.issue_key, event.summary, deps.max_segments)
    service = line.sms_messaging_service_sid
    sms = Sms(
        to=event.caller_number,
        body=body,
        from_number=None if service else (line.sms_from or event.line_number),
        messaging_service_sid=service,
        status_callback=(
            deps.status_callback.url(event.tenant_id, event.line_number, event.call_sid)
            if deps.status_callback
            else None
        ),
    )
    limit = config.tenant.provider_concurrency.sms
    if claim.send_started_at is not None:
        # An earlier attempt started sending and recorded nothing (it crashed): did the SMS go out?
        async with deps.slots.slot(event.tenant_id, "sms", limit):
            earlier = await deps.sender.find_sent(account, sms, event.issue_key, claim.send_started_at)
        if earlier is not None:
            await deps.ledger.complete(claim, "sent", earlier.message_sid)
            log.warning("found the sms an interrupted attempt sent, not sending again")
            return [NotificationSent(**base, message_sid=earlier.message_sid, segments=earlier.segments)]
    async with deps.slots.slot(event.tenant_id, "sms", limit):
        # The lease's deadline is taken once the slot is held: waiting for one never eats into it.
        deadline = await deps.ledger.begin_send(claim)
        claim.send_in_flight = True
        try:
            # Within the lease, with a margin: a takeover looks at Twilio only after this send ended.
            budget = (deadline - deps.ledger.now()).total_seconds() - SEND_MARGIN_SECONDS
            async with asyncio.timeout(max(budget, SEND_MARGIN_SECONDS)):
                receipt = await deps.sender.send(account, sms)
        except SmsRejected as exc:
            await deps.ledger.complete(claim, "rejected", None)
            if exc.code == OPTED_OUT:
                await deps.ledger.record_opt_out(event.tenant_id, caller)
            log.warning("sms rejected", extra={"error_code": exc.code, "reason": exc.reason})
            return [NotificationFailed(**base, reason=exc.reason, error_code=exc.code, retryable=False)]
        except (AmbiguousSend, TimeoutError):
            await deps.ledger.complete(claim, "unknown", None)
            log.error("sms outcome unknown; not resending to keep at most one sms per call")
            return [NotificationFailed(**base, reason="outcome unknown after a timeout", retryable=False)]
        except Exception:
            # Nothing left Twilio's side (connection refused, 429, 5xx): a retry may send unlooked.
            claim.send_in_flight = False
            await deps.ledger.release(claim, sent_nothing=True)
            raise
        claim.send_in_flight = False  # only a cancel leaves it set (the request may still land)
    await deps.ledger.complete(claim, "sent", receipt.message_sid)
    size = measure(body)
    log.info(
        "sms sent",
        extra={"issue_key": event.issue_key, "encoding": size.encoding, "segments": size.segments},
    )
    return [NotificationSent(**base, message_sid=receipt.message_sid, segments=receipt.segments)]
