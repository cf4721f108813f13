"""ticket created -> at most one SMS to the caller with the request key.

The call's SMS is claimed in the ledger under a lease: a concurrent delivery waits (Retry-After),
a crashed attempt's claim is taken over when its lease expires. An attempt that takes over a claim
whose send had started asks Twilio's Messages list for an SMS to the caller with the request key,
created since, and sends only if there is none: a crash after the claim sends exactly once on
replay, a crash after the send sends nothing more. A send that got no answer (read timeout,
connection reset) keeps its lease and raises for a retry, which looks the same way.

Each request to Twilio's Messages API holds one of the tenant's ``sms`` slots
(``provider_concurrency``, ``voiceticket_common.provider_limits``): a burst of tickets sends at most
that many SMS at once. The send's lease deadline is taken once the slot is held, so waiting for a
slot never turns into an ambiguous (timed out) send; a 429 leaves the handler, and so the slot,
and the bus waits out its Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypedDict

from voiceticket_common import texts
from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import Event, NotificationFailed, NotificationSent, TicketCreated
from voiceticket_common.provider_limits import ProviderLimits, limits
from voiceticket_common.runtime_views import NotifierView
from voiceticket_common.sealing import CallKeys, seal_fields
from voiceticket_common.tracing import tag_issue_key

from .adapters import AmbiguousSend
from .conversations import CONVERSATION_PURPOSE, Conversation, SqlConversations
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
CALLER_HASH_PURPOSE = b"voiceticket notifier opted-out caller v1"
"""What the notifier's caller hashes (opt-outs, conversations) are keyed for; fixed: the rows stored
under it would stop matching."""
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
    conversations: SqlConversations | None = None
    """Whom we texted about which request (two-way SMS, status texts); None: not remembered."""
    keys: CallKeys | None = None
    """The call data keys, to seal the caller's number in ``conversations`` (and open it again)."""


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
    # The template in the request's language (the caller's in auto mode), unless the line has its own.
    template = texts.sms_template(event.language or line.language, line.sms_template)
    if event.added_to_existing:
        # A repeat call added to the caller's open request: the text says so (built-in, per language).
        template = texts.repeat_sms_template(event.language or line.language)
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
    sent = await send_claimed(
        deps, config, claim, sms, caller, marker=event.issue_key,
        before_complete=lambda: remember_conversation(event, deps, caller),
    )  # fmt: skip
    if sent.outcome == "rejected":
        log.warning("sms rejected", extra={"error_code": sent.error_code, "reason": sent.reason})
        return [NotificationFailed(**base, reason=sent.reason, error_code=sent.error_code, retryable=False)]
    if sent.message_sid is None:  # only "sent" has Twilio's sid
        raise PermanentError(f"sms outcome {sent.outcome!r} without a message sid")
    if sent.found_earlier:
        log.warning("found the sms an interrupted attempt sent, not sending again")
    else:
        size = measure(body)
        log.info(
            "sms sent",
            extra={"issue_key": event.issue_key, "encoding": size.encoding, "segments": size.segments},
        )
    return [NotificationSent(**base, message_sid=sent.message_sid, segments=sent.segments)]


@dataclass(frozen=True)
class Sent:
    """What became of one SMS: ``sent`` (``found_earlier``: an interrupted attempt had sent it),
    ``rejected`` (Twilio's ``error_code`` and ``reason``) or ``opted-out``. A send with no answer
    is not an outcome: ``send_claimed`` raises for a retry that looks it up first."""

    outcome: str
    message_sid: str | None = None
    error_code: str | None = None
    reason: str = ""
    segments: int | None = None
    found_earlier: bool = False


async def send_claimed(
    deps: NotifierDeps,
    config: NotifierView,
    claim: SmsClaim,
    sms: Sms,
    caller: str,
    *,
    marker: str,
    before_complete: Callable[[], Awaitable[None]] | None = None,
) -> Sent:
    """Send ``sms`` under ``claim`` (held in the SMS ledger) and record the outcome there: first,
    if an earlier attempt started sending, look for its SMS at Twilio (by ``marker`` in the body);
    a refusal for an opted-out number (21610) remembers the opt-out under the ``caller`` hash.
    ``before_complete`` runs once the SMS is known sent, before the ledger says so. A cancel, or a
    send that got no answer, while the request is at Twilio leaves ``claim.send_in_flight`` set:
    the caller keeps the lease (the latter raises ``TransientError``)."""
    account = config.twilio_account()
    limit = config.tenant.provider_concurrency.sms
    if claim.send_started_at is not None:
        # An earlier attempt started sending and recorded nothing (it crashed): did the SMS go out?
        async with deps.slots.slot(config.tenant_id, "sms", limit):
            earlier = await deps.sender.find_sent(account, sms, marker, claim.send_started_at)
        if earlier is not None:
            if before_complete is not None:
                await before_complete()
            await deps.ledger.complete(claim, "sent", earlier.message_sid)
            return Sent("sent", earlier.message_sid, segments=earlier.segments, found_earlier=True)
    async with deps.slots.slot(config.tenant_id, "sms", limit):
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
                await deps.ledger.record_opt_out(config.tenant_id, caller)
            return Sent("rejected", error_code=exc.code, reason=exc.reason)
        except (AmbiguousSend, TimeoutError):
            # No answer (a read timeout, a dropped connection, the send cut at the lease's end): the
            # SMS may or may not exist. The send stays started and the lease, taken to the send's
            # deadline, is kept (``send_in_flight``), so the retry looks at Twilio's list once the
            # lease ends and sends only if there is none: exactly one SMS, not none.
            wait = max((deadline - deps.ledger.now()).total_seconds(), 0.0) + 0.1
            raise TransientError(
                "sms outcome unknown: looked up at Twilio once this attempt's lease ends", retry_after=wait
            ) from None
        except Exception:
            # Nothing left Twilio's side (connection refused, 429, 5xx): a retry may send unlooked.
            claim.send_in_flight = False
            await deps.ledger.release(claim, sent_nothing=True)
            raise
        claim.send_in_flight = False  # only a cancel leaves it set (the request may still land)
    if before_complete is not None:
        await before_complete()
    await deps.ledger.complete(claim, "sent", receipt.message_sid)
    return Sent("sent", receipt.message_sid, segments=receipt.segments)


async def remember_conversation(event: TicketCreated, deps: NotifierDeps, caller_hash: str) -> None:
    """Note that we texted this caller about this request: their replies and the request's status
    changes find them again (the number sealed under the call's key, ``conversations.py``)."""
    if deps.conversations is None or deps.keys is None:
        return
    key = await deps.keys.key_for_opening(event.tenant_id, event.call_sid)
    sealed = seal_fields(
        key,
        {"caller_number": event.caller_number},
        tenant_id=event.tenant_id,
        call_sid=event.call_sid,
        purpose=CONVERSATION_PURPOSE,
    )
    conversation = Conversation(
        tenant_id=event.tenant_id,
        issue_key=event.issue_key,
        call_sid=event.call_sid,
        line_number=event.line_number,
        caller_sealed=json.dumps(sealed),
        language=event.language,
        texted_at=deps.ledger.now(),
    )
    await deps.conversations.remember(conversation, caller_hash)
