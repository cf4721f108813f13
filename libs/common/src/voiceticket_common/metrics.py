"""Prometheus metrics: RED for webhooks, handlers and providers, consumer lag, dead letters, usage
and estimated cost.

Every service exposes ``/metrics`` for a Prometheus scrape (ingress on its port, consumers on the
health port); see docs/operations.md for why pull and not OTLP. Labels are bounded by design:
route templates, consumer groups, providers, status classes, tenants, models. A phone number, a
CallSid or an issue key is never a label value: that would leak personal data into a system with
long retention and give every call its own time series.

Cost is an *estimate*: usage times a per-model price table (``VOICETICKET_PRICE_TABLE``), not an
invoice.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Response
from opentelemetry import baggage, trace
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from .bus.progress import ConsumerProgress

log = logging.getLogger(__name__)

PIPELINE_START_BAGGAGE = "voiceticket.t0"
"""W3C baggage entry: when the first event of a message chain was published (unix seconds)."""

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_CALL_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800)
_HANDLER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)


def _counter(name: str, labels: str, help_text: str) -> Counter:
    return Counter(name, help_text, labels.split())


def _gauge(name: str, labels: str, help_text: str) -> Gauge:
    return Gauge(name, help_text, labels.split())


def _histogram(name: str, labels: str, help_text: str, buckets: tuple[float, ...]) -> Histogram:
    return Histogram(name, help_text, labels.split(), buckets=buckets)


# -- webhooks and other HTTP servers -----------------------------------------------------------
HTTP_REQUESTS = _counter(
    "voiceticket_http_requests",
    "route method status_class",
    "HTTP requests served, by route template and status class.",
)
HTTP_DURATION = _histogram(
    "voiceticket_http_request_duration_seconds",
    "route method",
    "Time to answer an HTTP request, by route template.",
    buckets=_LATENCY_BUCKETS,
)

# -- consumers -------------------------------------------------------------------------------
MESSAGES = _counter(
    "voiceticket_handler_messages",
    "group outcome",
    (
        "Records a consumer group finished: processed (outcome events published), dead_lettered, or "
        "error (the record will be redelivered after a crash or restart)."
    ),
)
HANDLER_DURATION = _histogram(
    "voiceticket_handler_duration_seconds",
    "group outcome",
    "Time from taking a record to finishing it, retries included.",
    buckets=_HANDLER_BUCKETS,
)
HANDLER_FAILURES = _counter(
    "voiceticket_handler_failures",
    "group error_type retrying",
    "Failed handler attempts; retrying=true ones are tried again, retrying=false ones end in the DLQ.",
)
DEAD_LETTERS = _counter(
    "voiceticket_dead_letters", "group error_type", "Records sent to voiceticket.dlq.<group>."
)
CALLS_SCREENED = _counter(
    "voiceticket_calls_screened",
    "reason action tenant",
    "Calls screened, by reason (silence, tone, too_short, blocked_caller, robocall) and what the "
    "line made of them (request, screened_request, no_request): counted once, where screened.",
)
DROPPED = _counter(
    "voiceticket_events_dropped",
    "group reason",
    "Records a consumer group dropped unread: call_erased (the call's data key was destroyed by an "
    "erasure or its tenant's removal); group follower: a followed record (config.changed) that was "
    "unreadable or whose handler failed. Neither retried nor dead-lettered.",
)


class _ConsumerCollector(Collector):
    """Each running consumer's lag and work in flight, read from the consumer at scrape time
    (``ConsumerProgress``, no I/O), so the figures follow rebalances: a partition handed to
    another member leaves this member's series at once, and a consumer that stopped making
    progress shows its lag growing instead of its last commit's figure."""

    def __init__(self) -> None:
        self._sources: dict[str, Callable[[], ConsumerProgress | None]] = {}

    @contextmanager
    def tracked(self, group: str, source: Callable[[], ConsumerProgress | None]) -> Iterator[None]:
        self._sources[group] = source
        try:
            yield
        finally:
            if self._sources.get(group) is source:
                del self._sources[group]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "voiceticket_consumer_lag",
            "Records behind the end of each partition this member holds (last stable offset or "
            "high-water mark), counted from the offset it committed; in-flight records included.",
            labels=["group", "topic", "partition"],
        )
        in_flight = GaugeMetricFamily(
            "voiceticket_consumer_in_flight",
            "Records this member has taken and not finished (running or waiting behind their key).",
            labels=["group"],
        )
        partitions = GaugeMetricFamily(
            "voiceticket_consumer_partitions",
            "Partitions assigned to this member (Kafka only).",
            labels=["group"],
        )
        for group, source in list(self._sources.items()):
            try:
                progress = source()
            except Exception:  # a scrape never fails on one consumer's figures
                log.debug("consumer progress unavailable", extra={"group": group}, exc_info=True)
                continue
            if progress is None:
                continue
            in_flight.add_metric([group], progress.in_flight)
            if progress.partitions is not None:
                partitions.add_metric([group], progress.partitions)
            for (topic, partition), behind in sorted(progress.partition_lags.items()):
                lag.add_metric([group, topic, str(partition)], max(0, behind))
        yield from (lag, in_flight, partitions)


