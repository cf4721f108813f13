"""Two-way SMS and status texts: what the notifier does with a caller's text, and with a request's
status change.

* ``sms.received``: STOP (and Twilio's synonyms) remembers the opt-out, START forgets it, HELP is
  answered with the line's ``sms_help_text`` (unless Twilio's Advanced Opt-Out answered it); on a
  line with ``sms_replies``, any other text about the request we last texted the caller about goes
  to jira-writer (``sms.reply.routed``), which comments it while Jira says the request is open;
  with no such request, a polite answer.
* ``sms.reply.commented`` with ``request_closed``: the same polite answer.
* ``request.status_changed``: the caller of a request we texted about gets one SMS per transition
  into a status the line lists in ``status_texts``.

Every answer is claimed in the SMS ledger first (keyed by the inbound MessageSid, or by the
request and Jira's changelog id), so a redelivered event never sends twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from voiceticket_common.events import (
    Event,
    RequestStatusChanged,
    SmsAnswered,
    SmsReceived,
    SmsReplyCommented,
    SmsReplyRouted,
    StatusTextSent,
)
from voiceticket_common.events.v1 import (
    SMS_ANSWER_HELP,
    SMS_ANSWER_NO_OPEN_REQUEST,
    SMS_ANSWER_NONE,
    SMS_ANSWER_OPTED_IN,
    SMS_ANSWER_OPTED_OUT,
    SMS_KEYWORD_HELP,
    SMS_KEYWORD_START,
    SMS_KEYWORD_STOP,
    SMS_REPLY_REQUEST_CLOSED,
    STATUS_CATEGORY_DONE,
)
from voiceticket_common.runtime_views import DEFAULT_STATUS_TEXT, STATUS_TEXTS_RESOLVED, NotifierView
from voiceticket_common.sealing import CallErased, UnreadableSeal, open_fields
from voiceticket_common.tracing import tag_issue_key

from .conversations import CONVERSATION_PURPOSE, Conversation
from .handlers import OPTED_OUT, NotifierDeps, Sent, send_claimed
from .ports import Sms

log = logging.getLogger(__name__)

NO_OPEN_REQUEST_TEXT = (
    "Thanks for your message. We found no open request of yours to add it to: "
    "please call us if you still need help."
)
REPLY_WINDOW = timedelta(days=30)
"""How long after our SMS a caller's reply still goes to that request (the ledger keeps rows as long)."""


async def answer_sms(event: SmsReceived, deps: NotifierDeps) -> Sequence[Event]:
    config = await deps.config.line(event.line_number)
    caller = deps.hasher.hash(event.tenant_id, event.caller_number)
    if event.keyword == SMS_KEYWORD_STOP:
        await deps.ledger.record_opt_out(event.tenant_id, caller)
        log.info("caller opted out of sms by text")
        return [_answered(event, SMS_ANSWER_OPTED_OUT)]
    if event.keyword == SMS_KEYWORD_START:
        if deps.conversations is not None:
            await deps.conversations.forget_opt_out(event.tenant_id, caller)
        log.info("caller opted in to sms again by text")
        return [_answered(event, SMS_ANSWER_OPTED_IN)]
    if event.keyword == SMS_KEYWORD_HELP:
        if event.keyword_answered_by_twilio:
            return [_answered(event, SMS_ANSWER_NONE)]  # Advanced Opt-Out sent its help text
        return await _answer(event, deps, config, caller, SMS_ANSWER_HELP, config.line.sms_help_text)
    if not config.line.sms_replies:
        log.info("sms reply on a line that does not read replies: ignored")
        return [_answered(event, SMS_ANSWER_NONE)]
    since = deps.ledger.now() - REPLY_WINDOW
    conversation = (
        await deps.conversations.latest_for(event.tenant_id, caller, since) if deps.conversations else None
    )
    if conversation is None:
        return await _answer(event, deps, config, caller, SMS_ANSWER_NO_OPEN_REQUEST, NO_OPEN_REQUEST_TEXT)
    tag_issue_key(conversation.issue_key)
    return [
        SmsReplyRouted(
            tenant_id=event.tenant_id,
            call_sid=event.call_sid,
            line_number=event.line_number,
            caller_number=event.caller_number,
            issue_key=conversation.issue_key,
            request_call_sid=conversation.call_sid,
            body=event.body,
        )
    ]


async def answer_closed_request(event: SmsReplyCommented, deps: NotifierDeps) -> Sequence[Event]:
    """jira-writer found the request closed: the caller hears that nothing was added."""
    if event.outcome != SMS_REPLY_REQUEST_CLOSED:
        return []
    config = await deps.config.line(event.line_number)
    caller = deps.hasher.hash(event.tenant_id, event.caller_number)
    return await _answer(event, deps, config, caller, SMS_ANSWER_NO_OPEN_REQUEST, NO_OPEN_REQUEST_TEXT)


