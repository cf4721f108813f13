"""SERVER spans for incoming HTTP requests, continuing a trace carried in a query parameter.

Ingress writes the call's ``traceparent`` into the callback URLs it gives Twilio; Twilio signs those
URLs, so a later callback continues the call's trace and a forged value fails the signature check.
Span names use the route path only; queries (which carry sealed context) are never recorded.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import FastAPI
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .tracing import extract_context, tracer


class ServerSpanMiddleware:
    def __init__(self, app: ASGIApp, trace_query_param: str | None = None) -> None:
        self._app = app
        self._param = trace_query_param

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in ("/healthz", "/readyz", "/metrics"):
            await self._app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self._param:
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            if query.get(self._param):
                carrier = {"traceparent": query[self._param][0]}
        method = scope["method"]
        with tracer().start_as_current_span(
            f"{method} {scope['path']}",
            context=extract_context(carrier),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "http.route": scope["path"],
            },
        ) as span:

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self._app(scope, receive, send_wrapper)


def add_server_spans(app: FastAPI, trace_query_param: str | None = None) -> None:
    app.add_middleware(ServerSpanMiddleware, trace_query_param=trace_query_param)
