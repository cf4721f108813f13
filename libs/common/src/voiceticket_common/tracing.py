"""Tracing bootstrap and the one helper for context across Kafka and webhooks.

Every call is one trace: ingress starts it, the ``traceparent`` travels in Kafka headers (inject on
publish, extract on consume) and in the callback URLs ingress hands Twilio. Span names and
attributes follow the OpenTelemetry messaging conventions. Never put phone numbers, transcripts or
secrets into attributes; ``voiceticket.call_sid`` is the correlation key.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

TRACER_NAME = "voiceticket"
CALL_SID_ATTR = "voiceticket.call_sid"
TENANT_ATTR = "voiceticket.tenant_id"

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
    if exporter is None and (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush(5000)
        _provider.shutdown()


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


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
    with tracer().start_as_current_span(
        f"send {topic}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": message_id,
            **_call_attributes(call_sid, tenant_id),
        },
    ) as span:
        yield span


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
    with tracer().start_as_current_span(
        f"process {topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


def record_failure(span: Span, exc: BaseException, *, retrying: bool) -> None:
    """Record an error on a span without its message, which may quote personal data."""

    span.add_event(
        "exception",
        {"exception.type": type(exc).__name__, "voiceticket.retrying": retrying},
    )
    if not retrying:
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
