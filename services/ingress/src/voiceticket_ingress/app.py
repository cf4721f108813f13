"""The ingress application: Twilio's webhook target."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from voiceticket_common.bus import EventPublisher
from voiceticket_common.config_changes import invalidating
from voiceticket_common.config_client import RuntimeConfig, RuntimeConfigClient
from voiceticket_common.events import (
    CallCompleted,
    CallReceived,
    CallScreened,
    ConsentDeclined,
    NotificationDelivery,
    RecordingAbsent,
    RecordingCompleted,
    RequestStatusChanged,
    SmsReceived,
)
from voiceticket_common.health import web_checks
from voiceticket_common.httpserver import NO_NATIVE_TELEMETRY, add_server_spans
from voiceticket_common.metrics import add_metrics_route
from voiceticket_common.runtime_views import IngressView
from voiceticket_common.sealing import CallErased

from .block_list import BlockList, ConfigApiBlockList
from .gate import WebhookGate
from .jira_webhooks import JiraWebhooks
from .messaging import MessagingWebhooks
from .params import Malformed, WrongAccount
from .settings import IngressSettings
from .shedding import SheddingLimits, WebhookAdmission, WebhookShedding
from .signature import Forbidden, TooLarge
from .status_callbacks import StatusCallbacks
from .webhooks import CallWebhooks

log = logging.getLogger(__name__)

PUBLISHED = (
    CallReceived,
    CallScreened,
    RecordingCompleted,
    RecordingAbsent,
    ConsentDeclined,
    NotificationDelivery,
    CallCompleted,
    SmsReceived,
    RequestStatusChanged,
)


def create_app(
    settings: IngressSettings,
    publisher: EventPublisher,
    config: RuntimeConfig[IngressView] | None = None,
    block_list: BlockList | None = None,
) -> FastAPI:
    """Build the app on a bus the runner started (Kafka, or the embedded one). Without a config
    client, the config-api client is created in the lifespan (never at import time), and drops
    its cached views when the bus announces a change (``config.changed``); so does the block-list
    client (``block_list.py``), made there too unless one is given."""

    admission = WebhookAdmission(shedding_limits(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            watching = asyncio.create_task(admission.watch_loop(), name="ingress loop lag")
            stack.push_async_callback(_cancel, watching)
            app.state.publisher = publisher
            app.state.config = config
            app.state.block_list = block_list
            followed: list[ConfigApiBlockList] = []
            if block_list is None:
                blocks = ConfigApiBlockList(
                    settings.config_api_url,
                    settings.config_api_token,
                    settings.callback_context_key,
                    settings.config_cache_seconds,
                )
                stack.push_async_callback(blocks.aclose)
                app.state.block_list = blocks
                followed.append(blocks)
            if config is None:
                client = RuntimeConfigClient(
                    IngressView,
                    settings.config_api_url,
                    settings.config_api_token,
                    settings.config_cache_seconds,
                )
                stack.push_async_callback(client.aclose)
                # A bus that can be followed (Kafka, the embedded one): config.changed drops views.
                app.state.config_changes = await stack.enter_async_context(
                    invalidating(publisher, client, "ingress", *followed)
                )
                app.state.config = client
            app.state.ready = True
            try:
                yield
            finally:
                app.state.ready = False

    app = FastAPI(
        title="voiceticket ingress",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry=NO_NATIVE_TELEMETRY,  # our SERVER spans continue the signed `tp`; see httpserver.py
    )
    app.state.ready = False
    gate = WebhookGate(settings)
    app.include_router(CallWebhooks(gate).router)
    app.include_router(StatusCallbacks(gate).router)
    app.include_router(MessagingWebhooks(gate).router)
    app.include_router(JiraWebhooks(gate).router)
    add_server_spans(app, trace_query_param="tp", call_sid_field="CallSid")
    # Added last, so outermost: a shed webhook costs no span, body read or config lookup.
    app.add_middleware(WebhookShedding, admission=admission)
    add_metrics_route(app)

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, __: Forbidden) -> Response:
        return PlainTextResponse("invalid Twilio signature", status_code=403)

    @app.exception_handler(WrongAccount)
    async def wrong_account(_: Request, __: WrongAccount) -> Response:
        return PlainTextResponse("webhook is for another Twilio account than the line's", status_code=403)

    @app.exception_handler(Malformed)
    async def malformed_parameter(_: Request, exc: Malformed) -> Response:
        # the message names the parameter and the rule, never the value (it may be personal data)
        return PlainTextResponse(f"malformed webhook parameter: {exc}", status_code=400)

    @app.exception_handler(TooLarge)
    async def too_large(_: Request, __: TooLarge) -> Response:
        return PlainTextResponse("webhook body too large", status_code=413)

    @app.exception_handler(CallErased)
    async def erased_call(_: Request, __: CallErased) -> Response:
        # The call's data was erased (or its tenant removed) while it was still going on: nothing
        # of it is published again; Twilio gets an empty answer rather than a retry-worthy error.
        log.info("webhook of an erased call answered empty, nothing published")
        return Response('<?xml version="1.0" encoding="UTF-8"?><Response/>', media_type="text/xml")

    @app.exception_handler(ValidationError)
    async def malformed(_: Request, exc: ValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        return PlainTextResponse(f"malformed webhook parameters: {fields}", status_code=400)

    # Liveness: the process answers (a blocked event loop does not). Readiness: started (the
    # lifespan), then the broker behind the publisher and config-api, checked at most every
    # VOICETICKET_HEALTH_CACHE_SECONDS (voiceticket_common.health).
    probes = web_checks(settings, publisher, uses_config_api=config is None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request, response: Response) -> dict[str, Any]:
        if not request.app.state.ready:
            response.status_code = 503
            return {"status": "starting"}
        report = await probes.readiness()
        if not report.ok:
            response.status_code = 503
        return report.body("ready")

    return app


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def shedding_limits(settings: IngressSettings) -> SheddingLimits:
    return SheddingLimits(
        max_in_flight=settings.webhook_max_in_flight,
        max_queued=settings.webhook_max_queued,
        queue_seconds=settings.webhook_queue_seconds,
        retry_after_seconds=settings.webhook_retry_after_seconds,
    )
