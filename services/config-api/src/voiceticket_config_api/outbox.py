"""The outbox of configuration changes: each announced as ``config.changed``, at least once, in order.

A change to a tenant, a credential or a line writes a ``config_outbox`` row in the change's own
transaction (``record_change``): the change and its announcement commit together or not at all,
so no change goes unannounced and nothing is announced that did not happen. The relay
(``OutboxRelay``) publishes the rows not yet sent, oldest first, each one acknowledged by the bus
before it is marked sent; a failed publish is tried again, from that row, after a pause. A crash
between the publish and the mark publishes the row again after the restart (at least once; the
event's id is derived from its version, so the copy is recognisable). Sent rows are deleted
after ``keep``.

The row's id is the config version. Ids are taken in commit order: on Postgres the change's
transaction locks the outbox table until it commits (changes are rare, and this makes a later
version never visible before an earlier one); SQLite has one writer at a time anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import delete, select, text, update
from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voiceticket_common.bus import EventPublisher
from voiceticket_common.bus.kafka import KafkaEventBus
from voiceticket_common.events import ConfigChanged, ConfigChangeKind, Event

from .db import ConfigOutbox, Line, utcnow
from .settings import Settings

log = logging.getLogger(__name__)

WAKE = "config_outbox_wake"
"""The sessions' ``info`` key of the relay's wake-up: a committed change is relayed at once."""
RETRY_DELAYS_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Pauses after failed relay passes, one after another (the last one repeats)."""
PURGE_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Publishes:
    """What config-api publishes (the AsyncAPI document's participant)."""

    name: str
    produces: tuple[type[Event], ...]


SERVICE = Publishes(name="config-api", produces=(ConfigChanged,))


async def record_change(
    session: AsyncSession, kind: ConfigChangeKind, tenant_id: str, line_numbers: Iterable[str] = ()
) -> None:
    """Add the announcement of a change to ``session``'s transaction (committed with the change)."""
    if session.get_bind().dialect.name == "postgresql":
        # Held to the commit: versions are taken in commit order (the module docstring).
        await session.execute(text("LOCK TABLE config_outbox IN EXCLUSIVE MODE"))
    session.add(ConfigOutbox(tenant_id=tenant_id, kind=kind.value, line_numbers=sorted(set(line_numbers))))
    wake = session.info.get(WAKE)
    if callable(wake):
        orm_event.listen(session.sync_session, "after_commit", lambda _: wake(), once=True)


async def tenant_lines(session: AsyncSession, tenant_id: str) -> list[str]:
    """The numbers of ``tenant_id``'s lines (what a change of the tenant itself makes stale)."""
    return list((await session.scalars(select(Line.number).where(Line.tenant_id == tenant_id))).all())


def event_of(row: ConfigOutbox) -> ConfigChanged:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)  # SQLite
    return ConfigChanged.of(row.tenant_id, ConfigChangeKind(row.kind), row.line_numbers, row.id, created)


class RelayFailed(RuntimeError):
    """A publish failed; the rows before it were published and marked sent."""


class OutboxRelay:
    """Publishes the outbox's unsent rows in order, then marks them sent; deletes old sent rows."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: EventPublisher,
        *,
        poll_seconds: float = 0.5,
        keep: timedelta = timedelta(hours=24),
        batch: int = 100,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._prepare = prepare
        """Run before the first pass, until it succeeds (the bus provisions the topic)."""
        self._sessions = sessions
        self._publisher = publisher
        self._poll = poll_seconds
        self._keep = keep
        self._batch = batch
        self._clock = clock
        self._sleep = sleep
        self._wakeup = asyncio.Event()
        self.published = 0
        """Rows published so far (tests, logs)."""

    def wake(self) -> None:
        """Relay now (a change was committed in this process)."""
        self._wakeup.set()

    async def relay_once(self) -> int:
        """Publish every unsent row, oldest first, each marked sent once the bus acknowledged it;
        returns how many. Raises :class:`RelayFailed` at the first failed publish (what came
        before it stays sent; it and what follows are tried on the next pass, in order)."""
        total = 0
        while True:
            async with self._sessions() as session:
                rows = list(
                    (
                        await session.scalars(
                            select(ConfigOutbox)
                            .where(ConfigOutbox.sent_at.is_(None))
                            .order_by(ConfigOutbox.id)
                            .limit(self._batch)
                        )
                    ).all()
                )
            for row in rows:
                await self._publish(row)
                total += 1
            if len(rows) < self._batch:
                return total

    async def _publish(self, row: ConfigOutbox) -> None:
        try:
            await self._publisher.publish(event_of(row))
        except Exception as exc:
            raise RelayFailed(f"config.changed v{row.id} not published: {type(exc).__name__}") from exc
        async with self._sessions.begin() as session:
            await session.execute(
                update(ConfigOutbox).where(ConfigOutbox.id == row.id).values(sent_at=self._clock())
            )
        self.published += 1
        log.info("config change announced", extra={"config_version": row.id, "kind": row.kind})

    async def purge_sent(self) -> int:
        """Delete the rows sent longer than ``keep`` ago; returns how many."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(ConfigOutbox).where(ConfigOutbox.sent_at < self._clock() - self._keep)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def run(self) -> None:
        """Relay until cancelled: at once when woken, else every ``poll_seconds`` (changes made by
        another replica); after a failure, again after a growing pause."""
        failures = 0
        purged_at = float("-inf")
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            try:
                if self._prepare is not None:
                    await self._prepare()
                    self._prepare = None
                await self.relay_once()
                failures = 0
                if loop.time() - purged_at >= PURGE_EVERY_SECONDS:
                    purged_at = loop.time()
                    await self.purge_sent()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - retried: the rows stay unsent until published
                delay = RETRY_DELAYS_SECONDS[min(failures, len(RETRY_DELAYS_SECONDS) - 1)]
                failures += 1
                log.warning(
                    "config outbox relay failed; retrying", extra={"error": str(exc), "delay_s": delay}
                )
                await self._sleep(delay)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wakeup.wait()


