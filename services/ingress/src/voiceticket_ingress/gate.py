"""What every webhook route does before it acts: read the request, find the tenant's line, check
the signature with that tenant's Auth Token and the ``AccountSid`` against that tenant's account,
and tag the span and logs with the call."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from opentelemetry import trace
from starlette.requests import Request

from voiceticket_common.bus import EventPublisher, PermanentError
from voiceticket_common.call_context import CallContext, CallContextSealer, InvalidCallContext
from voiceticket_common.config_client import RuntimeConfig, UnknownLine
from voiceticket_common.logging import current_call_sid
from voiceticket_common.runtime_views import IngressView
from voiceticket_common.tracing import CALL_SID_ATTR, TENANT_ATTR, current_traceparent

from . import params
from .block_list import BlockList
from .public_url import PublicUrl
from .settings import IngressSettings
from .signature import Forbidden, Webhook, read_webhook

log = logging.getLogger(__name__)


class WebhookGate:
    """Shared by the routers; the publisher and config client live in ``app.state``."""

    def __init__(self, settings: IngressSettings) -> None:
        self.public = PublicUrl(settings.public_base_url, settings.trusted_proxies)
        self.sealer = CallContextSealer(settings.callback_context_key)

    @staticmethod
    def publisher(request: Request) -> EventPublisher:
        return request.app.state.publisher  # type: ignore[no-any-return]

    @staticmethod
    def config(request: Request) -> RuntimeConfig[IngressView]:
        return request.app.state.config  # type: ignore[no-any-return]

    @staticmethod
    def block_list(request: Request) -> BlockList:
        return request.app.state.block_list  # type: ignore[no-any-return]

    async def read(self, request: Request) -> Webhook:
        return await read_webhook(request, self.public.of(request))

    async def verify_for_line(self, request: Request, webhook: Webhook, number: str) -> IngressView:
        """Verify ``webhook`` with the Auth Token of the tenant that owns line ``number``, then
        its ``AccountSid`` against that tenant's account."""
        try:
            line = await self.config(request).line(number)
        except UnknownLine:
            raise Forbidden() from None
        self.verify(webhook, line)
        return line

    @staticmethod
    def verify(webhook: Webhook, line: IngressView) -> None:
        """Signature (the tenant's Auth Token), then ``AccountSid`` (the tenant's account)."""
        try:
            token = line.twilio_account().auth_token.get_secret_value()
        except PermanentError:
            log.error("the line's tenant has no Twilio auth token: webhooks cannot be verified")
            raise Forbidden() from None
        webhook.verify(token)
        params.check_account(webhook, line.tenant.twilio_account_sid)

    async def verify_with_context(
        self, request: Request, webhook: Webhook
    ) -> tuple[CallContext, IngressView]:
        """Open the sealed ``ctx`` of a callback URL we built, then verify with its tenant's token."""
        try:
            context = self.sealer.open(request.query_params.get("ctx", ""))
        except InvalidCallContext:
            raise Forbidden() from None
        return context, await self.verify_for_line(request, webhook, context.line_number)

    def callback_url(
        self, base: str, path: str, context: CallContext, extra: dict[str, str] | None = None
    ) -> str:
        """``base + path`` with the sealed context, ``extra`` parameters and the current trace:
        Twilio signs them all."""
        params = {"ctx": self.sealer.seal(context), **(extra or {})}
        traceparent = current_traceparent()
        if traceparent:
            params["tp"] = traceparent
        return f"{base}{path}?{urlencode(params)}"

    @staticmethod
    def annotate(call_sid: str, tenant_id: str) -> None:
        span = trace.get_current_span()
        span.set_attribute(CALL_SID_ATTR, call_sid)
        span.set_attribute(TENANT_ATTR, tenant_id)
        current_call_sid.set(call_sid)
