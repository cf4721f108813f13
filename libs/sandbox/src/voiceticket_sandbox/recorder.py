"""ASGI middleware shared by the stand-ins: validate, record, inject faults, reject invalid requests."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voiceticket_sandbox.contracts import SECURITY_ERROR_PREFIX, validate_request
from voiceticket_sandbox.forms import media_type, parse_multipart, parse_urlencoded
from voiceticket_sandbox.state import Fault, SandboxState

logger = logging.getLogger(__name__)

ErrorBody = Callable[[int, list[str], str], Any]
"""Provider-styled error JSON: (status, messages, request path) -> body."""

NOT_IN_SPEC_PREFIX = "not in the spec"


class SandboxMiddleware:
    """Records every non-control request with its validation result, then serves faults or errors.

    Order per request: validate against the spec, record (without the Authorization value), serve a
    matching fault if any, answer 401/404/400 if the request is invalid, else hand it to the routes.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        state: SandboxState,
        service: str,
        spec_name: str,
        error_body: ErrorBody,
        control_prefixes: tuple[str, ...] = ("/_sandbox/",),
    ) -> None:
        self.app = app
        self.state = state
        self.service = service
        self.spec_name = spec_name
        self.error_body = error_body
        self.control_prefixes = control_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.control_prefixes):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            # The client went away before its request was whole (a killed process): no provider
            # would see a request, so none is recorded, validated or answered.
            return
        method, path = scope["method"], scope["path"]
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
        errors = await self._validate(method, path, query, headers, content_type, body)
        record = _record(self.state, self.service, method, path, query, headers, content_type, body)
        record["valid"], record["errors"] = not errors, errors
        self.state.records.append(record)

        fault = self.state.take_fault(self.service, method, path)
        if fault is None:
            await self._answer(scope, receive, send, record, errors, body)
            return
        record["fault"] = fault.describe()
        fault.in_flight += 1
        fault.peak_in_flight = max(fault.peak_in_flight, fault.in_flight)
        try:
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.reset:
                record["status"] = None
                await reset_connection(scope)
                return
            if fault.status is not None:
                record["status"] = fault.status
                await self._send_fault(fault, path, send)
                return
            await self._answer(scope, receive, send, record, errors, body)
        finally:
            fault.in_flight -= 1

    async def _validate(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: list[tuple[str, str]],
        content_type: str | None,
        body: bytes,
    ) -> list[str]:
        if not self.state.validate_requests:
            return []
        try:
            return await asyncio.to_thread(
                validate_request, self.spec_name, method, path, query, headers, content_type, body
            )
        except Exception as exc:  # a validator crash must show up, not pass the request as valid
            logger.exception("spec validation crashed for %s %s", method, path)
            return [f"sandbox validator error: {exc!r}"]

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        record: dict[str, Any],
        errors: list[str],
        body: bytes,
    ) -> None:
        """The spec's error for an invalid request, else the stand-in's own routes."""
        path = scope["path"]
        if errors:
            status = _status_for(errors)
            record["status"] = status
            await _send_json(send, status, self.error_body(status, errors, path))
            return

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
            await send(message)

        await self.app(scope, _replay(body, receive), send_and_note)

    async def _send_fault(self, fault: Fault, path: str, send: Send) -> None:
        assert fault.status is not None
        headers = dict(fault.headers)
        if fault.retry_after is not None:
            seconds = fault.retry_after
            headers["Retry-After"] = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        if fault.body is None:
            body = self.error_body(fault.status, [f"injected fault {fault.status}"], path)
        else:
            body = fault.body
        await _send_json(send, fault.status, body, headers)


TRANSPORT_EXTENSION = "voiceticket.sandbox.transport"
"""Where ``expose_transport`` puts the connection's asyncio transport in the ASGI scope."""


def expose_transport(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` (outermost, as uvicorn calls it) so that a fault can reset its connection: the
    uvicorn request cycle's transport goes into ``scope["extensions"]``. ASGI gives an app no
    handle on its socket, and Starlette's middleware wraps ``send``, so it is taken here."""

    async def exposing(scope: Scope, receive: Receive, send: Send) -> None:
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if scope["type"] == "http" and transport is not None:
            scope.setdefault("extensions", {})[TRANSPORT_EXTENSION] = transport
        await app(scope, receive, send)

    return exposing


async def reset_connection(scope: Scope) -> None:
    """Abort the request's connection with SO_LINGER 0, so the kernel sends a RST, not a FIN."""
    transport = (scope.get("extensions") or {}).get(TRANSPORT_EXTENSION)
    if transport is None:
        raise RuntimeError("a reset fault needs the app served through expose_transport")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Let the server see the connection lost, so it does not try to answer on it.
    for _ in range(3):
        await asyncio.sleep(0)


def _status_for(errors: list[str]) -> int:
    if any(e.startswith(SECURITY_ERROR_PREFIX) for e in errors):
        return 401
    if any(e.startswith(NOT_IN_SPEC_PREFIX) for e in errors):
        return 404
    if any(e.startswith("sandbox validator error") for e in errors):
        return 500
    return 400


async def _read_body(receive: Receive) -> bytes | None:
    """The request's whole body; None when the client disconnected before sending all of it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # http.disconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_json(send: Send, status: int, body: Any, extra_headers: dict[str, str] | None = None) -> None:
    if isinstance(body, (bytes, str)):
        payload = body.encode() if isinstance(body, str) else body
        content_type = b"text/plain; charset=utf-8"
    else:
        payload = json.dumps(body).encode()
        content_type = b"application/json"
    headers = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra_headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _record(
    state: SandboxState,
    service: str,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    content_type: str | None,
    body: bytes,
) -> dict[str, Any]:
    kept_headers = {k.lower(): v for k, v in headers if k.lower() != "authorization"}
    authorization = next((v for k, v in headers if k.lower() == "authorization"), None)
    return {
        "id": state.next_record_id(),
        "service": service,
        "time": time.time(),
        "method": method,
        "path": path,
        "query": _group(query),
        "content_type": content_type,
        "headers": kept_headers,
        "auth": _auth_summary(authorization),
        "body": summarize_body(content_type, body),
        "status": None,
    }


def _group(pairs: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        grouped.setdefault(key, []).append(value)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def _auth_summary(authorization: str | None) -> dict[str, str] | None:
    """The scheme and, for basic auth, the user name; never the secret."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    summary = {"scheme": scheme.lower()}
    if scheme.lower() == "basic":
        try:
            summary["username"] = base64.b64decode(credentials).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            summary["username"] = "<undecodable>"
    return summary


def summarize_body(content_type: str | None, body: bytes) -> Any:
    """JSON as parsed, forms as fields, multipart as field values plus file names and sizes."""
    if not body:
        return None
    mime = media_type(content_type)
    try:
        if mime == "application/json" or mime.endswith("+json"):
            return json.loads(body)
        if mime == "application/x-www-form-urlencoded":
            return _group(parse_urlencoded(body))
        if mime == "multipart/form-data":
            parts = parse_multipart(body, content_type or "")
            return {
                "fields": _group([(p.name, p.data.decode()) for p in parts if not p.is_file]),
                "files": [
                    {
                        "field": p.name,
                        "filename": p.filename,
                        "content_type": p.content_type,
                        "size": len(p.data),
                    }
                    for p in parts
                    if p.is_file
                ],
            }
    except (ValueError, UnicodeDecodeError):
        pass
    return {"raw_size": len(body), "raw_start": body[:200].decode("utf-8", errors="replace")}
