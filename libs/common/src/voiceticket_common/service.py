"""The service contract: each service describes itself once, and one runner runs it on any bus.

A consumer service exports a ``ConsumerService``: its consumer group, the typed handler of each
event class it consumes, what it produces, its settings class, its least-privilege config view,
and an async context manager that builds its adapters from settings (and closes them). ``consuming`` runs that description on an
``EventBus`` (the port): ``serve_consumer`` gives it a Kafka bus in its own process, the embedded
runtime gives every service the same SQLite bus. A web service (ingress) exports a ``WebService``:
its settings class, what it publishes, and an app factory that takes an ``EventPublisher``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import uvicorn
from fastapi import FastAPI, Response

from .bus import Dispatcher, EventBus, EventPublisher, RetryPolicy, Route, on
from .bus.kafka import KafkaEventBus
from .config_changes import invalidating
from .config_client import RuntimeConfig, RuntimeConfigClient
from .events import ConfigChanged, Event
from .health import Probes, consumer_checks
from .httpserver import NO_NATIVE_TELEMETRY
from .logging import setup_logging
from .metrics import add_metrics_route
from .runtime_views import RuntimeView
from .sealing import CallKeys, Sealer, VaultCallKeys
from .settings import HttpServiceSettings, ServiceSettings
from .tracing import setup_tracing, shutdown_tracing

__all__ = [
    "ConsumerService",
    "RuntimeConfig",
    "WebService",
    "consuming",
    "kafka_bus",
    "main",
    "on",
    "purge_command",
    "run_purge",
    "serve_consumer",
    "serve_web",
]

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)
W = TypeVar("W", bound=HttpServiceSettings)
V = TypeVar("V", bound=RuntimeView)
D = TypeVar("D")
B = TypeVar("B", bound=EventBus)


@dataclass(frozen=True)
class ConsumerService(Generic[S, V, D]):
    """One consumer service, described once for every way of running it:
    ``ConsumerService("analyzer", AnalyzerSettings, AnalyzerView, ROUTES, adapters)``."""

    name: str
    """The service's name: its log and trace name, its config-api role, its consumer group's suffix."""
    settings: type[S]
    view: type[V]
    """What this service may know of a line and its tenant (config-api serves exactly this)."""
    routes: Sequence[Route[Any, D]]
    """``on(EventClass, handler, produces=[...])`` per consumed event class; the handler gets the
    concrete event."""
    adapters: Callable[[S, RuntimeConfig[V]], AbstractAsyncContextManager[D]]
    """Builds the handlers' dependencies (adapters, ledgers, clients) around the runner's config
    client, and closes them on exit."""
    retry: RetryPolicy = RetryPolicy()
    purge: Callable[[S, D, datetime, bool], Awaitable[Mapping[str, int]]] | None = None
    """Retention of the service's own data: ``purge(settings, deps, now, dry_run)`` deletes what
    is past its retention (or, with ``dry_run``, counts it) and returns the counts per store. Run
    on a schedule: by the embedded runtime, or as ``python -m <module> purge`` (a CronJob)."""

    @property
    def group(self) -> str:
        return f"voiceticket-{self.name}"

    @property
    def consumes(self) -> list[type[Event]]:
        return [route.event_type for route in self.routes]

    @property
    def produces(self) -> list[type[Event]]:
        return list(dict.fromkeys(cls for route in self.routes for cls in route.produces))

    @property
    def follows(self) -> list[type[Event]]:
        """Read by every replica without a group: its cached config is dropped on a change."""
        return [ConfigChanged]


@dataclass(frozen=True)
class WebService(Generic[W]):
    """A service that Twilio (or another caller) reaches over HTTP and that publishes events."""

    name: str
    settings: type[W]
    produces: Sequence[type[Event]]
    app: Callable[[W, EventPublisher], FastAPI]

    @property
    def follows(self) -> list[type[Event]]:
        """Read by every replica without a group: its cached config is dropped on a change."""
        return [ConfigChanged]


Purger = Callable[[datetime, bool], Awaitable[Mapping[str, int]]]
"""A running service's purge: ``purger(now, dry_run)`` -> counts per store."""


