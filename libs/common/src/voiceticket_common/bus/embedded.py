"""The embedded adapter of the bus port: a durable log in SQLite, for single-process deployments.

Same contract as the Kafka adapter: events of a call keep their order, a handler's outcome events
are stored before its input counts as consumed (here in the same transaction), failures are retried
per the policy and then dead-lettered, and everything survives a restart: a record that was being
handled when the process died is delivered again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite

from ..events import Event
from ..metrics import dead_lettered
from ..tracing import inject_headers, process_span, send_span
from . import envelope as wire
from .delivery import DeadLettered, run_handler
from .port import DeadLetter, Handler, RetryPolicy, TopicRetention, dead_letter_topic

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bus_records (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB,
    headers TEXT NOT NULL,
    stored_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS bus_records_topic ON bus_records (topic, position);
CREATE TABLE IF NOT EXISTS bus_offsets (
    consumer_group TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class BusPurge:
    """What one purge removed."""

    events: int
    dead_letters: int

    def as_log(self) -> dict[str, int]:
        return {"events": self.events, "dead_letters": self.dead_letters}


def _stamp(moment: datetime) -> str:
    """``stored_at``'s format (UTC, millisecond ISO 8601 with Z), so text comparison orders by time."""

    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dump_headers(headers: wire.Headers) -> str:
    return json.dumps([[k, v.decode("utf-8", "replace")] for k, v in headers])


def _load_headers(raw: str) -> wire.Headers:
    return [(k, v.encode()) for k, v in json.loads(raw)]


