"""Twilio's incoming message webhook (``POST /twilio/sms``, the Messaging URL of a line's number):
a caller's text to one of our lines becomes ``sms.received``.

Verified exactly as the voice webhooks are (the ``To`` line's tenant's Auth Token, then its
account). The sender and the text are sealed on the bus under a data key of the message's own
(keyed by its MessageSid, found again by the sender's number for an erasure or an export). Twilio
gets empty TwiML: whatever we answer (the help text, a polite word when there is no open request)
the notifier sends, once, after it looked at its ledger.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from voiceticket_common.bus import TransientError
from voiceticket_common.config_client import UnknownLine
from voiceticket_common.events import SmsReceived

from . import params, twiml
from .gate import WebhookGate
from .params import Malformed
from .sms_keywords import keyword

log = logging.getLogger(__name__)

TWIML = "application/xml"
MAX_BODY_CHARS = 1600  # Twilio's longest message body


class MessagingWebhooks:
    """``/twilio/sms``."""

    def __init__(self, gate: WebhookGate) -> None:
        self._gate = gate
        self.router = APIRouter(prefix="/twilio")
        self.router.add_api_route("/sms", self.incoming_message, methods=["POST"])

    async def incoming_message(self, request: Request) -> Response:
        gate = self._gate
        webhook = await gate.read(request)
        to_number = params.e164(webhook, "To")
        try:
            line = await gate.config(request).line(to_number)
        except UnknownLine:
            # No token to verify with, and nothing to do: an empty answer, nothing published.
            log.warning("message to a number that belongs to no line")
            return Response(twiml.empty(), media_type=TWIML)
        except TransientError:
            log.error("config-api unavailable while receiving a message")
            return Response(status_code=503)
        gate.verify(webhook, line)
        message_sid = params.message_sid(webhook)
        gate.annotate(message_sid, line.tenant_id)
        try:
            sender = params.e164(webhook, "From")
        except Malformed:
            # A short code or an alphanumeric sender (a carrier's notice, another business): nobody
            # we could text back or find a request for.
            log.info("sms from a sender that is not a phone number: ignored")
            return Response(twiml.empty(), media_type=TWIML)
        body = webhook.get("Body")[:MAX_BODY_CHARS]
        opt_out_type = webhook.get("OptOutType")
        event = SmsReceived(
            tenant_id=line.tenant_id,
            call_sid=message_sid,
            line_number=to_number,
            caller_number=sender,
            body=body,
            keyword=keyword(body, opt_out_type),
            keyword_answered_by_twilio=bool(opt_out_type.strip()),
            num_media=params.count(webhook, "NumMedia", maximum=10) or 0,
        )
        # Twilio retries a webhook it got no answer to: the same MessageSid, the same event id.
        await gate.publisher(request).publish(event)
        log.info("sms received", extra={"keyword": event.keyword or "none"})
        return Response(twiml.empty(), media_type=TWIML)
