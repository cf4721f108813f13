"""Where the calls view's records come from: the embedded event log or Kafka, in a group of its own.

``RecordFeed`` is the port: ``run(apply)`` hands batches of records to ``apply`` until cancelled
and counts a batch as consumed only once ``apply`` returned (at-least-once; the projection is
idempotent). Both adapters read every ``voiceticket`` topic, event and dead-letter topics alike,
as raw records: nothing is opened or validated here. ``calls_view`` runs the feed beside
config-api (its lifespan), restarting it after a failure; ``replay`` delivers a dead letter again
through the deployment's bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI

from voiceticket_common.bus.port import DeadLetter, dead_letter_topic
from voiceticket_common.events.base import TOPIC_PREFIX
from voiceticket_common.sealing import Sealer

from .calls import FeedRecord, Projector, purge_calls
from .settings import Settings
from .vault import OpeningKeys

log = logging.getLogger("voiceticket_config_api.calls")

GROUP = "voiceticket-config-api-calls"
"""The calls view's consumer group (the embedded log's ``bus_offsets`` row, or Kafka's group)."""
BATCH = 200
Apply = Callable[[Sequence[FeedRecord]], Awaitable[None]]


class RecordFeed(Protocol):
    retry_seconds: float
    """How long ``follow`` waits before running the feed again after it failed."""

    async def run(self, apply: Apply) -> None:
        """Hand every record after the group's position to ``apply``, batch by batch, until cancelled."""


def _stamp(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return datetime.now(UTC)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class EmbeddedFeed:
    """The embedded bus's SQLite log, read by position; the position is the group's ``bus_offsets`` row."""

    def __init__(self, path: Path | str, *, poll_seconds: float = 0.5, group: str = GROUP) -> None:
        self._path = Path(path)
        self._poll = poll_seconds
        self._group = group
        self.retry_seconds = 1.0

    async def run(self, apply: Apply) -> None:
        if not self._path.exists():  # the runtime's bus makes it: ``follow`` tries again
            raise FileNotFoundError("the event log does not exist yet")
        db = await aiosqlite.connect(str(self._path), isolation_level=None)
        try:
            await db.execute("PRAGMA busy_timeout=10000")
            while True:
                try:
                    moved = await self._step(db, apply)
                except sqlite3.OperationalError as exc:  # the bus has not made its tables yet
                    if "no such table" not in str(exc):
                        raise
                    moved = False
                if not moved:
                    await asyncio.sleep(self._poll)
        finally:
            await db.close()

    async def _step(self, db: aiosqlite.Connection, apply: Apply) -> bool:
        cursor = await db.execute("SELECT position FROM bus_offsets WHERE consumer_group = ?", (self._group,))
        row = await cursor.fetchone()
        await cursor.close()
        position = int(row[0]) if row else 0
        cursor = await db.execute(
            "SELECT position, topic, key, value, headers, stored_at FROM bus_records "
            "WHERE position > ? ORDER BY position LIMIT ?",
            (position, BATCH),
        )
        rows = list(await cursor.fetchall())
        await cursor.close()  # an open statement would hold up the bus's checkpoint
        if not rows:
            return False
        await apply(
            [
                FeedRecord(
                    topic=str(topic),
                    key=None if key is None else bytes(key),
                    value=None if value is None else bytes(value),
                    headers=[(str(k), str(v).encode()) for k, v in json.loads(headers)],
                    stored_at=_stamp(str(stored_at)),
                    letter_id=str(pos),
                )
                for pos, topic, key, value, headers, stored_at in rows
            ]
        )
        await db.execute(
            "INSERT INTO bus_offsets (consumer_group, position) VALUES (?, ?) "
            "ON CONFLICT (consumer_group) DO UPDATE SET position = excluded.position",
            (self._group, int(rows[-1][0])),
        )
        return True


class KafkaFeed:
    """Every ``voiceticket`` topic of the cluster (in ``namespace``), new ones included, in group
    ``GROUP`` (``<namespace>.GROUP`` with a namespace)."""

    def __init__(self, bootstrap_servers: str, namespace: str = "", **client_options: Any) -> None:
        self._bootstrap = bootstrap_servers
        self._prefix = f"{namespace}." if namespace else ""
        self._options = client_options
        self.retry_seconds = 5.0
        # Environments sharing a cluster each follow their own topics in a group of their own.
        self.group = f"{namespace}.{GROUP}" if namespace else GROUP

    def _logical(self, topic: str) -> str:
        return topic[len(self._prefix) :] if topic.startswith(self._prefix) else topic

    def _record(self, record: Any) -> FeedRecord:
        topic = self._logical(record.topic)
        group = topic[len(dead_letter_topic("")) :]
        return FeedRecord(
            topic=topic,
            key=record.key,
            value=record.value,
            headers=list(record.headers or []),
            stored_at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
            letter_id=f"{group}:{record.partition}:{record.offset}",  # as KafkaEventBus names it
        )

    async def run(self, apply: Apply) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self.group,
            client_id="config-api-calls",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=5000,  # a new dead-letter topic is followed within seconds
            **self._options,
        )
        consumer.subscribe(pattern=f"^{re.escape(self._prefix + TOPIC_PREFIX)}\\..+")
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH)
                records = [self._record(r) for batch in batches.values() for r in batch]
                if records:
                    await apply(records)
                    await consumer.commit()
        finally:
            await consumer.stop()


