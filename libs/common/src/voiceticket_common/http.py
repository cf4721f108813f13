"""Outbound HTTP to providers: egress allow-list, client spans, and failure classification."""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode

from . import metrics
from .bus.errors import PermanentError, TransientError
from .logging import current_tenant
from .tracing import start_span


class EgressDenied(PermanentError):
    """The application refused to call a host that is not a configured provider endpoint."""


class AllowListTransport(httpx.AsyncBaseTransport):
    """Refuses requests to hosts outside the allow-list and wraps each call in a client span."""

    def __init__(
        self, allowed_hosts: Sequence[str], provider: str, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._allowed = [h.lower() for h in allowed_hosts]
        self._provider = provider
        self._inner = inner or httpx.AsyncHTTPTransport(retries=0)

    def allows(self, host: str) -> bool:
        host = host.lower()
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self._allowed)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if not self.allows(host):
            metrics.provider_request(self._provider, "denied", current_tenant.get(), None)
            raise EgressDenied(f"egress to host {host!r} is not allowed for {self._provider}")
        # The path as a template, never the query: SIDs, issue keys and ids become placeholders,
        # so span names stay few and nothing shaped like a number is recorded.
        template = url_template(request.url.path)
        started = time.perf_counter()
        with start_span(
            f"{request.method} {template}",
            SpanKind.CLIENT,
            {
                "http.request.method": request.method,
                "url.template": template,
                "server.address": host,
                "server.port": request.url.port or (443 if request.url.scheme == "https" else 80),
                "voiceticket.provider": self._provider,
            },
        ) as span:
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.HTTPError:
                metrics.provider_request(
                    self._provider, "error", current_tenant.get(), time.perf_counter() - started
                )
                raise
            klass = metrics.provider_status_class(response.status_code)
            metrics.provider_request(
                self._provider, klass, current_tenant.get(), time.perf_counter() - started
            )
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_status(Status(StatusCode.ERROR, str(response.status_code)))
                span.set_attribute("error.type", str(response.status_code))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]+-\d+")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LONG_NUMBER = re.compile(r"\d{4,}")


def url_template(path: str) -> str:
    """``/2010-04-01/Accounts/AC…/Recordings/RE….wav`` → ``/2010-04-01/Accounts/{sid}/Recordings/{sid}.wav``.

    Twilio SIDs become ``{sid}``, Jira issue keys ``{issueKey}``, and any other segment with four
    or more digits in a row (numeric ids, and anything that could be a phone number) ``{id}``.
    API versions (``v1``, ``3``, ``2010-04-01``) stay.
    """

    segments = []
    for segment in path.split("/"):
        segment = _SID.sub("{sid}", segment)
        if _ISSUE_KEY.fullmatch(segment):
            segment = "{issueKey}"
        elif not _DATE.fullmatch(segment) and (_LONG_NUMBER.search(segment) or "@" in segment):
            segment = "{id}"
        segments.append(segment)
    return "/".join(segments)


def provider_client(provider: str, allowed_hosts: Sequence[str], timeout: float = 30.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=AllowListTransport(allowed_hosts, provider),
        timeout=httpx.Timeout(timeout, connect=10.0),
    )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header; ``headers`` is case-insensitive (httpx or httpx2 ``Headers``)."""

    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def raise_for_provider_status(response: httpx.Response, provider: str, what: str) -> None:
    """Turn an error response into Transient (429, 5xx, 408) or Permanent (other 4xx) errors.

    The message names the provider, operation and status plus the provider's own short error text
    (which describes fields, not our data) so that a dead-lettered record says what went wrong.
    """

    status = response.status_code
    if status < 400:
        return
    detail = _short_error(response)
    message = f"{provider} {what} failed with HTTP {status}" + (f": {detail}" if detail else "")
    if status in (408, 425, 429) or status >= 500:
        raise TransientError(message, retry_after=retry_after_seconds(response.headers))
    raise PermanentError(message)


def _short_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        for key in ("errorMessage", "message", "error"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message")
            if isinstance(value, str):
                return value[:300]
        errors = body.get("errors")
        if isinstance(errors, dict):
            return "; ".join(f"{k}: {v}" for k, v in errors.items())[:300]
    return ""


def transport_error(exc: httpx.HTTPError, provider: str, what: str) -> TransientError:
    return TransientError(f"{provider} {what} failed: {type(exc).__name__}")
