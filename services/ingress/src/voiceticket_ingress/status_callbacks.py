"""Status callbacks: the SMS's delivery receipts and the end of the call."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from voiceticket_common.events import CallCompleted, NotificationDelivery

from . import params
from .gate import WebhookGate
from .signature import Forbidden

log = logging.getLogger(__name__)

# Call statuses that end a call; initiated/ringing/answered (when subscribed) say nothing new.
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


class StatusCallbacks:
    """``/twilio/message-status`` (URL built by notifier, sealed context) and
    ``/twilio/call-status`` (configured on the number; the line is the call's ``To``)."""

    def __init__(self, gate: WebhookGate) -> None:
        self._gate = gate
        self.router = APIRouter(prefix="/twilio")
        self.router.add_api_route("/message-status", self.message_status, methods=["POST"])
        self.router.add_api_route("/call-status", self.call_status, methods=["POST"])

    async def message_status(self, request: Request) -> Response:
        gate = self._gate
        webhook = await gate.read(request)
        context, _ = await gate.verify_with_context(request, webhook)
        if not context.call_sid:
            raise Forbidden()  # a context sealed for another callback, not for a message
        gate.annotate(context.call_sid, context.tenant_id)
        message_sid = params.message_sid(webhook)
        status = params.word(webhook, "MessageStatus", "SmsStatus")
        event = NotificationDelivery(
            tenant_id=context.tenant_id,
            call_sid=context.call_sid,
            message_sid=message_sid,
            status=status,
            error_code=params.error_code(webhook),
        )
        # one event per (message, status): Twilio retries a callback, a status arrives once
        await gate.publisher(request).publish(event, discriminator=f"{message_sid}|{status}")
        log.info("sms delivery status received", extra={"status": status, "error_code": event.error_code})
        return Response(status_code=204)

    async def call_status(self, request: Request) -> Response:
        gate = self._gate
        webhook = await gate.read(request)
        line = await gate.verify_for_line(request, webhook, params.e164(webhook, "To"))
        call_sid = params.call_sid(webhook)
        gate.annotate(call_sid, line.tenant_id)
        status = params.word(webhook, "CallStatus")
        duration = params.count(webhook, "CallDuration")
        if status not in FINAL_CALL_STATUSES:
            return Response(status_code=204)
        event = CallCompleted(
            tenant_id=line.tenant_id, call_sid=call_sid, status=status, duration_seconds=duration
        )
        await gate.publisher(request).publish(event)
        log.info("call status received", extra={"status": status})
        return Response(status_code=204)