class EmbeddedEventBus:
    """Publishes to and consumes from a SQLite file; one consumer loop per group."""

    def __init__(
        self,
        path: Path | str,
        source: str,
        poll_interval: float = 0.5,
        retention: TopicRetention = TopicRetention(),
    ) -> None:
        self._path = str(path)
        self._retention = retention
        self._source = source
        self._poll = poll_interval
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Condition()
        self._version = 0  # bumped on every write, so a consumer never sleeps through one

    async def start(self) -> None:
        if self._path != ":memory:":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self._path, isolation_level=None)
        # Before any table exists (a no-op on older files): freed pages can be handed back to the OS.
        await self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        # Deleted records are overwritten, not left readable in free pages (they hold personal data).
        await self._db.execute("PRAGMA secure_delete=ON")
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=FULL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.executescript(_SCHEMA)

    async def stop(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def ensure_topics(
        self, event_types: Sequence[type[Event]], dead_letter_groups: Sequence[str] = ()
    ) -> None:
        """Topics are rows of one table here: nothing to provision."""

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("bus not started")
        return self._db

    def _record(self, event: Event, discriminator: str = "") -> tuple[str, bytes, bytes, wire.Headers]:
        envelope = wire.envelope_for(event, self._source, discriminator)
        with send_span(event.topic(), event.call_sid, event.tenant_id, envelope.id):
            envelope.extra_headers.update(inject_headers())
            key, value, headers = wire.encode(envelope)
        return event.topic(), key, value, headers

    async def publish(self, event: Event, *, discriminator: str = "") -> None:
        await self._write([self._record(event, discriminator)])

    async def _write(
        self,
        records: list[tuple[str, bytes | None, bytes | None, wire.Headers]],
        commit: tuple[str, int] | None = None,
    ) -> None:
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                await self.db.executemany(
                    "INSERT INTO bus_records (topic, key, value, headers) VALUES (?, ?, ?, ?)",
                    [(t, k, v, _dump_headers(h)) for t, k, v, h in records],
                )
                if commit is not None:
                    await self.db.execute(
                        "INSERT INTO bus_offsets (consumer_group, position) VALUES (?, ?) "
                        "ON CONFLICT (consumer_group) DO UPDATE SET position = excluded.position",
                        commit,
                    )
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            self._version += 1
        async with self._wakeup:
            self._wakeup.notify_all()

    async def _next(
        self, group: str, topics: Sequence[str]
    ) -> tuple[int, str, bytes, bytes, wire.Headers] | None:
        marks = ",".join("?" for _ in topics)
        async with self._lock:
            cursor = await self.db.execute(
                f"SELECT position, topic, key, value, headers FROM bus_records "  # noqa: S608 - placeholders only
                f"WHERE topic IN ({marks}) AND position > "
                f"COALESCE((SELECT position FROM bus_offsets WHERE consumer_group = ?), 0) "
                f"ORDER BY position LIMIT 1",
                (*topics, group),
            )
            row = await cursor.fetchone()
            await cursor.close()  # an open statement would block the purge's checkpoint
        if row is None:
            return None
        return row[0], row[1], row[2], row[3], _load_headers(row[4])

    async def consume(
        self,
        group: str,
        event_types: Sequence[type[Event]],
        handler: Handler,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        topics = [cls.topic() for cls in event_types]
        log.info("consuming", extra={"group": group, "topics": topics})
        while True:
            seen = self._version
            record = await self._next(group, topics)
            if record is None:
                if seen != self._version:
                    continue
                async with self._wakeup:
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), self._poll)
                    except TimeoutError:
                        pass
                continue
            position, topic, key, value, headers = record
            outputs = await self._process(group, topic, key, value, headers, handler, retry)
            await self._write(outputs, commit=(group, position))

    async def _process(
        self,
        group: str,
        topic: str,
        key: bytes,
        value: bytes,
        headers: wire.Headers,
        handler: Handler,
        retry: RetryPolicy,
    ) -> list[tuple[str, bytes | None, bytes | None, wire.Headers]]:
        attrs = wire.header_map(headers)
        try:
            envelope: wire.Envelope = wire.decode(value, headers)
        except wire.MalformedMessage as exc:
            malformed = DeadLettered(reason=str(exc), error_type="MalformedMessage", attempts=1)
            return [self._dead_letter_record(group, topic, key, value, headers, malformed)]
        event = envelope.event
        with process_span(topic, group, attrs, event.call_sid, event.tenant_id, envelope.id):
            outcome = await run_handler(event, handler, retry)
            if isinstance(outcome, DeadLettered):
                log.error(
                    "message dead-lettered",
                    extra={
                        "group": group,
                        "topic": topic,
                        "error_type": outcome.error_type,
                        "error": outcome.reason,
                    },
                )
                return [self._dead_letter_record(group, topic, key, value, headers, outcome)]
            return [self._record(out) for out in outcome.events]

    @staticmethod
    def _dead_letter_record(
        group: str,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: wire.Headers,
        outcome: DeadLettered,
    ) -> tuple[str, bytes | None, bytes | None, wire.Headers]:
        dead_lettered(group, outcome.error_type)
        return dead_letter_topic(group), key, value, outcome.headers(headers, topic=topic, group=group)

    async def dead_letters(self, group: str) -> list[DeadLetter]:
        async with self._lock:
            cursor = await self.db.execute(
                "SELECT position, key, headers FROM bus_records WHERE topic = ? ORDER BY position",
                (dead_letter_topic(group),),
            )
            rows = await cursor.fetchall()
        return [wire.read_dead_letter(str(position), key, _load_headers(raw)) for position, key, raw in rows]

    async def purge(self, now: datetime | None = None, *, dry_run: bool = False) -> BusPurge:
        """Delete records past their retention (events, dead letters), overwriting them, and give the
        space back. Run on a schedule by the embedded runtime; safe while consumers run. With
        ``dry_run`` nothing is deleted: the report says what would be."""

        now = now or datetime.now(UTC)
        events_before = _stamp(now - self._retention.events)
        letters_before = _stamp(now - self._retention.dead_letters)
        dlq = f"{dead_letter_topic('')}%"
        if dry_run:
            async with self._lock:
                cursor = await self.db.execute(
                    "SELECT COALESCE(SUM(topic NOT LIKE ? AND stored_at < ?), 0), "
                    "COALESCE(SUM(topic LIKE ? AND stored_at < ?), 0) FROM bus_records",
                    (dlq, events_before, dlq, letters_before),
                )
                row = await cursor.fetchone()
            return BusPurge(events=int(row[0]) if row else 0, dead_letters=int(row[1]) if row else 0)
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                events = await self.db.execute(
                    "DELETE FROM bus_records WHERE topic NOT LIKE ? AND stored_at < ?", (dlq, events_before)
                )
                letters = await self.db.execute(
                    "DELETE FROM bus_records WHERE topic LIKE ? AND stored_at < ?", (dlq, letters_before)
                )
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            await self.db.execute("PRAGMA incremental_vacuum")
            # The WAL still holds the deleted pages' last images until it is checkpointed.
            try:
                await self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError as exc:  # busy: the next purge checkpoints
                log.warning("bus checkpoint after purge deferred", extra={"reason": str(exc)})
        report = BusPurge(events=events.rowcount, dead_letters=letters.rowcount)
        if report.events or report.dead_letters:
            log.info("bus records past retention deleted", extra=report.as_log())
        return report

    async def history(self, key: str) -> list[tuple[str, str]]:
        """(topic, stored-at) of every record with ``key`` (a CallSid), in order: a call's timeline."""

        async with self._lock:
            cursor = await self.db.execute(
                "SELECT topic, stored_at FROM bus_records WHERE key = ? ORDER BY position", (key.encode(),)
            )
            return [(topic, stored_at) for topic, stored_at in await cursor.fetchall()]

    async def replay(self, letter: DeadLetter) -> None:
        """Append a dead letter again to the topic it came from, with its original headers."""

        async with self._lock:
            cursor = await self.db.execute(
                "SELECT key, value, headers FROM bus_records WHERE position = ?", (int(letter.letter_id),)
            )
            row = await cursor.fetchone()
            await cursor.close()
        if row is None:
            raise LookupError(f"no dead letter {letter.letter_id}")
        key, value, raw = row
        await self._write([(letter.original_topic, key, value, wire.original_headers(_load_headers(raw)))])
