"""The embedded adapter of the bus port: a durable log in SQLite, for single-process deployments.

Same contract as the Kafka adapter: up to ``max_in_flight`` records of a group at once, a call's
records one after another in log order and different calls in parallel; a handler's outcome
events are stored before its input counts as consumed (here in the same transaction), and a
group's position only moves past records that are all done, so after a crash every record not
known to be done (running, or done after a slower earlier one) is delivered again. Failures are
retried per the policy and then dead-lettered. Writes are group-committed: the outcomes and
publishes that arrive while a transaction is being written share the next one (one synchronous
SQLite commit for many records), and each caller returns only once its rows are durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import aiosqlite

from ..events import Event
from ..metrics import consumer_tracked, dead_lettered
from ..sealing import CallErased, Sealer
from ..tracing import inject_headers, process_span, send_span
from . import envelope as wire
from .delivery import DeadLettered, drop_erased, follow_record, is_erased, open_with_retries, run_handler
from .inflight import KeyOrderedWorkers, OffsetTracker
from .port import (
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_MAX_IN_FLIGHT,
    FOLLOW_LOOKBACK_SECONDS,
    DeadLetter,
    FollowHandler,
    Handler,
    RetryPolicy,
    TopicRetention,
    dead_letter_topic,
)
from .progress import ConsumerProgress

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


Row = tuple[str, bytes | None, bytes | None, wire.Headers]
"""A record to append: topic, key, value, headers."""


@dataclass(frozen=True)
class _Stored:
    """A record read from the log for a consumer."""

    position: int
    topic: str
    key: bytes | None
    value: bytes | None
    headers: wire.Headers


@dataclass(eq=False)
class _GroupLog:
    """A consumer group's place in the log: what it took, and what is durably consumed."""

    group: str
    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    cursor: int = 0
    """The last position taken."""
    committed: int = 0
    """The position stored in ``bus_offsets`` (every record of the group up to it is done)."""
    last_poll: float | None = None
    """``time.monotonic()`` of the last read of the log (the probes' ``ConsumerProgress``)."""


@dataclass(frozen=True)
class _Write:
    rows: list[Row]
    done: asyncio.Future[None]
    consumed: tuple[_GroupLog, int] | None = None
    """The group and position of the record whose outcome ``rows`` are, consumed with them."""


def _dump_headers(headers: wire.Headers) -> str:
    return json.dumps([[k, v.decode("utf-8", "replace")] for k, v in headers])


def _load_headers(raw: str) -> wire.Headers:
    return [(k, v.encode()) for k, v in json.loads(raw)]