_CONSUMERS = _ConsumerCollector()
REGISTRY.register(_CONSUMERS)


def consumer_tracked(
    group: str, source: Callable[[], ConsumerProgress | None]
) -> AbstractContextManager[None]:
    """While open, ``/metrics`` reports ``group``'s lag, in-flight records and partitions as
    ``source`` (the bus's ``consumer_progress``) answers at each scrape."""
    return _CONSUMERS.tracked(group, source)


# -- providers (Twilio, OpenAI, Jira) ----------------------------------------------------------
PROVIDER_REQUESTS = _counter(
    "voiceticket_provider_requests",
    "provider status_class tenant",
    (
        "Outbound provider calls by status class: 2xx..5xx, with 4xx_auth (401, 403) and 4xx_rate_limited "
        "(429) apart from other 4xx; error (no response); denied (egress refused)."
    ),
)
PROVIDER_DURATION = _histogram(
    "voiceticket_provider_request_duration_seconds",
    "provider status_class",
    "Time to a provider's response headers.",
    buckets=_LATENCY_BUCKETS,
)
PROVIDER_SLOTS_IN_USE = _gauge(
    "voiceticket_provider_slots_in_use",
    "provider tenant",
    "Calls to the provider in flight for the tenant: at the tenant's provider_concurrency, more wait.",
)
PROVIDER_SLOTS_WAITING = _gauge(
    "voiceticket_provider_slots_waiting",
    "provider tenant",
    "Calls waiting for one of the tenant's provider_concurrency slots.",
)
PROVIDER_SLOT_WAIT = _histogram(
    "voiceticket_provider_slot_wait_seconds",
    "provider",
    "Time a provider call waited for a concurrency slot (0 when one was free).",
    buckets=(0.001, *_LATENCY_BUCKETS[1:], 120, 300),
)

# -- the product ------------------------------------------------------------------------------
CALL_TO_TICKET = _histogram(
    "voiceticket_call_to_ticket_seconds",
    "tenant",
    (
        "From the recording being reported (the caller hung up) to the JSM request existing with its "
        "call property and transcript comment."
    ),
    buckets=_CALL_BUCKETS,
)
OPENAI_TOKENS = _counter(
    "voiceticket_openai_tokens",
    "tenant model kind",
    "Language-model tokens used, by kind (prompt, completion).",
)
AUDIO_SECONDS = _counter(
    "voiceticket_audio_seconds", "tenant model", "Seconds of recorded audio sent to speech-to-text."
)
ESTIMATED_COST = _counter(
    "voiceticket_estimated_cost_usd",
    "tenant model",
    "Estimated provider spend in USD from usage and the configured price table (not an invoice).",
)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def provider_status_class(status: int) -> str:
    """Like ``status_class``, with the two 4xx that have runbooks of their own kept apart."""

    if status in (401, 403):
        return "4xx_auth"
    if status == 429:
        return "4xx_rate_limited"
    return status_class(status)


