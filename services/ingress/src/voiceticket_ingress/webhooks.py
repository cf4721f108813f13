"""The call's webhooks: incoming call (TwiML), recording status callback, record action."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from voiceticket_common.bus import TransientError
from voiceticket_common.call_context import CallContext
from voiceticket_common.config_client import UnknownLine
from voiceticket_common.events import CallReceived, RecordingAbsent, RecordingCompleted
from voiceticket_common.events.v1 import CarriedContext

from . import twiml
from .gate import WebhookGate

log = logging.getLogger(__name__)

TWIML = "application/xml"


class CallWebhooks:
    """``/twilio/voice``, ``/twilio/recording`` and ``/twilio/record-done``."""

    def __init__(self, gate: WebhookGate) -> None:
        self._gate = gate
        self.router = APIRouter(prefix="/twilio")
        self.router.add_api_route("/voice", self.incoming_call, methods=["POST"])
        self.router.add_api_route("/recording", self.recording_status, methods=["POST"])
        self.router.add_api_route("/record-done", self.record_done, methods=["POST"])

    async def incoming_call(self, request: Request) -> Response:
        gate = self._gate
        webhook = await gate.read(request)
        to_number = webhook.get("To")
        try:
            line = await gate.config(request).line(to_number)
        except UnknownLine:
            # We cannot verify a signature without the line's account token, and we publish
            # nothing: the caller hears a polite message instead of Twilio's error tone.
            log.warning("call to a number that belongs to no line")
            return Response(twiml.not_in_service(), media_type=TWIML)
        except TransientError:
            log.error("config-api unavailable while answering a call")
            return Response(status_code=503)
        webhook.verify(line.twilio_account().auth_token.get_secret_value())
        call_sid = webhook.get("CallSid")
        gate.annotate(call_sid, line.tenant_id)
        event = CallReceived(
            tenant_id=line.tenant_id,
            call_sid=call_sid,
            account_sid=webhook.get("AccountSid"),
            line_number=to_number,
            caller_number=webhook.get("From"),
        )
        await gate.publisher(request).publish(event)
        # Callbacks go to the origin Twilio used for this call (configured, or named by a
        # trusted proxy), so they verify the same way.
        base = gate.public.base(request)
        context = CallContext(line.tenant_id, to_number, event.caller_number)
        body = twiml.greeting_and_record(
            line.line,
            record_action_url=gate.callback_url(base, "/twilio/record-done", context),
            recording_callback_url=gate.callback_url(base, "/twilio/recording", context),
        )
        log.info("call answered", extra={"tenant_id": line.tenant_id})
        return Response(body, media_type=TWIML)

    async def recording_status(self, request: Request) -> Response:
        gate = self._gate
        webhook = await gate.read(request)
        context, _ = await gate.verify_with_context(request, webhook)
        call_sid = webhook.get("CallSid")
        gate.annotate(call_sid, context.tenant_id)
        status = webhook.get("RecordingStatus")
        common: CarriedContext = {
            "tenant_id": context.tenant_id,
            "call_sid": call_sid,
            "line_number": context.line_number,
            "caller_number": context.caller_number,
        }
        if status == "completed":
            event: RecordingCompleted | RecordingAbsent = RecordingCompleted(
                **common,
                account_sid=webhook.get("AccountSid"),
                recording_sid=webhook.get("RecordingSid"),
                recording_url=webhook.get("RecordingUrl"),
                duration_seconds=_count(webhook.get("RecordingDuration"), 0),
                channels=_count(webhook.get("RecordingChannels"), 1),
            )
        elif status in ("absent", "failed"):
            event = RecordingAbsent(**common, status=status, error_code=webhook.get("ErrorCode") or None)
        else:
            # in-progress and other interim statuses carry nothing to act on.
            return Response(status_code=204)
        await gate.publisher(request).publish(event)
        log.info("recording status received", extra={"status": status})
        return Response(status_code=204)

    async def record_done(self, request: Request) -> Response:
        webhook = await self._gate.read(request)
        _, line = await self._gate.verify_with_context(request, webhook)
        return Response(twiml.goodbye(line.line), media_type=TWIML)


def _count(value: str, default: int) -> int:
    return int(value) if value.isdigit() else default