class EmbeddedEventBus:
    """Publishes to and consumes from a SQLite file.

    One consumer per group at a time: a second ``consume`` of a group (in this process) stands by
    until the first stops, then continues from the group's position.
    """

    def __init__(
        self,
        path: Path | str,
        source: str,
        poll_interval: float = 0.5,
        retention: TopicRetention = TopicRetention(),
        sealer: Sealer | None = None,
    ) -> None:
        self._sealer = sealer
        self._path = str(path)
        self._retention = retention
        self._source = source
        self._poll = poll_interval
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Condition()
        # Writes per topic: a consumer never sleeps through a write to its topics, and a write to
        # other topics does not send it to the database for nothing (every group reading after
        # every write kept the writer waiting for the lock under load).
        self._written: defaultdict[str, int] = defaultdict(int)
        self._writes: asyncio.Queue[_Write | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._members: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._consuming: dict[str, tuple[_GroupLog, KeyOrderedWorkers[_Stored]]] = {}
        self.transactions = 0
        """Write transactions committed (each one synchronous SQLite commit)."""

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
        self._writes = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="embedded-bus-writer")

    async def stop(self) -> None:
        writer, self._writer = self._writer, None  # refuses new writes
        if writer is not None:
            self._writes.put_nowait(None)  # what was queued before is still written
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def ensure_topics(
        self, event_types: Sequence[type[Event]], dead_letter_groups: Sequence[str] = ()
    ) -> None:
        """Topics are rows of one table here: nothing to provision."""

    @property
    def sealer(self) -> Sealer | None:
        """What seals and opens the personal fields of this bus's records (None: kept in clear)."""
        return self._sealer

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("bus not started")
        return self._db

    async def _record(self, event: Event, discriminator: str = "") -> Row:
        envelope = wire.envelope_for(event, self._source, discriminator)
        with send_span(event.topic(), event.call_sid, event.tenant_id, envelope.id):
            envelope.extra_headers.update(inject_headers())
            key, value, headers = await self._encode(envelope)
        return event.topic(), key, value, headers

    async def _encode(self, envelope: wire.Envelope) -> tuple[bytes, bytes, wire.Headers]:
        """The one place this adapter turns an event into a record (personal fields sealed)."""
        return await wire.seal_record(envelope, self._sealer)

    async def _decode(self, value: bytes | None, headers: wire.Headers, retry: RetryPolicy) -> wire.Envelope:
        """The one place this adapter turns a record into an event: MalformedMessage if not one,
        CallErased if its call's key is destroyed."""
        return await open_with_retries(value, headers, self._sealer, retry)

    async def publish(self, event: Event, *, discriminator: str = "") -> None:
        await self._write([await self._record(event, discriminator)])

    async def _write(self, rows: list[Row], consumed: tuple[_GroupLog, int] | None = None) -> None:
        """Append ``rows`` (and, with ``consumed``, count that record as done); returns once durable."""

        if self._writer is None:
            raise RuntimeError("bus not started")
        done = asyncio.get_running_loop().create_future()
        self._writes.put_nowait(_Write(rows, done, consumed))
        await asyncio.shield(done)  # a cancelled caller's rows are still written (or failed) as one

    async def _write_loop(self) -> None:
        """Write whatever is queued in one transaction, then the next batch (group commit)."""

        while True:
            first = await self._writes.get()
            batch = [] if first is None else [first]
            stopping = first is None
            while not stopping and not self._writes.empty():
                item = self._writes.get_nowait()
                stopping = item is None
                batch += [] if item is None else [item]
            if batch:
                try:
                    await self._commit_batch(batch)
                except Exception as exc:  # every writer of the batch gets the failure
                    for write in batch:
                        write.done.set_exception(exc)
                else:
                    for write in batch:
                        write.done.set_result(None)
                    for write in batch:
                        for row in write.rows:
                            self._written[row[0]] += 1
                    async with self._wakeup:
                        self._wakeup.notify_all()
            if stopping:
                return

    async def _commit_batch(self, batch: list[_Write]) -> None:
        done: defaultdict[_GroupLog, list[int]] = defaultdict(list)
        for write in batch:
            if write.consumed is not None:
                done[write.consumed[0]].append(write.consumed[1])
        moved: list[tuple[_GroupLog, int]] = []
        async with self._lock:
            await self.db.execute("BEGIN IMMEDIATE")
            try:
                await self.db.executemany(
                    "INSERT INTO bus_records (topic, key, value, headers) VALUES (?, ?, ?, ?)",
                    [(t, k, v, _dump_headers(h)) for write in batch for t, k, v, h in write.rows],
                )
                for log_, positions in done.items():
                    upto = log_.tracker.committable_with(positions)
                    if upto is not None and upto - 1 > log_.committed:
                        await self.db.execute(
                            "INSERT INTO bus_offsets (consumer_group, position) VALUES (?, ?) "
                            "ON CONFLICT (consumer_group) DO UPDATE SET position = excluded.position",
                            (log_.group, upto - 1),
                        )
                        moved.append((log_, upto - 1))
                await self.db.execute("COMMIT")
            except BaseException:
                await self.db.execute("ROLLBACK")
                raise
            self.transactions += 1
        for log_, positions in done.items():
            for position in positions:
                log_.tracker.done(position)
        for log_, position in moved:
            log_.committed = position

    async def _next(self, log_: _GroupLog, topics: Sequence[str], limit: int, idle: bool) -> list[_Stored]:
        """Up to ``limit`` records after the group's cursor. An idle group (nothing held) starts
        from its stored position instead, so a position an operator moved is honoured."""

        marks = ",".join("?" for _ in topics)
        async with self._lock:
            if idle:
                cursor = await self.db.execute(
                    "SELECT position FROM bus_offsets WHERE consumer_group = ?", (log_.group,)
                )
                row = await cursor.fetchone()
                await cursor.close()
                stored = row[0] if row else 0
                if stored != log_.cursor:
                    log_.tracker, log_.cursor, log_.committed = OffsetTracker(), stored, stored
            cursor = await self.db.execute(
                f"SELECT position, topic, key, value, headers FROM bus_records "  # noqa: S608 - placeholders only
                f"WHERE topic IN ({marks}) AND position > ? ORDER BY position LIMIT ?",
                (*topics, log_.cursor, limit),
            )
            rows = await cursor.fetchall()
            await cursor.close()  # an open statement would block the purge's checkpoint
        return [_Stored(r[0], r[1], r[2], r[3], _load_headers(r[4])) for r in rows]

    async def consume(
        self,
        group: str,
        event_types: Sequence[type[Event]],
        handler: Handler,
        retry: RetryPolicy = RetryPolicy(),
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        topics = [cls.topic() for cls in event_types]
        async with self._member(group):
            log.info("consuming", extra={"group": group, "topics": topics, "max_in_flight": max_in_flight})
            place = _GroupLog(group)

            async def work(stored: _Stored) -> None:
                rows = await self._process(group, stored, handler, retry)
                await self._write(rows, consumed=(place, stored.position))

            workers: KeyOrderedWorkers[_Stored] = KeyOrderedWorkers(work)
            self._consuming[group] = (place, workers)
            try:
                with consumer_tracked(group, partial(self.consumer_progress, group)):
                    await self._fetch_loop(place, topics, workers, max_in_flight)
            finally:
                self._consuming.pop(group, None)
                await workers.close(drain_seconds)

    async def follow(self, event_types: Sequence[type[Event]], handler: FollowHandler) -> None:
        """Every record of the topics, from the first one stored at most ``FOLLOW_LOOKBACK_SECONDS``
        before this call, without a group or a stored position (port.EventFollower)."""

        topics = [cls.topic() for cls in event_types]
        since = _stamp(datetime.now(UTC) - timedelta(seconds=FOLLOW_LOOKBACK_SECONDS))
        async with self._lock:
            cursor = await self.db.execute(
                "SELECT COALESCE(MAX(position), 0) FROM bus_records WHERE stored_at < ?", (since,)
            )
            row = await cursor.fetchone()
            await cursor.close()
        place = _GroupLog(group="", cursor=int(row[0]) if row else 0)
        log.info("following", extra={"topics": topics})
        while True:
            seen = self._writes_to(topics)
            records = await self._next(place, topics, 100, idle=False)
            for stored in records:
                place.cursor = stored.position
                await follow_record(stored.value, stored.headers, self._sealer, handler, stored.topic)
            if not records and seen == self._writes_to(topics):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll), self._wakeup:
                        await self._wakeup.wait_for(partial(self._written_since, topics, seen))

    def consumer_progress(self, group: str) -> ConsumerProgress | None:
        """``group``'s consumer, as the probes read it (``bus/progress.py``); the log has no
        partitions, and its lag is not counted (that would take a query of the log)."""
        if (running := self._consuming.get(group)) is None:
            return None
        place, workers = running
        return ConsumerProgress(
            settled=True,
            partitions=None,
            in_flight=workers.held,
            lag=0,
            last_poll=place.last_poll,
            last_progress=workers.last_progress,
        )

    @contextlib.asynccontextmanager
    async def _member(self, group: str) -> AsyncIterator[None]:
        """The group's one consumer slot; a second consumer of the group waits for it."""
        lock = self._members[group]
        if lock.locked():
            log.info("another consumer of the group is running; standing by", extra={"group": group})
        async with lock:
            yield

    async def _fetch_loop(
        self, place: _GroupLog, topics: Sequence[str], workers: KeyOrderedWorkers[_Stored], limit: int
    ) -> None:
        while True:
            if workers.failure is not None:
                raise workers.failure
            if workers.held >= limit:
                await workers.wait_until(
                    lambda: workers.held < limit or workers.failure is not None, self._poll
                )
                continue
            seen = self._writes_to(topics)
            records = await self._next(place, topics, limit - workers.held, idle=workers.held == 0)
            place.last_poll = time.monotonic()
            if not records:
                if seen != self._writes_to(topics):
                    continue
                with contextlib.suppress(TimeoutError):  # not wait_for: see KeyOrderedWorkers.wait_until
                    async with asyncio.timeout(self._poll), self._wakeup:
                        await self._wakeup.wait_for(partial(self._written_since, topics, seen))
                continue
            for stored in records:
                place.tracker.take(stored.position)
                place.cursor = stored.position
                key: Hashable = stored.key if stored.key is not None else ()
                workers.submit(key, stored)

    def _writes_to(self, topics: Sequence[str]) -> int:
        return sum(self._written[topic] for topic in topics)

    def _written_since(self, topics: Sequence[str], seen: int) -> bool:
        return self._writes_to(topics) != seen

    async def _process(self, group: str, stored: _Stored, handler: Handler, retry: RetryPolicy) -> list[Row]:
        topic, key, value, headers = stored.topic, stored.key, stored.value, stored.headers
        attrs = wire.header_map(headers)
        try:
            envelope = await self._decode(value, headers, retry)
        except CallErased:
            drop_erased(group, topic)
            return []
        except wire.MalformedMessage as exc:
            malformed = DeadLettered(reason=str(exc), error_type="MalformedMessage", attempts=1)
            return [self._dead_letter_record(group, topic, key, value, headers, malformed)]
        event = envelope.event
        with process_span(topic, group, attrs, event.call_sid, event.tenant_id, envelope.id):
            outcome = await run_handler(event, handler, retry)
            if isinstance(outcome, DeadLettered) and await is_erased(self._sealer, event):
                drop_erased(group, topic)
                return []
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
            try:
                return [await self._record(out) for out in outcome.events]
            except CallErased:  # erased while it was handled: nothing of it goes on
                drop_erased(group, topic)
                return []

    @staticmethod
    def _dead_letter_record(
        group: str,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: wire.Headers,
        outcome: DeadLettered,
    ) -> Row:
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
