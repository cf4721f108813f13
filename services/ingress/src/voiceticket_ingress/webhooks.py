"""The call's webhooks: incoming call (TwiML), IVR menu and consent key (``<Gather>`` actions),
recording status callback, record action.

A line with an ``ivr_menu`` first asks its menu (``/twilio/menu``: a key or words choose an option,
sealed into the context as ``ivr_choice``), then goes on to the consent flow below.

Consent, per line (``consent_mode``): ``notice`` answers with the greeting, the recording notice
and ``<Record>``; ``press_key`` answers with the greeting and a one-key ``<Gather>`` around the
notice and the consent prompt, and returns ``<Record>`` only from ``/twilio/consent`` when the
caller pressed the line's ``consent_key``. No key or another key asks once more (``consent_repeat``)
and then counts as declined: ``call.consent.declined`` is published and the caller hears that
nothing was recorded.
"""

from __future__ import annotations

import logging
import re
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
    CarriedContext,
)
from voiceticket_common.metrics import call_screened
from voiceticket_common.runtime_views import SCREENING_NO_REQUEST, IngressLine

from . import params, twiml
from .caller_screening import screened_caller
from .gate import WebhookGate
from .menu import answer as menu_answer
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
        self.router.add_api_route("/menu", self.menu_choice, methods=["POST"])
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
        screened = await screened_caller(webhook, line, gate.block_list(request))
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
        menu = line.line.ivr_menu
        if menu is not None:
            action = gate.callback_url(base, "/twilio/menu", context)
            body = twiml.menu_gather(line.line, menu, action, greeting=True)
        else:
            body = self._recording_flow(line.line, base, context, greeting=True)
        log.info("call answered", extra={"tenant_id": line.tenant_id, "consent_mode": line.line.consent_mode})
        return Response(body, media_type=TWIML)

    def _recording_flow(self, line: IngressLine, base: str, context: CallContext, *, greeting: bool) -> str:
        """What comes before the recording: the consent ``<Gather>`` of a ``press_key`` line, or
        the notice and ``<Record>``; ``greeting`` False after the IVR menu (said before it)."""
        gate = self._gate
        if line.consent_mode == "press_key":
            return twiml.consent_gather(
                line, gate.callback_url(base, "/twilio/consent", context), greeting=greeting
            )
        record_action = gate.callback_url(base, "/twilio/record-done", context)
        recording_callback = gate.callback_url(base, "/twilio/recording", context)
        if greeting:
            return twiml.greeting_and_record(line, record_action, recording_callback)
        return twiml.notice_and_record(line, record_action, recording_callback)

    async def menu_choice(self, request: Request) -> Response:
        """The IVR menu's ``<Gather>`` action (and the ``<Redirect>`` after it, without input): a
        valid key or spoken option goes on to the consent or recording flow with the choice sealed
        in the context; no or invalid input asks again, up to the menu's ``attempts``, then the
        call goes on without a choice (the analysis decides, as without a menu)."""
        gate = self._gate
        webhook = await gate.read(request)
        context, view = await gate.verify_with_context(request, webhook)
        gate.annotate(params.call_sid(webhook), context.tenant_id)
        line, menu = view.line, view.line.ivr_menu
        base = gate.public.base(request)
        if menu is None:  # the menu was removed during the call: go on as a line without one
            return Response(self._recording_flow(line, base, context, greeting=False), media_type=TWIML)
        attempt = _menu_attempt(request, menu.attempts)
        answer = menu_answer(menu, params.keys(webhook), params.speech(webhook))
        if answer.choice is None and attempt < menu.attempts:
            action = gate.callback_url(base, "/twilio/menu", context, {"attempt": str(attempt + 1)})
            body = twiml.menu_gather(line, menu, action, greeting=False, retry_reason=answer.reason)
            log.info("menu offered again", extra={"reason": answer.reason, "attempt": attempt})
            return Response(body, media_type=TWIML)
        chosen = replace(context, ivr_choice=answer.choice)
        language = answer.choice.language if answer.choice else None
        body = self._recording_flow(twiml.speaking(line, language), base, chosen, greeting=False)
        log.info(
            "menu answered",
            extra={
                "option": answer.choice.digit if answer.choice else None,
                "input": answer.choice.input if answer.choice else None,
                "reason": answer.reason,
                "attempt": attempt,
            },
        )
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
        line = twiml.speaking(view.line, context.ivr_choice.language if context.ivr_choice else None)
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
            ivr_choice=context.ivr_choice,
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
            "ivr_choice": context.ivr_choice,
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
        context, line = await self._gate.verify_with_context(request, webhook)
        language = context.ivr_choice.language if context.ivr_choice else None
        return Response(twiml.goodbye(twiml.speaking(line.line, language)), media_type=TWIML)


def _menu_attempt(request: Request, attempts: int) -> int:
    """Which menu prompt this answers: 1, or the repeat's ``attempt`` (signed by Twilio)."""
    values = request.query_params.getlist("attempt")
    if not values:
        return 1
    if len(values) != 1 or not re.fullmatch(r"[2-9]", values[0]):
        raise Malformed("attempt", "is not a repeat of the menu (2-9)")
    # A menu given fewer attempts during the call: this answer is its last.
    return min(int(values[0]), attempts)


def _attempt(request: Request) -> int:
    """Which consent prompt this answers: 1, or 2 for the repeat (``attempt=2``, signed by Twilio)."""
    values = request.query_params.getlist("attempt")
    if not values:
        return 1
    if values != ["2"]:
        raise Malformed("attempt", "is not 2")
    return 2
