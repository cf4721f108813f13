"""The process shell shared by the consumer services: logging, tracing, bus, health and metrics
endpoints, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Response

from .bus import Handler, RetryPolicy
from .bus.kafka import KafkaEventBus
from .events import Event
from .httpserver import NO_NATIVE_TELEMETRY
from .logging import setup_logging
from .metrics import add_metrics_route
from .settings import ServiceSettings
from .tracing import setup_tracing, shutdown_tracing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    """What a consumer service reads, what it writes, and under which consumer group."""

    name: str
    group: str
    consumes: Sequence[type[Event]]
    produces: Sequence[type[Event]]
    retry: RetryPolicy = RetryPolicy()


HandlerFactory = Callable[[KafkaEventBus], AbstractAsyncContextManager[Handler]]


def health_app(ready: asyncio.Event) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, telemetry=NO_NATIVE_TELEMETRY)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, str]:
        if not ready.is_set():
            response.status_code = 503
            return {"status": "starting"}
        return {"status": "ready"}

    add_metrics_route(app)
    return app


async def serve_consumer(
    spec: ConsumerSpec, settings: ServiceSettings, handler_factory: HandlerFactory
) -> None:
    """Run one consumer service until SIGTERM/SIGINT, then shut down cleanly."""

    setup_logging(spec.name, settings.log_level)
    setup_tracing(spec.name)
    bus = KafkaEventBus(
        settings.kafka_bootstrap_servers,
        source=spec.name,
        partitions=settings.kafka_partitions,
        topic_namespace=settings.kafka_topic_namespace,
    )
    ready = asyncio.Event()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    health_task = None
    if settings.health_port:
        server = uvicorn.Server(
            uvicorn.Config(
                health_app(ready), host=settings.health_host, port=settings.health_port, log_level="warning"
            )
        )
        health_task = asyncio.create_task(server.serve())

    await bus.start()
    try:
        await bus.ensure_topics([cls.topic() for cls in (*spec.consumes, *spec.produces)])
        async with handler_factory(bus) as handler:
            consume = asyncio.create_task(bus.consume(spec.group, spec.consumes, handler, spec.retry))
            ready.set()
            log.info("service started", extra={"group": spec.group})
            stopper = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({consume, stopper}, return_when=asyncio.FIRST_COMPLETED)
            consume.cancel()
            stopper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consume
            if consume in done and consume.exception():
                raise consume.exception()  # type: ignore[misc]
    finally:
        await bus.stop()
        if health_task:
            health_task.cancel()
        shutdown_tracing()
        log.info("service stopped")


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(main())


@contextlib.asynccontextmanager
async def just(handler: Handler) -> AsyncIterator[Handler]:
    yield handler