@contextlib.asynccontextmanager
async def relaying(
    app: FastAPI, publisher: EventPublisher, settings: Settings | None = None
) -> AsyncIterator[OutboxRelay]:
    """Run ``app``'s outbox relay onto ``publisher`` while open (the lifespan must have run:
    the relay uses the app's sessions). The embedded runtime calls this with its bus."""
    settings = settings or app.state.settings
    sessions: async_sessionmaker[AsyncSession] = app.state.sessions
    ensure = getattr(publisher, "ensure_topics", None)

    async def provision() -> None:
        if ensure is not None:
            await ensure([ConfigChanged])

    relay = OutboxRelay(
        sessions,
        publisher,
        poll_seconds=settings.outbox_poll_seconds,
        keep=timedelta(hours=settings.outbox_keep_hours),
        prepare=provision,
    )
    previous = dict(sessions.kw.get("info") or {})
    sessions.configure(info={**previous, WAKE: relay.wake})
    task = asyncio.create_task(relay.run(), name="config outbox relay")
    app.state.outbox = relay
    try:
        yield relay
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sessions.configure(info=previous)


def kafka_publisher(settings: Settings) -> KafkaEventBus | None:
    """config-api's own Kafka producer for the outbox, as the settings describe the cluster
    (``CONFIG_API_KAFKA_*``); None without ``CONFIG_API_KAFKA_BOOTSTRAP_SERVERS`` (no relay)."""
    if not settings.kafka_bootstrap_servers:
        return None
    return KafkaEventBus(
        settings.kafka_bootstrap_servers,
        source="config-api",
        partitions=settings.kafka_partitions,
        replication_factor=settings.kafka_replication_factor,
        topic_namespace=settings.kafka_topic_namespace,
        security=settings.kafka_security(),
        min_insync_replicas=settings.kafka_min_insync_replicas,
        create_topics=settings.kafka_create_topics,
    )


@contextlib.asynccontextmanager
async def own_relay(app: FastAPI, settings: Settings) -> AsyncIterator[asyncio.Task[None] | None]:
    """In config-api's own process: its Kafka producer and the relay onto it (nothing without
    Kafka settings, or with ``CONFIG_API_OUTBOX_RELAY=false``). In the background: config-api
    serves while Kafka is out of reach, and the changes wait in the outbox."""
    bus = kafka_publisher(settings) if settings.outbox_relay else None
    if bus is None:
        yield None
        return
    task = asyncio.create_task(_relay_once_connected(app, bus, settings), name="config outbox producer")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await bus.stop()


async def _relay_once_connected(app: FastAPI, bus: KafkaEventBus, settings: Settings) -> None:
    failures = 0
    while True:
        try:
            await bus.start()
            break
        except Exception as exc:  # noqa: BLE001 - tried again; the changes wait in the outbox
            delay = RETRY_DELAYS_SECONDS[min(failures, len(RETRY_DELAYS_SECONDS) - 1)] * 2
            failures += 1
            log.warning(
                "config outbox: Kafka out of reach; trying again",
                extra={"error_type": type(exc).__name__, "delay_s": delay},
            )
            await bus.stop()
            await asyncio.sleep(delay)
    async with relaying(app, bus, settings):
        await asyncio.Event().wait()
