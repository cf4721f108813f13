"""The call's webhooks: incoming call (TwiML), consent key (``<Gather>`` action), recording status
callback, record action.

Consent, per line (``consent_mode``): ``notice`` answers with the greeting, the recording notice
and ``<Record>``; ``press_key`` answers with the greeting and a one-key ``<Gather>`` around the
notice and the consent prompt, and returns ``<Record>`` only from ``/twilio/consent`` when the
caller pressed the line's ``consent_key``. No key or another key asks once more (``consent_repeat``)
and then counts as declined: ``call.consent.declined`` is published and the caller hears that
nothing was recorded.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from fastapi import APIRouter, Request, Response

from voiceticket_common.bus import TransientError
from voiceticket_common.call_context import CallContext
from voiceticket_common.config_client import UnknownLine
from voiceticket_common.events import (
    CallReceived,
    CallScreened,
    ConsentDeclined,
    RecordingAbsent,
    RecordingCompleted,
)
from voiceticket_common.events.v1 import (
    CONSENT_DECLINED,
    CONSENT_NOTICE,
    CONSENT_PRESSED,
    SCREENED_ROBOCALL,
    CarriedContext,
)
from voiceticket_common.metrics import call_screened
from voiceticket_common.runtime_views import SCREENING_NO_REQUEST

from . import params, twiml
from .gate import WebhookGate
from .params import Malformed

log = logging.getLogger(__name__)

TWIML = "application/xml"


class CallWebhooks:
    """``/twilio/voice``, ``/twilio/consent``, ``/twilio/recording`` and ``/twilio/record-done``."""

    def __init__(self, gate: WebhookGate) -> None:
        self._gate = gate
        self.router = APIRouter(prefix="/twilio")
        self.router.add_api_route("/voice", self.incoming_call, methods=["POST"])
        self.router.add_api_route("/consent", self.consent_key, methods=["POST"])
        self.router.add_api_route("/recording", self.recording_status, methods=["POST"])
        self.router.add_api_route("/record-done", self.record_done, methods=["POST"])

    async def incoming_call(self, request: Request) -> Response:
        gate = self._gate
        webhook = await gate.read(request)
        to_number = params.e164(webhook, "To")  # before the lookup: no odd string reaches config-api
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
        gate.verify(webhook, line)
        call_sid = params.call_sid(webhook)
        gate.annotate(call_sid, line.tenant_id)
        asks_consent = line.line.consent_mode == "press_key"
        screened = (
            SCREENED_ROBOCALL if line.line.screen_robocalls and params.flagged_as_spam(webhook) else None
        )
        event = CallReceived(
            tenant_id=line.tenant_id,
            call_sid=call_sid,
            account_sid=params.sid(webhook, "AccountSid", "AC"),
            line_number=to_number,
            # E.164, client: or sip:, or "anonymous" for a withheld number (see params.py)
            caller_number=params.caller(webhook),
            # press_key: decided at /twilio/consent
            consent=None if asks_consent else CONSENT_NOTICE,
            screened=screened,
        )
        if screened is not None:
            call_screened(screened, line.line.screening_action, line.tenant_id)
            log.info(
                "caller screened",
                extra={"screened": screened, "screening_action": line.line.screening_action},
            )
            if line.line.screening_action == SCREENING_NO_REQUEST:
                # Rejected unanswered (the caller hears a busy tone; nothing is recorded or billed).
                await gate.publisher(request).publish(event)
                await gate.publisher(request).publish(
                    CallScreened(**event.call_context(), reason=screened, by="ingress")
                )
                return Response(twiml.reject(), media_type=TWIML)
        await gate.publisher(request).publish(event)
        # Callbacks go to the origin Twilio used for this call (configured, or named by a
        # trusted proxy), so they verify the same way.
        base = gate.public.base(request)
        context = CallContext(line.tenant_id, to_number, event.caller_number, screened=screened or "")
        if asks_consent:
            body = twiml.consent_gather(
                line.line, gate.callback_url(base, "/twilio/consent", context), greeting=True
            )
        else:
            body = twiml.greeting_and_record(
                line.line,
                record_action_url=gate.callback_url(base, "/twilio/record-done", context),
                recording_callback_url=gate.callback_url(base, "/twilio/recording", context),
            )
        log.info("call answered", extra={"tenant_id": line.tenant_id, "consent_mode": line.line.consent_mode})
        return Response(body, media_type=TWIML)

    async def consent_key(self, request: Request) -> Response:
        """The consent ``<Gather>``'s action (and the ``<Redirect>`` after it, without ``Digits``):
        ``<Record>`` only for the line's consent key; otherwise ask again once, then decline."""
        gate = self._gate
        webhook = await gate.read(request)
        context, view = await gate.verify_with_context(request, webhook)
        call_sid = params.call_sid(webhook)
        gate.annotate(call_sid, context.tenant_id)
        attempt = _attempt(request)
        pressed = params.keys(webhook)
        line = view.line
        base = gate.public.base(request)
        if pressed == line.consent_key:
            consented = replace(context, consent=CONSENT_PRESSED)
            body = twiml.record_after_consent(
                line,
                record_action_url=gate.callback_url(base, "/twilio/record-done", consented),
                recording_callback_url=gate.callback_url(base, "/twilio/recording", consented),
            )
            log.info("caller consented to the recording", extra={"attempt": attempt})
            return Response(body, media_type=TWIML)
        reason = "invalid_key" if pressed else "no_input"
        if line.consent_repeat and attempt == 1:
            action = gate.callback_url(base, "/twilio/consent", context, {"attempt": "2"})
            body = twiml.consent_gather(line, action, greeting=False, retry_reason=reason)
            log.info("consent prompt repeated", extra={"reason": reason})
            return Response(body, media_type=TWIML)
        event = ConsentDeclined(
            tenant_id=context.tenant_id,
            call_sid=call_sid,
            line_number=context.line_number,
            caller_number=context.caller_number,
            consent=CONSENT_DECLINED,
            reason=reason,
            attempts=attempt,
        )
        await gate.publisher(request).publish(event)
        log.info("caller declined the recording: nothing recorded", extra={"reason": reason})
        return Response(twiml.consent_declined(line), media_type=TWIML)

    async def recording_status(self, request: Request) -> Response:
        gate = self._gate
        webhook = await gate.read(request)
        context, _ = await gate.verify_with_context(request, webhook)
        call_sid = params.call_sid(webhook)
        gate.annotate(call_sid, context.tenant_id)
        status = params.word(webhook, "RecordingStatus")
        common: CarriedContext = {
            "tenant_id": context.tenant_id,
            "call_sid": call_sid,
            "line_number": context.line_number,
            "caller_number": context.caller_number,
            # sealed "pressed" after the consent key; every other <Record> follows the notice
            "consent": context.consent or CONSENT_NOTICE,
            "screened": context.screened or None,
        }
        if status == "completed":
            event: RecordingCompleted | RecordingAbsent = RecordingCompleted(
                **common,
                account_sid=params.sid(webhook, "AccountSid", "AC"),
                recording_sid=params.sid(webhook, "RecordingSid", "RE"),
                recording_url=params.media_url(webhook, "RecordingUrl"),
                duration_seconds=params.count(webhook, "RecordingDuration") or 0,
                channels=params.count(webhook, "RecordingChannels", minimum=1, maximum=2) or 1,
            )
        elif status in ("absent", "failed"):
            event = RecordingAbsent(**common, status=status, error_code=params.error_code(webhook))
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


def _attempt(request: Request) -> int:
    """Which consent prompt this answers: 1, or 2 for the repeat (``attempt=2``, signed by Twilio)."""
    values = request.query_params.getlist("attempt")
    if not values:
        return 1
    if values != ["2"]:
        raise Malformed("attempt", "is not 2")
    return 2