async def text_status(event: RequestStatusChanged, deps: NotifierDeps) -> Sequence[Event]:
    tag_issue_key(event.issue_key)
    if deps.conversations is None:
        return []
    conversation = await deps.conversations.of_request(event.tenant_id, event.issue_key)
    if conversation is None:
        return []  # not a request we texted anyone about
    config = await deps.config.line(conversation.line_number)
    if not config.line.sms_enabled or not wanted(config.line.status_texts, event):
        return []
    number = await _caller_of(conversation, deps)
    if number is None:
        return []
    caller = deps.hasher.hash(event.tenant_id, number)
    body = DEFAULT_STATUS_TEXT.format(request_key=event.issue_key, status=event.to_status[:60])
    sms = _sms(config, number, conversation.line_number, body)
    if deps.status_callback is not None:
        callback = deps.status_callback.url(event.tenant_id, conversation.line_number, conversation.call_sid)
        sms = Sms(sms.to, sms.body, sms.from_number, sms.messaging_service_sid, callback)
    sent = await send_once(deps, config, status_claim(event), sms, caller, marker=body)
    if sent is None:
        log.info("status text already attempted for this transition, not sending again")
        return []
    log.info("status text", extra={"outcome": sent.outcome, "to_status": event.to_status})
    return [
        StatusTextSent.of(
            tenant_id=event.tenant_id,
            issue_key=event.issue_key,
            changelog_id=event.changelog_id,
            to_status=event.to_status,
            outcome=sent.outcome,
            message_sid=sent.message_sid,
            error_code=sent.error_code,
        )
    ]


def wanted(statuses: Sequence[str], event: RequestStatusChanged) -> bool:
    """Whether the line's ``status_texts`` asks for a text on this transition."""
    names = {s.strip().casefold() for s in statuses}
    if STATUS_TEXTS_RESOLVED in names and (event.to_category or "").lower() == STATUS_CATEGORY_DONE:
        return True
    return event.to_status.strip().casefold() in names


def status_claim(event: RequestStatusChanged) -> str:
    """The SMS ledger's key for one transition's text (34 characters, as a SID is)."""
    digest = hashlib.sha256(f"{event.issue_key}|{event.changelog_id}".encode()).hexdigest()
    return "ST" + digest[:32]


async def _caller_of(conversation: Conversation, deps: NotifierDeps) -> str | None:
    if deps.keys is None:
        return None
    try:
        key = await deps.keys.key_for_opening(conversation.tenant_id, conversation.call_sid)
        opened = open_fields(
            key,
            json.loads(conversation.caller_sealed),
            tenant_id=conversation.tenant_id,
            call_sid=conversation.call_sid,
            purpose=CONVERSATION_PURPOSE,
        )
    except (CallErased, UnreadableSeal, ValueError):
        log.info("the request's caller was erased: no status text")
        return None
    number = opened.get("caller_number")
    return number if isinstance(number, str) and number.startswith("+") else None


async def _answer(
    event: SmsReceived | SmsReplyCommented,
    deps: NotifierDeps,
    config: NotifierView,
    caller: str,
    action: str,
    body: str,
) -> Sequence[Event]:
    sms = _sms(config, event.caller_number, event.line_number, body)
    sent = await send_once(deps, config, event.call_sid, sms, caller, marker=body[:60])
    if sent is None:
        log.info("answer to this message already attempted, not sending again")
        return []
    log.info("sms answered", extra={"action": action, "outcome": sent.outcome})
    return [_answered(event, action, sent)]


def _answered(event: SmsReceived | SmsReplyCommented, action: str, sent: Sent | None = None) -> SmsAnswered:
    return SmsAnswered(
        tenant_id=event.tenant_id,
        call_sid=event.call_sid,
        action=action,
        reply_message_sid=sent.message_sid if sent else None,
        error_code=sent.error_code if sent else None,
    )


def _sms(config: NotifierView, to: str, line_number: str, body: str) -> Sms:
    line = config.line
    service = line.sms_messaging_service_sid
    return Sms(
        to=to,
        body=body,
        from_number=None if service else (line.sms_from or line_number),
        messaging_service_sid=service,
    )


async def send_once(
    deps: NotifierDeps, config: NotifierView, claim_key: str, sms: Sms, caller: str, *, marker: str
) -> Sent | None:
    """Send ``sms`` at most once for ``claim_key`` (the SMS ledger's claim, as for a call's SMS);
    None when an earlier attempt settled it."""
    claim = await deps.ledger.claim(config.tenant_id, claim_key)
    if claim is None:
        return None
    try:
        opted_out = await deps.ledger.opted_out_since(config.tenant_id, caller)
        if opted_out is not None and datetime.now(UTC) - opted_out < deps.opt_out_recheck:
            await deps.ledger.complete(claim, "opted-out", None)
            return Sent("opted-out", error_code=OPTED_OUT)
        return await send_claimed(deps, config, claim, sms, caller, marker=marker)
    except (Exception, asyncio.CancelledError):
        if claim.send_in_flight:
            raise  # cancelled while the request was at Twilio: the lease is kept (as for a call's SMS)
        await deps.ledger.release(claim)
        raise
