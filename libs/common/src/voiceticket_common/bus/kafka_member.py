"""One member of a consumer group on Kafka: key-ordered concurrency over aiokafka.

Up to ``max_in_flight`` records are held at once (fetching is paused at the limit); records of one
key run one after another, different keys in parallel. Each partition commits only its highest
contiguous completed offset, and a record completes only after its outcome events were
acknowledged (or it was dead-lettered). When partitions are revoked (a rebalance) or the member
stops, the work it holds gets ``drain_seconds`` to finish and what completed is committed; what
is still running then is cancelled and handed back uncommitted, for the partition's next owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from .inflight import KeyOrderedWorkers, OffsetTracker
from .progress import ConsumerProgress

log = logging.getLogger(__name__)

FULL_WAIT_SECONDS = 1.0
"""At the in-flight limit, how long to wait for a free slot before polling again (paused polls
keep the member alive: aiokafka counts the time since the last poll against the poll interval)."""


@dataclass(frozen=True)
class _Taken:
    tp: TopicPartition
    tracker: OffsetTracker
    record: ConsumerRecord[bytes, bytes]


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, member: KafkaGroupMember) -> None:
        self._member = member

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._member.hand_back(set(revoked))

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        self._member.assigned()


class KafkaGroupMember:
    """Fetches with ``consumer``, runs ``process(record)`` per record, commits what completed.

    ``process`` handles one record completely (the handler, then publishing its outcome or
    dead-lettering it); when it returns, the record's offset may be committed.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        group: str,
        process: Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]],
        *,
        max_in_flight: int,
        drain_seconds: float,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._consumer = consumer
        self._group = group
        self._process = process
        self._limit = max_in_flight
        self._drain = drain_seconds
        self._workers: KeyOrderedWorkers[_Taken] = KeyOrderedWorkers(self._work)
        self._trackers: dict[TopicPartition, OffsetTracker] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._commit_lock = asyncio.Lock()
        self._commit_wanted = asyncio.Event()
        self._revoking: set[TopicPartition] = set()
        self._rebalanced = asyncio.Event()
        self._rebalanced.set()
        self._joined = False
        self._last_poll: float | None = None
        self.listener = _Rebalance(self)

    async def run(self) -> None:
        """Consume until cancelled or a record cannot be completed; then drain and commit."""

        committer = asyncio.create_task(self._commit_loop(), name=f"commit-{self._group}")
        try:
            while True:
                if self._workers.failure is not None:
                    raise self._workers.failure
                if committer.done():
                    committer.result()
                if self._revoking:  # a rebalance is handing our work back; fetch after it
                    await self._rebalanced.wait()
                    continue
                await self._poll()
        finally:
            await self._workers.close(self._drain)
            try:
                await self._commit(list(self._trackers))
            except KafkaError as exc:  # what completed is redelivered: at-least-once
                log.warning("final commit failed", extra={"group": self._group, "error": repr(exc)})
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await committer

    async def _poll(self) -> None:
        full = self._workers.held >= self._limit
        self._pause(full)
        if full:
            await self._workers.wait_until(
                lambda: self._workers.held < self._limit or self._workers.failure is not None,
                FULL_WAIT_SECONDS,
            )
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = await self._consumer.getmany(
            timeout_ms=0 if full else 500, max_records=max(1, self._limit - self._workers.held)
        )
        self._last_poll = time.monotonic()
        for tp, records in batches.items():
            for record in records:
                self._take(tp, record)

    def _pause(self, full: bool) -> None:
        """Pause every assigned partition at the in-flight limit, resume them below it (a new
        assignment starts unpaused, so this is checked on every poll)."""
        if full:
            self._consumer.pause(*(self._consumer.assignment() - self._consumer.paused()))
        elif paused := self._consumer.paused():
            self._consumer.resume(*paused)

    def _take(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        if tp in self._revoking:
            # Fetched while the partition is being handed back: its next owner reads it (from
            # the committed offset); should it come back to us, read it again.
            with contextlib.suppress(IllegalStateError):
                self._consumer.seek(tp, record.offset)
            return
        tracker = self._trackers.setdefault(tp, OffsetTracker())
        tracker.take(record.offset)
        key: Hashable = record.key if record.key is not None else (tp.topic, tp.partition)
        self._workers.submit(key, _Taken(tp, tracker, record))

    async def _work(self, taken: _Taken) -> None:
        await self._process(taken.record)
        taken.tracker.done(taken.record.offset)
        self._commit_wanted.set()

    async def _commit_loop(self) -> None:
        """Commit as records complete, one commit in flight at a time: completions that arrive
        meanwhile are committed together by the next one."""
        while True:
            await self._commit_wanted.wait()
            self._commit_wanted.clear()
            await self._commit(list(self._trackers))

    async def _commit(self, partitions: Collection[TopicPartition]) -> None:
        async with self._commit_lock:
            offsets: dict[TopicPartition, int] = {}
            for tp in partitions:
                tracker = self._trackers.get(tp)
                upto = tracker.committable if tracker is not None else None
                if upto is not None and upto > self._committed.get(tp, -1):
                    offsets[tp] = upto
            if not offsets:
                return
            try:
                await self._consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError):
                # The partitions moved to another member: it reads from the last commit, and
                # handlers are idempotent.
                log.warning("commit lost to a rebalance", extra={"group": self._group})
                return
            self._committed.update(offsets)

    async def hand_back(self, revoked: set[TopicPartition]) -> None:
        """Partitions are being revoked: let their records finish within the drain time, commit
        what completed, and cancel the rest (uncommitted, so the next owner gets them again)."""

        self._revoking |= revoked
        self._rebalanced.clear()

        def drained() -> bool:
            return all(t.pending == 0 for tp, t in self._trackers.items() if tp in revoked)

        if not await self._workers.wait_until(drained, self._drain):
            left = self._workers.abandon(lambda taken: taken.tp in revoked)
            log.warning(
                "records handed back unfinished on rebalance",
                extra={"group": self._group, "records": len(left), "drain_s": self._drain},
            )
        await self._commit(revoked)
        for tp in revoked:
            self._trackers.pop(tp, None)
            self._committed.pop(tp, None)

    def assigned(self) -> None:
        self._joined = True
        self._revoking.clear()
        self._rebalanced.set()

    def progress(self) -> ConsumerProgress:
        """What the probes read (no I/O): the assignment, the work held, and records waiting on
        the assigned partitions as the last fetches saw them (read_committed: up to the last
        stable offset)."""
        assignment = self._consumer.assignment()
        lag = 0
        behind: dict[tuple[str, int], int] = {}
        for tp in assignment:
            tracker = self._trackers.get(tp)
            end = self._consumer.last_stable_offset(tp)
            if end is None or end < 0:
                end = self._consumer.highwater(tp)
            if end is None or tracker is None:
                continue  # nothing fetched from it yet: its end is not known here
            if tracker.next_offset is not None:
                lag += max(0, end - tracker.next_offset)
            done_upto = self._committed.get(tp, tracker.committable)
            if done_upto is not None:
                behind[(tp.topic, tp.partition)] = max(0, end - done_upto)
        return ConsumerProgress(
            settled=self._joined and self._rebalanced.is_set(),
            partitions=len(assignment),
            in_flight=self._workers.held,
            lag=lag,
            last_poll=self._last_poll,
            last_progress=self._workers.last_progress,
            partition_lags=behind,
        )
