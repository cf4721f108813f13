"""Twilio webhook routes: signature first, then TwiML and events."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from opentelemetry import trace
from starlette.datastructures import FormData
from twilio.request_validator import RequestValidator

from voiceticket_common.bus import EventPublisher, TransientError
from voiceticket_common.config_client import RuntimeConfig, UnknownLine
from voiceticket_common.events import CallReceived, RecordingAbsent, RecordingCompleted
from voiceticket_common.logging import current_call_sid
from voiceticket_common.tracing import CALL_SID_ATTR, TENANT_ATTR, current_traceparent

from . import twiml
from .call_context import CallContext, CallContextSealer, InvalidCallContext
from .settings import IngressSettings

log = logging.getLogger(__name__)

TWIML = "application/xml"


class Forbidden(Exception):
    """The webhook's signature did not verify: answer 403 and publish nothing."""


class Webhooks:
    """Routes for Twilio's webhooks; the publisher and config client live in ``app.state``."""

    def __init__(self, settings: IngressSettings) -> None:
        self._settings = settings
        self._sealer = CallContextSealer(settings.callback_context_key)
        self.router = APIRouter(prefix="/twilio")
        self.router.add_api_route("/voice", self.incoming_call, methods=["POST"])
        self.router.add_api_route("/recording", self.recording_status, methods=["POST"])
        self.router.add_api_route("/record-done", self.record_done, methods=["POST"])

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _publisher(request: Request) -> EventPublisher:
        return request.app.state.publisher  # type: ignore[no-any-return]

    @staticmethod
    def _config(request: Request) -> RuntimeConfig:
        return request.app.state.config  # type: ignore[no-any-return]

    def public_url(self, request: Request) -> str:
        """The URL as Twilio requested it: configured public base + path + raw query."""

        url = self._settings.public_base_url.rstrip("/") + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        return url

    def _callback_url(self, path: str, sealed: str) -> str:
        params = {"ctx": sealed}
        traceparent = current_traceparent()
        if traceparent:
            params["tp"] = traceparent
        return f"{self._settings.public_base_url.rstrip('/')}{path}?{urlencode(params)}"

    def _verify(self, request: Request, form: FormData, auth_token: str) -> None:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not RequestValidator(auth_token).validate(
            self.public_url(request), form, signature
        ):
            raise Forbidden()

    @staticmethod
    def _annotate(call_sid: str, tenant_id: str) -> None:
        span = trace.get_current_span()
        span.set_attribute(CALL_SID_ATTR, call_sid)
        span.set_attribute(TENANT_ATTR, tenant_id)
        current_call_sid.set(call_sid)

    # -- routes --------------------------------------------------------------------------------
    async def incoming_call(self, request: Request) -> Response:
        form = await request.form()
        to_number = str(form.get("To", ""))
        try:
            line = await self._config(request).line(to_number)
        except UnknownLine:
            # We cannot verify a signature without the line's account token, and we publish
            # nothing: the caller hears a polite message instead of Twilio's error tone.
            log.warning("call to a number that belongs to no line")
            return Response(twiml.not_in_service(), media_type=TWIML)
        except TransientError:
            log.error("config-api unavailable while answering a call")
            return Response(status_code=503)
        self._verify(request, form, line.secret("twilio_auth_token").get_secret_value())
        call_sid = str(form["CallSid"])
        self._annotate(call_sid, line.tenant_id)
        event = CallReceived(
            tenant_id=line.tenant_id,
            call_sid=call_sid,
            account_sid=str(form.get("AccountSid", "")),
            line_number=to_number,
            caller_number=str(form.get("From", "")),
        )
        await self._publisher(request).publish(event)
        sealed = self._sealer.seal(CallContext(line.tenant_id, to_number, event.caller_number))
        body = twiml.greeting_and_record(
            line.line,
            record_action_url=self._callback_url("/twilio/record-done", sealed),
            recording_callback_url=self._callback_url("/twilio/recording", sealed),
            timeout_seconds=self._settings.record_timeout_seconds,
            finish_on_key=self._settings.record_finish_on_key,
        )
        log.info("call answered", extra={"tenant_id": line.tenant_id})
        return Response(body, media_type=TWIML)

    async def _context_and_verify(self, request: Request, form: FormData) -> CallContext:
        try:
            context = self._sealer.open(request.query_params.get("ctx", ""))
            line = await self._config(request).line(context.line_number)
        except (InvalidCallContext, UnknownLine):
            raise Forbidden() from None
        self._verify(request, form, line.secret("twilio_auth_token").get_secret_value())
        return context

    async def recording_status(self, request: Request) -> Response:
        form = await request.form()
        context = await self._context_and_verify(request, form)
        call_sid = str(form.get("CallSid", ""))
        self._annotate(call_sid, context.tenant_id)
        status = str(form.get("RecordingStatus", ""))
        common = {
            "tenant_id": context.tenant_id,
            "call_sid": call_sid,
            "line_number": context.line_number,
            "caller_number": context.caller_number,
        }
        if status == "completed":
            event: RecordingCompleted | RecordingAbsent = RecordingCompleted(
                **common,
                account_sid=str(form.get("AccountSid", "")),
                recording_sid=str(form.get("RecordingSid", "")),
                recording_url=str(form.get("RecordingUrl", "")),
                duration_seconds=int(str(form.get("RecordingDuration") or 0)),
                channels=int(str(form.get("RecordingChannels") or 1)),
            )
        elif status in ("absent", "failed"):
            event = RecordingAbsent(
                **common, status=status, error_code=str(form.get("ErrorCode") or "") or None
            )
        else:
            # in-progress and other interim statuses carry nothing to act on.
            return Response(status_code=204)
        await self._publisher(request).publish(event)
        log.info("recording status received", extra={"status": status})
        return Response(status_code=204)

    async def record_done(self, request: Request) -> Response:
        form = await request.form()
        await self._context_and_verify(request, form)
        return Response(twiml.goodbye(), media_type=TWIML)
