"""Tracing bootstrap and the one helper for context across Kafka and webhooks.

Every call is one trace: ingress starts it, the ``traceparent`` travels in Kafka headers (inject on
publish, extract on consume) and in the callback URLs ingress hands Twilio. Span names and
attributes follow the OpenTelemetry messaging conventions. Never put phone numbers, transcripts or
secrets into attributes; ``voiceticket.call_sid`` is the correlation key.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

from . import metrics
from .logging import current_call_sid, current_tenant

TRACER_NAME = "voiceticket"
CALL_SID_ATTR = "voiceticket.call_sid"
TENANT_ATTR = "voiceticket.tenant_id"
ISSUE_KEY_ATTR = "voiceticket.issue_key"
"""The JSM request key, on the spans that create or notify about it: a key finds the trace too."""

_provider: TracerProvider | None = None


def setup_tracing(service_name: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """Install the global tracer provider once per process.

    With no exporter given, spans go to OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the
    traces-specific variable) is set, and nowhere otherwise.
    """

    global _provider
    if _provider is not None:
        if exporter is not None:
            _provider.add_span_processor(BatchSpanProcessor(exporter))
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(CallAttributesProcessor())
    if exporter is None and (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    if exporter is not None:
        # Half a second unless OTEL_BSP_SCHEDULE_DELAY says otherwise: a call's trace shows up
        # in Jaeger while the SRE is still looking at the ticket.
        delay = None if os.environ.get("OTEL_BSP_SCHEDULE_DELAY") else 500
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush(5000)
        _provider.shutdown()


class CallAttributesProcessor(SpanProcessor):
    """Puts ``voiceticket.call_sid`` and the tenant on every span started while a call is handled.

    The call comes from the context (set by ingress's webhooks and around each consumed record)
    or from the parent span, so client spans of provider calls carry it without knowing calls.
    """

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        present = getattr(span, "attributes", None) or {}
        parent = trace.get_current_span(parent_context)
        inherited = parent.attributes if isinstance(parent, ReadableSpan) and parent.attributes else {}
        for attr, var in ((CALL_SID_ATTR, current_call_sid), (TENANT_ATTR, current_tenant)):
            if attr in present:
                continue
            value = var.get() or inherited.get(attr)
            if value:
                span.set_attribute(attr, value)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


@contextmanager
def start_span(
    name: str,
    kind: SpanKind,
    attributes: Attributes = None,
    context: otel_context.Context | None = None,
) -> Iterator[Span]:
    """A current span that records failures by exception type only.

    The SDK's default would record the exception message and stack trace, and messages may quote
    personal data (pydantic errors quote inputs, provider errors quote fields).
    """

    with tracer().start_as_current_span(
        name,
        context=context,
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            span.add_event("exception", {"exception.type": type(exc).__name__})
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise


def tag_issue_key(issue_key: str) -> None:
    """Note the JSM request key on the current span, so a search by key finds the call's trace."""

    trace.get_current_span().set_attribute(ISSUE_KEY_ATTR, issue_key)


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def inject_headers() -> dict[str, str]:
    """W3C trace context of the current span, as string headers."""

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_context(carrier: Mapping[str, str]) -> otel_context.Context:
    return propagate.extract(dict(carrier))


def _call_attributes(call_sid: str | None, tenant_id: str | None) -> dict[str, str]:
    attrs = {}
    if call_sid:
        attrs[CALL_SID_ATTR] = call_sid
    if tenant_id:
        attrs[TENANT_ATTR] = tenant_id
    return attrs


@contextmanager
def send_span(topic: str, call_sid: str, tenant_id: str, message_id: str) -> Iterator[Span]:
    """A PRODUCER span; headers injected inside it carry its context and the chain's start time.

    The first publish of a message chain records its start in W3C baggage
    (``voiceticket.t0``); every later hop carries it on, so the last consumer can measure the
    whole chain (``voiceticket_call_to_ticket_seconds``) without a field in the events.
    """

    token = None
    if baggage.get_baggage(metrics.PIPELINE_START_BAGGAGE) is None:
        token = otel_context.attach(baggage.set_baggage(metrics.PIPELINE_START_BAGGAGE, f"{time.time():.3f}"))
    try:
        with start_span(
            f"send {topic}",
            SpanKind.PRODUCER,
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": topic,
                "messaging.message.id": message_id,
                **_call_attributes(call_sid, tenant_id),
            },
        ) as span:
            yield span
    finally:
        if token is not None:
            otel_context.detach(token)


@contextmanager
def process_span(
    topic: str,
    group: str,
    headers: Mapping[str, str],
    call_sid: str | None,
    tenant_id: str | None,
    message_id: str | None,
    partition: int | None = None,
    offset: int | None = None,
) -> Iterator[Span]:
    """A CONSUMER span continuing the producer's trace (parent from the record's headers)."""

    parent = extract_context(headers)
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group,
        **_call_attributes(call_sid, tenant_id),
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    if partition is not None:
        attributes["messaging.destination.partition.id"] = str(partition)
    if offset is not None:
        attributes["messaging.kafka.offset"] = offset
    # The extracted context becomes current (not only the span's parent) so that its baggage
    # travels on with the events this record produces.
    token = otel_context.attach(parent)
    call_token = current_call_sid.set(call_sid)
    tenant_token = current_tenant.set(tenant_id)
    try:
        with (
            start_span(f"process {topic}", SpanKind.CONSUMER, attributes) as span,
            metrics.handling(group) as handling,
        ):
            try:
                yield span
            finally:
                if handling.retries:
                    span.set_attribute("voiceticket.retries", handling.retries)
    finally:
        current_tenant.reset(tenant_token)
        current_call_sid.reset(call_token)
        otel_context.detach(token)


def record_failure(span: Span, exc: BaseException, *, retrying: bool) -> None:
    """Record an error on a span without its message, which may quote personal data."""

    metrics.handler_failure(type(exc).__name__, retrying=retrying)
    span.add_event(
        "exception",
        {"exception.type": type(exc).__name__, "voiceticket.retrying": retrying},
    )
    if not retrying:
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
