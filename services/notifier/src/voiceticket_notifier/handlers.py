"""ticket created -> at most one SMS to the caller with the request key."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from voiceticket_common.bus import Envelope
from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import Event, NotificationFailed, NotificationSent, TicketCreated
from voiceticket_common.tracing import tag_issue_key

from .adapters import AmbiguousSend
from .ports import Sms, SmsAccount, SmsLedger, SmsRejected, SmsSender

log = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "Thanks for calling. Your support request {request_key} has been created."


@dataclass
class NotifierDeps:
    config: RuntimeConfig
    sender: SmsSender
    ledger: SmsLedger


def render(template: str, event: TicketCreated) -> str:
    try:
        return template.format(request_key=event.issue_key, summary=event.summary)
    except (KeyError, IndexError, ValueError):
        return DEFAULT_TEMPLATE.format(request_key=event.issue_key)


async def notify_caller(envelope: Envelope, deps: NotifierDeps) -> Sequence[Event]:
    event = envelope.event
    assert isinstance(event, TicketCreated)
    tag_issue_key(event.issue_key)
    config = await deps.config.line(event.line_number)
    line = config.line
    base = {"tenant_id": event.tenant_id, "call_sid": event.call_sid, "issue_key": event.issue_key}
    if not line.get("sms_enabled"):
        return []
    sender = line.get("sms_from") or event.line_number
    if not await deps.ledger.claim(event.tenant_id, event.call_sid):
        log.info("sms already attempted for this call, not sending again")
        return []
    account = SmsAccount(
        account_sid=str(config.tenant.get("twilio_account_sid") or ""),
        auth_token=config.secret("twilio_auth_token"),
    )
    sms = Sms(
        to=event.caller_number,
        sender=sender,
        body=render(line.get("sms_template") or DEFAULT_TEMPLATE, event),
    )
    try:
        receipt = await deps.sender.send(account, sms)
    except SmsRejected as exc:
        await deps.ledger.complete(event.tenant_id, event.call_sid, "rejected", None)
        log.warning("sms rejected", extra={"error_code": exc.code, "reason": exc.reason})
        return [NotificationFailed(**base, reason=exc.reason, error_code=exc.code, retryable=False)]
    except AmbiguousSend:
        await deps.ledger.complete(event.tenant_id, event.call_sid, "unknown", None)
        log.error("sms outcome unknown; not resending to keep at most one sms per call")
        return [NotificationFailed(**base, reason="outcome unknown after a timeout", retryable=False)]
    except Exception:
        # Nothing left Twilio's side (connection refused, 429, 5xx): a retry may send.
        await deps.ledger.release(event.tenant_id, event.call_sid)
        raise
    await deps.ledger.complete(event.tenant_id, event.call_sid, "sent", receipt.message_sid)
    log.info("sms sent", extra={"issue_key": event.issue_key})
    return [NotificationSent(**base, message_sid=receipt.message_sid, segments=receipt.segments)]