@asynccontextmanager
async def consuming(
    service: ConsumerService[S, V, D],
    settings: S,
    bus: EventBus,
    purgers: dict[str, Purger] | None = None,
) -> AsyncIterator[asyncio.Task[None]]:
    """Consume on ``bus`` with ``service``'s handlers for as long as the context is open.

    Yields the consumer task (it ends only by failing); on exit the consumer stops (the events it
    is handling get ``settings.drain_seconds`` to finish), then the adapters and the config client
    close. It handles up to ``settings.max_in_flight`` events at once, one call's in order. The
    config client drops what ``config.changed`` announces, on a bus that can be followed
    (``config_changes.invalidating``). With ``purgers``, the service's purge (if it has one)
    is added under its name, on the running service's adapters, while the context is open.
    """

    await bus.ensure_topics([*service.consumes, *service.produces], [service.group])
    config = RuntimeConfigClient(
        service.view, settings.config_api_url, settings.config_api_token, settings.config_cache_seconds
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(config.aclose)
        await stack.enter_async_context(invalidating(bus, config, service.name))
        deps = await stack.enter_async_context(service.adapters(settings, config))
        if purgers is not None and service.purge is not None:
            purge = service.purge
            purgers[service.name] = lambda now, dry_run: purge(settings, deps, now, dry_run)
            stack.callback(purgers.pop, service.name, None)
        dispatcher = Dispatcher(service.routes, deps)
        task = asyncio.create_task(
            bus.consume(
                service.group,
                service.consumes,
                dispatcher,
                service.retry,
                max_in_flight=settings.max_in_flight,
                drain_seconds=settings.drain_seconds,
            ),
            name=service.name,
        )
        try:
            yield task
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@asynccontextmanager
async def purging(
    service: ConsumerService[S, V, D], settings: S, purgers: dict[str, Purger]
) -> AsyncIterator[None]:
    """``service``'s adapters open, not consuming, its purge under its name in ``purgers``: what
    a one-off purge of a service's data (``voiceticket purge``) runs on."""

    if service.purge is None:
        yield
        return
    purge = service.purge
    config = RuntimeConfigClient(
        service.view, settings.config_api_url, settings.config_api_token, settings.config_cache_seconds
    )
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(config.aclose)
        deps = await stack.enter_async_context(service.adapters(settings, config))
        purgers[service.name] = lambda now, dry_run: purge(settings, deps, now, dry_run)
        stack.callback(purgers.pop, service.name, None)
        yield


def kafka_bus(settings: ServiceSettings, source: str, keys: CallKeys | None = None) -> KafkaEventBus:
    """The Kafka adapter of the bus port, as the settings describe the cluster; with ``keys``,
    the personal fields of every record it writes are sealed under the call's key."""

    return KafkaEventBus(
        settings.kafka_bootstrap_servers,
        source=source,
        partitions=settings.kafka_partitions,
        replication_factor=settings.kafka_replication_factor,
        topic_namespace=settings.kafka_topic_namespace,
        retention=settings.topic_retention(),
        sealer=Sealer(keys) if keys is not None else None,
        security=settings.kafka_security(),
        min_insync_replicas=settings.kafka_min_insync_replicas,
        create_topics=settings.kafka_create_topics,
    )


@asynccontextmanager
async def vault_keys(settings: ServiceSettings, *, creates: bool = False) -> AsyncIterator[VaultCallKeys]:
    """This service's access to the call data keys in config-api's vault (its own token)."""

    keys = VaultCallKeys(settings.config_api_url, settings.config_api_token, creates=creates)
    try:
        yield keys
    finally:
        await keys.aclose()


def purge_report(store: str, counts: Mapping[str, int], *, dry_run: bool) -> dict[str, Any]:
    """What a purge removed, as logged and printed: counts per store, never personal data."""
    return {"event": "retention purge", "store": store, "dry_run": dry_run, "removed": dict(counts)}


async def run_purge(
    service: ConsumerService[S, V, D],
    settings: S | None = None,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One purge of ``service``'s own data (no bus): the ``purge`` command of its module."""

    if service.purge is None:
        raise RuntimeError(f"{service.name} keeps no data of its own to purge")
    settings = settings or service.settings()
    config = RuntimeConfigClient(
        service.view, settings.config_api_url, settings.config_api_token, settings.config_cache_seconds
    )
    try:
        async with service.adapters(settings, config) as deps:
            counts = await service.purge(settings, deps, now or datetime.now(UTC), dry_run)
    finally:
        await config.aclose()
    report = purge_report(service.name, counts, dry_run=dry_run)
    log.info("retention purge", extra={"store": service.name, "dry_run": dry_run, **dict(counts)})
    return report


def purge_command(service: ConsumerService[S, V, D], argv: Sequence[str]) -> int:
    """``python -m <module> purge [--dry-run]``: purge once, print the report as JSON, exit 0."""

    settings = service.settings()
    setup_logging(service.name, settings.log_level)
    unknown = [a for a in argv if a != "--dry-run"]
    if unknown:
        print(f"usage: purge [--dry-run] (not {' '.join(unknown)})", file=sys.stderr)
        return 2
    report = asyncio.run(run_purge(service, settings, dry_run="--dry-run" in argv))
    print(json.dumps(report, sort_keys=True))
    return 0


def main(service: ConsumerService[S, V, D], argv: Sequence[str] | None = None) -> None:
    """A consumer's ``python -m <module>``: serve it; ``python -m <module> purge [--dry-run]``: the
    retention purge, once (a CronJob). ``argv``: the arguments after the module (``sys.argv[1:]``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["purge"]:
        raise SystemExit(purge_command(service, args[1:]))
    asyncio.run(serve_consumer(service))


@asynccontextmanager
async def started(bus: B) -> AsyncIterator[B]:
    await bus.start()
    try:
        yield bus
    finally:
        await bus.stop()


def health_app(probes: Probes) -> FastAPI:
    """A consumer's probes and metrics: ``/healthz`` (liveness: 503 when the consumer is stuck),
    ``/readyz`` (503 until start-up is done, then while a check fails), ``/metrics``."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, telemetry=NO_NATIVE_TELEMETRY)

    @app.get("/healthz")
    async def healthz(response: Response) -> dict[str, Any]:
        report = await probes.liveness()
        if not report.ok:
            response.status_code = 503
        return report.body("ok")

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, Any]:
        if not probes.started:
            response.status_code = 503
            return {"status": "starting"}
        report = await probes.readiness()
        if not report.ok:
            response.status_code = 503
        return report.body("ready")

    add_metrics_route(app)
    return app


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_consumer(service: ConsumerService[S, V, D], settings: S | None = None) -> None:
    """Run one consumer service in this process on Kafka until SIGTERM/SIGINT, then shut down cleanly."""

    settings = settings or service.settings()
    setup_logging(service.name, settings.log_level)
    setup_tracing(service.name)
    probes = Probes()
    stop = _stop_on_signals()
    health_task, health_server = None, None
    if settings.health_port:
        config = uvicorn.Config(
            health_app(probes), host=settings.health_host, port=settings.health_port, log_level="warning"
        )
        health_server = uvicorn.Server(config)
        health_task = asyncio.create_task(health_server.serve())
    try:
        async with (
            vault_keys(settings) as keys,
            started(kafka_bus(settings, service.name, keys)) as bus,
            consuming(service, settings, bus) as consume,
            consumer_checks(probes, settings, bus, service.group),
        ):
            probes.started = True
            log.info("service started", extra={"group": service.group})
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({consume, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if consume.done() and not consume.cancelled() and (error := consume.exception()):
                raise error
    finally:
        if health_task and health_server:
            # Asked to exit, not cancelled: a cancelled uvicorn prints its lifespan's
            # CancelledError traceback to the log at every shutdown.
            health_server.should_exit = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(health_task), 5)
            health_task.cancel()
        shutdown_tracing()
        log.info("service stopped")


async def serve_web(service: WebService[W], settings: W | None = None) -> None:
    """Run a web service in this process, publishing to Kafka, until SIGTERM/SIGINT."""

    settings = settings or service.settings()
    setup_logging(service.name, settings.log_level)
    setup_tracing(service.name)
    try:
        # A web service starts calls: it may create a call's data key (ingress).
        async with (
            vault_keys(settings, creates=True) as keys,
            started(kafka_bus(settings, service.name, keys)) as bus,
        ):
            await bus.ensure_topics(service.produces)
            config = uvicorn.Config(
                service.app(settings, bus),
                host=settings.host,
                port=settings.port,
                access_log=False,  # URLs carry sealed call context and trace ids; the app logs what matters
                log_config=None,
                proxy_headers=False,  # the app decides which peers' forwarded headers it trusts
            )
            await uvicorn.Server(config).serve()
    finally:
        shutdown_tracing()
