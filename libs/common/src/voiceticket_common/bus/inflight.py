"""Key-ordered concurrency, shared by both bus adapters: which records may run, which offsets may
be committed.

``KeyOrderedWorkers`` runs the records of one key (a CallSid) strictly one after another and the
records of different keys concurrently, and counts what it holds for the adapter's in-flight
limit. ``OffsetTracker`` says, for one partition (Kafka) or one group's log (embedded), the offset
below which every record taken is done: records complete out of order, and only that offset may
be committed, so a crash redelivers every record not known to be done (as Confluent's Parallel
Consumer and Spring Kafka's out-of-order acknowledgements do). Neither does any I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine, Hashable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class OffsetTracker:
    """The offsets of one partition taken for processing, and which of them are done.

    Offsets are taken in increasing order but need not be contiguous (Kafka's transaction
    markers, the embedded log's records of other topics); ``committable`` follows Kafka's
    convention, the next offset to read.
    """

    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._next: int | None = None

    def take(self, offset: int) -> None:
        if self._next is not None and offset < self._next:
            raise ValueError(f"offset {offset} taken after {self._next - 1}")
        self._pending.add(offset)
        self._next = offset + 1

    def done(self, offset: int) -> None:
        self._pending.discard(offset)

    @property
    def next_offset(self) -> int | None:
        """The offset after the last one taken (None before anything was taken)."""
        return self._next

    @property
    def pending(self) -> int:
        """How many offsets taken are not done yet."""
        return len(self._pending)

    @property
    def committable(self) -> int | None:
        """The lowest offset not done (every offset taken below it is), or the one after the last
        taken; None before anything was taken."""
        return self.committable_with(())

    def committable_with(self, done: Iterable[int]) -> int | None:
        """``committable`` as it would be once ``done`` are done too (nothing changes)."""
        if self._next is None:
            return None
        rest = self._pending.difference(done)
        return min(rest) if rest else self._next


class KeyOrderedWorkers(Generic[T]):
    """Runs ``work(item)`` for each submitted item: one key's items in submission order, one at a
    time; different keys concurrently.

    The first item whose work raises stops its key (later items of that key are dropped, so they
    cannot overtake it) and is kept in ``failure`` for the adapter to raise. A cancelled item (see
    ``abandon``) is neither done nor a failure: it was handed back.
    """

    def __init__(self, work: Callable[[T], Coroutine[Any, Any, None]]) -> None:
        self._work = work
        self._queues: dict[Hashable, deque[T]] = {}
        self._running: dict[Hashable, tuple[T, asyncio.Task[None]]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._held = 0
        self._progress = asyncio.Condition()
        self.failure: BaseException | None = None
        self.last_progress: float | None = None
        """``time.monotonic()`` when an item last finished, or work arrived while nothing was
        held (the liveness check: work held and no progress for too long is a stuck consumer)."""

    @property
    def held(self) -> int:
        """Items submitted and not finished (running or waiting behind their key)."""
        return self._held

    def submit(self, key: Hashable, item: T) -> None:
        if self._held == 0:
            self.last_progress = time.monotonic()
        self._held += 1
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(item)
            return
        self._queues[key] = deque([item])
        worker = asyncio.create_task(self._run(key), name=f"bus-key-{len(self._workers)}")
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)

    async def _run(self, key: Hashable) -> None:
        queue = self._queues[key]
        try:
            while queue:
                item = queue.popleft()
                task = asyncio.create_task(self._work(item))
                self._running[key] = (item, task)
                try:
                    await asyncio.wait({task})
                except asyncio.CancelledError:
                    task.cancel()
                    await asyncio.wait({task})
                    raise
                finally:
                    del self._running[key]
                    self._held -= 1
                    self.last_progress = time.monotonic()
                if not task.cancelled() and (error := task.exception()) is not None:
                    self.failure = self.failure or error
                    break
                await self._notify()
        finally:
            self._held -= len(queue)
            del self._queues[key]
            await self._notify()

    async def _notify(self) -> None:
        async with self._progress:
            self._progress.notify_all()

    async def wait_until(self, condition: Callable[[], bool], within: float) -> bool:
        """Wait until ``condition()`` holds (checked as items finish) or ``within`` seconds pass;
        returns whether it holds."""
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation that
        # arrives as the condition comes true, and a consumer would then never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within), self._progress:
                await self._progress.wait_for(condition)
        return condition()

    def abandon(self, which: Callable[[T], bool]) -> list[asyncio.Task[None]]:
        """Drop the waiting items ``which`` selects and cancel the running ones; returns the
        cancelled tasks. Nothing is marked done: the adapter hands these records back."""
        for queue in self._queues.values():
            kept = [item for item in queue if not which(item)]
            self._held -= len(queue) - len(kept)
            queue.clear()
            queue.extend(kept)
        cancelled = [task for item, task in self._running.values() if which(item) and not task.done()]
        for task in cancelled:
            task.cancel()
        return cancelled

    async def close(self, grace: float) -> None:
        """Let what is held finish for up to ``grace`` seconds, then cancel the rest and wait for
        the workers to end."""
        await self.wait_until(lambda: self._held == 0 or self.failure is not None, grace)
        self.abandon(lambda _: True)
        if self._workers:
            await asyncio.wait(set(self._workers))