# -- the record being handled ------------------------------------------------------------------
@dataclass
class _Handling:
    group: str
    dead_lettered: bool = False
    retries: int = 0


_handling: contextvars.ContextVar[_Handling | None] = contextvars.ContextVar("handling", default=None)


@contextmanager
def handling(group: str) -> Iterator[_Handling]:
    """Count and time one record of ``group``; used by ``tracing.process_span``."""

    state = _Handling(group)
    token = _handling.set(state)
    started = time.perf_counter()
    outcome: str | None = "processed"
    try:
        yield state
    except asyncio.CancelledError:
        outcome = None  # shutting down: the record is redelivered and counted then
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        _handling.reset(token)
        if outcome is not None:
            if outcome == "processed" and state.dead_lettered:
                outcome = "dead_lettered"
            MESSAGES.labels(group, outcome).inc()
            HANDLER_DURATION.labels(group, outcome).observe(time.perf_counter() - started)


def handler_failure(error_type: str, *, retrying: bool) -> int:
    """Count a failed attempt of the record being handled; returns the retries so far."""

    state = _handling.get()
    if state is None:
        return 0
    HANDLER_FAILURES.labels(state.group, error_type, "true" if retrying else "false").inc()
    if retrying:
        state.retries += 1
    return state.retries


def call_screened(reason: str, action: str, tenant: str) -> None:
    """Count a screened call (by the service that screened it); also noted on the current span."""

    CALLS_SCREENED.labels(reason, action, tenant).inc()
    trace.get_current_span().add_event("voiceticket.screened", {"reason": reason, "action": action})


def dead_lettered(group: str, error_type: str) -> None:
    """Count a record sent to the group's dead-letter topic (called by the bus adapters)."""

    DEAD_LETTERS.labels(group, error_type).inc()
    state = _handling.get()
    if state is not None:
        state.dead_lettered = True
    span = trace.get_current_span()
    span.add_event("voiceticket.dead_lettered", {"error.type": error_type})
    span.set_status(trace.Status(trace.StatusCode.ERROR, error_type))


def dropped(group: str, reason: str) -> None:
    """Count a record dropped unread (called by the bus adapters)."""

    DROPPED.labels(group, reason).inc()
    trace.get_current_span().add_event("voiceticket.dropped", {"reason": reason})


# -- providers ---------------------------------------------------------------------------------
def provider_request(provider: str, klass: str, tenant: str | None, seconds: float | None) -> None:
    PROVIDER_REQUESTS.labels(provider, klass, tenant or "unknown").inc()
    if seconds is not None:
        PROVIDER_DURATION.labels(provider, klass).observe(seconds)


def provider_slots(provider: str, tenant: str, in_use: int, waiting: int) -> None:
    """The tenant's slots for ``provider`` in use and waited for (``provider_limits``)."""
    PROVIDER_SLOTS_IN_USE.labels(provider, tenant).set(in_use)
    PROVIDER_SLOTS_WAITING.labels(provider, tenant).set(waiting)


def provider_slot_wait(provider: str, seconds: float) -> None:
    PROVIDER_SLOT_WAIT.labels(provider).observe(seconds)


# -- call-to-ticket latency --------------------------------------------------------------------
def pipeline_started_at() -> float | None:
    """When this call's message chain started, from the W3C baggage carried in record headers."""

    raw = baggage.get_baggage(PIPELINE_START_BAGGAGE)
    try:
        return float(str(raw)) if raw is not None else None
    except ValueError:
        return None