def feed_from_settings(settings: Settings) -> RecordFeed | None:
    """The deployment's feed: the embedded log (``CONFIG_API_EVENT_LOG``), else Kafka
    (``CONFIG_API_KAFKA_BOOTSTRAP_SERVERS``), else none (the calls view stays empty)."""
    if not settings.calls_view:
        return None
    if settings.event_log is not None:
        return EmbeddedFeed(settings.event_log)
    if settings.kafka_bootstrap_servers:
        security = settings.kafka_security().client_kwargs()
        return KafkaFeed(settings.kafka_bootstrap_servers, settings.kafka_topic_namespace, **security)
    return None


async def follow(feed: RecordFeed, apply: Apply) -> None:
    """Run ``feed`` until cancelled; after a failure (the broker away), log it and start again
    (a warning when the failure is new, then quietly until it changes)."""
    last: str | None = None
    while True:
        try:
            await feed.run(apply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the view lags; config-api keeps answering
            level = logging.DEBUG if type(exc).__name__ == last else logging.WARNING
            last = type(exc).__name__
            log.log(level, "calls view feed stopped (%s); restarting in %.0f s", last, feed.retry_seconds)
        await asyncio.sleep(feed.retry_seconds)


@contextlib.asynccontextmanager
async def calls_view(app: FastAPI) -> AsyncIterator[None]:
    """config-api's lifespan part for the calls view: the feed and the projection, stopped on exit."""
    settings: Settings = app.state.settings
    feed = feed_from_settings(settings)
    sessions = app.state.sessions
    app.state.calls_projector = projector = Projector(
        sessions, Sealer(OpeningKeys(sessions, app.state.keyring))
    )
    if feed is None:
        yield
        return
    task = asyncio.create_task(follow(feed, projector.apply), name="calls-view")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Replayer(Protocol):
    async def replay(self, letter: DeadLetter) -> None: ...


def attach_bus(app: FastAPI, bus: Replayer) -> None:
    """Replays go through this running bus (the embedded runtime's) instead of one opened per replay."""
    app.state.calls_bus = bus


async def replay(app: FastAPI, letter: DeadLetter) -> None:
    """Deliver ``letter`` again through the deployment's bus; LookupError when it is gone,
    RuntimeError when config-api has no bus configured."""
    attached: Replayer | None = getattr(app.state, "calls_bus", None)
    if attached is not None:
        await attached.replay(letter)
        return
    settings: Settings = app.state.settings
    bus: Any
    if settings.event_log is not None:
        from voiceticket_common.bus.embedded import EmbeddedEventBus

        bus = EmbeddedEventBus(settings.event_log, "config-api")
    elif settings.kafka_bootstrap_servers:
        from voiceticket_common.bus.kafka import KafkaEventBus

        bus = KafkaEventBus(
            settings.kafka_bootstrap_servers,
            "config-api",
            topic_namespace=settings.kafka_topic_namespace,
            security=settings.kafka_security(),
        )
    else:
        raise RuntimeError(
            "config-api has no bus configured (CONFIG_API_EVENT_LOG or CONFIG_API_KAFKA_BOOTSTRAP_SERVERS)"
        )
    await bus.start()
    try:
        await bus.replay(letter)
    finally:
        await bus.stop()


async def purge_calls_view(app: FastAPI, now: datetime, *, dry_run: bool = False) -> int:
    """The calls view's retention (``CONFIG_API_CALLS_RETENTION_DAYS``) on a running app; how many calls."""
    sessions = getattr(app.state, "sessions", None)
    if sessions is None:
        return 0
    settings: Settings = app.state.settings
    return await purge_calls(sessions, now, retention_days=settings.calls_retention_days, dry_run=dry_run)
