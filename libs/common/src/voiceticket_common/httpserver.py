"""SERVER spans and RED metrics for incoming HTTP requests, continuing a trace carried in a query
parameter.

Ingress writes the call's ``traceparent`` into the callback URLs it gives Twilio; Twilio signs those
URLs, so a later callback continues the call's trace and a forged value fails the signature check.
Span names and labels use the route template only; concrete paths (config-api's carry phone
numbers) and queries (which carry sealed context) are never recorded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from urllib.parse import parse_qs

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import metrics
from .logging import current_call_sid
from .tracing import CALL_SID_ATTR, extract_context, start_span

UNTRACED_PATHS = ("/healthz", "/readyz", "/metrics")

NO_NATIVE_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}
"""Pass as ``FastAPI(telemetry=...)`` to every app we build.

FastAPI's own OpenTelemetry (0.165+, on as soon as a tracer provider is installed) starts a second
SERVER span per request that ignores the signed ``tp`` parameter (so each webhook would also be a
trace of its own), records ``url.path`` and ``url.query`` (sealed call context; config-api's paths
carry phone numbers), traces every health probe, and makes incoming ``baggage`` headers current.
The middleware below does the job with none of that."""
_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
_MAX_FORM_BYTES = 64 * 1024


class ServerSpanMiddleware:
    """One SERVER span and one RED observation per request.

    With ``call_sid_field``, the CallSid of a form-encoded body (Twilio's webhooks) goes on the
    span and into the log context as soon as the body has been read, so every webhook span and
    log line carries the call, whichever route it was and whether or not it verified.
    """

    def __init__(
        self, app: ASGIApp, trace_query_param: str | None = None, call_sid_field: str | None = None
    ) -> None:
        self._app = app
        self._param = trace_query_param
        self._call_sid_field = call_sid_field

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTRACED_PATHS:
            await self._app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self._param:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if query.get(self._param):
                carrier = {"traceparent": query[self._param][0]}
        method = scope["method"]
        started = time.perf_counter()
        status = 500
        with start_span(
            f"{method}",
            SpanKind.SERVER,
            {"http.request.method": method},
            context=extract_context(carrier),
        ) as span:
            body = bytearray()
            collect = self._call_sid_field is not None and _is_form(scope)

            async def receive_wrapper() -> Message:
                nonlocal collect
                message = await receive()
                if collect and message["type"] == "http.request":
                    body.extend(message.get("body", b""))
                    if len(body) > _MAX_FORM_BYTES:
                        collect = False
                    elif not message.get("more_body"):
                        collect = False
                        call_sid = _form_call_sid(bytes(body), str(self._call_sid_field))
                        if call_sid:
                            span.set_attribute(CALL_SID_ATTR, call_sid)
                            current_call_sid.set(call_sid)
                return message

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                        span.set_attribute("error.type", str(status))
                await send(message)

            try:
                await self._app(scope, receive_wrapper, send_wrapper)
            finally:
                # The router put the matched route into the scope; unmatched paths share one label.
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                metrics.HTTP_REQUESTS.labels(route, method, metrics.status_class(status)).inc()
                metrics.HTTP_DURATION.labels(route, method).observe(time.perf_counter() - started)


def _is_form(scope: Scope) -> bool:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", [])  # ASGI: raw (name, value) pairs
    for name, value in headers:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/x-www-form-urlencoded"
    return False


def _form_call_sid(body: bytes, field: str) -> str | None:
    values = parse_qs(body.decode("utf-8", "replace")).get(field)
    if values and _CALL_SID.fullmatch(values[0]):
        return values[0]
    return None


def add_server_spans(
    app: FastAPI, trace_query_param: str | None = None, call_sid_field: str | None = None
) -> None:
    app.add_middleware(
        ServerSpanMiddleware, trace_query_param=trace_query_param, call_sid_field=call_sid_field
    )