def observe_call_to_ticket(tenant: str) -> None:
    started = pipeline_started_at()
    if started is not None:
        CALL_TO_TICKET.labels(tenant).observe(max(0.0, time.time() - started))


# -- usage and estimated cost ------------------------------------------------------------------
class ModelPrice(BaseModel):
    """List prices in USD; any field left out costs nothing."""

    input_per_million: float = 0.0
    output_per_million: float = 0.0
    per_audio_minute: float = 0.0


# Public list prices as of mid-2025, for estimates only: set VOICETICKET_PRICE_TABLE to what
# your contract says. Entries there replace these per model.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-4o-mini": ModelPrice(input_per_million=0.15, output_per_million=0.60),
    "gpt-4o": ModelPrice(input_per_million=2.50, output_per_million=10.00),
    "gpt-4.1-mini": ModelPrice(input_per_million=0.40, output_per_million=1.60),
    "gpt-4.1-nano": ModelPrice(input_per_million=0.10, output_per_million=0.40),
    "gpt-4o-mini-transcribe": ModelPrice(per_audio_minute=0.003),
    "gpt-4o-transcribe": ModelPrice(per_audio_minute=0.006),
    "whisper-1": ModelPrice(per_audio_minute=0.006),
}


class PriceSettings(BaseSettings):
    """``VOICETICKET_PRICE_TABLE``: JSON ``{"model": {"input_per_million": ..., ...}}``."""

    model_config = SettingsConfigDict(env_prefix="VOICETICKET_", env_file=".env", extra="ignore")

    price_table: dict[str, ModelPrice] = {}

    def prices(self) -> dict[str, ModelPrice]:
        return {**DEFAULT_PRICES, **self.price_table}


@functools.cache
def _prices() -> dict[str, ModelPrice]:
    # Read on first use, in the running service, never at import time.
    return PriceSettings().prices()


def _price(model: str) -> ModelPrice | None:
    price = _prices().get(model)
    if price is None:
        _warn_unpriced(model)
    return price


@functools.cache
def _warn_unpriced(model: str) -> None:
    log.warning("no price for model; its usage is not in the cost estimate", extra={"model": model})


def record_llm_usage(tenant: str, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Tokens and estimated cost of one completion; also noted on the current span.

    Returns the estimated cost in USD, or None when the model has no price.
    """

    OPENAI_TOKENS.labels(tenant, model, "prompt").inc(prompt_tokens)
    OPENAI_TOKENS.labels(tenant, model, "completion").inc(completion_tokens)
    price = _price(model)
    cost = None
    if price is not None:
        cost = (prompt_tokens * price.input_per_million + completion_tokens * price.output_per_million) / 1e6
        ESTIMATED_COST.labels(tenant, model).inc(cost)
    span = trace.get_current_span()
    span.set_attribute("gen_ai.request.model", model)
    span.set_attribute("gen_ai.usage.input_tokens", prompt_tokens)
    span.set_attribute("gen_ai.usage.output_tokens", completion_tokens)
    return cost


def record_transcription(tenant: str, model: str, audio_seconds: float) -> float | None:
    """Audio seconds and estimated cost of one transcription; also noted on the current span.

    Returns the estimated cost in USD, or None when the model has no price.
    """

    AUDIO_SECONDS.labels(tenant, model).inc(audio_seconds)
    price = _price(model)
    cost = None
    if price is not None:
        cost = audio_seconds / 60 * price.per_audio_minute
        ESTIMATED_COST.labels(tenant, model).inc(cost)
    span = trace.get_current_span()
    span.set_attribute("gen_ai.request.model", model)
    span.set_attribute("voiceticket.audio_seconds", audio_seconds)
    return cost


# -- the endpoint ------------------------------------------------------------------------------
async def _metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def add_metrics_route(app: FastAPI) -> None:
    """Serve the process's metrics at ``/metrics`` in the Prometheus text format."""

    disable_created_metrics()  # no ``*_created`` series: they double the count and nobody graphs them
    app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
