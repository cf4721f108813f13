"""Key-ordered concurrency and contiguous commits (``bus/inflight.py``), without a broker."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voiceticket_common.bus.inflight import KeyOrderedWorkers, OffsetTracker


def test_a_slow_earlier_record_holds_the_commit_back_however_many_later_ones_finish() -> None:
    tracker = OffsetTracker()
    assert tracker.committable is None, "nothing taken, nothing to commit"
    for offset in range(10, 15):
        tracker.take(offset)
    for offset in (11, 12, 14):
        tracker.done(offset)
    assert tracker.committable == 10, "offset 10 is still running: nothing may be committed past it"
    tracker.done(10)
    assert tracker.committable == 13
    tracker.done(13)
    assert tracker.committable == 15, "all done: the next offset to read"
    assert tracker.pending == 0


def test_offsets_need_not_be_contiguous_but_must_increase() -> None:
    tracker = OffsetTracker()
    tracker.take(3)
    tracker.take(7)  # a transaction marker or another topic's records in between
    tracker.done(7)
    assert tracker.committable == 3
    tracker.done(3)
    assert tracker.committable == 8
    with pytest.raises(ValueError, match="taken after"):
        tracker.take(5)


def test_committable_with_previews_without_changing_anything() -> None:
    tracker = OffsetTracker()
    for offset in range(4):
        tracker.take(offset)
    assert tracker.committable_with([0, 1, 3]) == 2
    assert tracker.committable == 0 and tracker.pending == 4


@given(st.integers(min_value=1, max_value=40).flatmap(lambda n: st.permutations(range(n))))
def test_the_commit_is_always_the_lowest_offset_not_done(order: list[int]) -> None:
    tracker = OffsetTracker()
    for offset in range(len(order)):
        tracker.take(offset)
    finished: set[int] = set()
    for offset in order:
        tracker.done(offset)
        finished.add(offset)
        expected = next((o for o in range(len(order)) if o not in finished), len(order))
        assert tracker.committable == expected


class Recorder:
    """Work that sleeps a little and records start/end order and the peak concurrency."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.finished: list[tuple[str, int]] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, item: tuple[str, int]) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(random.uniform(0, 0.01))
            self.finished.append(item)
        finally:
            self.running -= 1


async def test_one_keys_items_run_in_order_and_different_keys_overlap() -> None:
    work = Recorder()
    workers: KeyOrderedWorkers[tuple[str, int]] = KeyOrderedWorkers(work)
    items = [(key, n) for n in range(8) for key in "abcdef"]
    for key, n in items:
        workers.submit(key, (key, n))
    assert workers.held == len(items)
    assert await workers.wait_until(lambda: workers.held == 0, 10)
    for key in "abcdef":
        assert [n for k, n in work.finished if k == key] == list(range(8)), f"{key} kept its order"
    assert work.peak == 6, "one item per key at a time, all six keys at once"
    assert workers.failure is None


async def test_a_failed_item_stops_its_key_and_is_reported_while_other_keys_go_on() -> None:
    done: list[str] = []

    async def work(item: str) -> None:
        if item == "a1":
            raise RuntimeError("publish failed")
        done.append(item)

    workers: KeyOrderedWorkers[str] = KeyOrderedWorkers(work)
    for item in ("a0", "a1", "a2", "b0", "b1"):
        workers.submit(item[0], item)
    assert await workers.wait_until(lambda: workers.held == 0, 5)
    assert isinstance(workers.failure, RuntimeError)
    assert "a2" not in done, "a later item of the failed key must not overtake it"
    assert {"a0", "b0", "b1"} <= set(done)


async def test_close_finishes_what_it_holds_within_the_grace() -> None:
    work = Recorder()
    workers: KeyOrderedWorkers[tuple[str, int]] = KeyOrderedWorkers(work)
    for n in range(3):
        workers.submit("k", ("k", n))
        workers.submit(f"other{n}", (f"other{n}", 0))
    await workers.close(5)
    assert len(work.finished) == 6 and workers.held == 0


async def test_close_cancels_what_is_still_running_after_the_grace() -> None:
    work = Recorder()
    work.gate = asyncio.Event()  # never opens: stuck handlers
    workers: KeyOrderedWorkers[tuple[str, int]] = KeyOrderedWorkers(work)
    workers.submit("a", ("a", 0))
    workers.submit("a", ("a", 1))
    workers.submit("b", ("b", 0))
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await workers.close(0.2)
    assert loop.time() - started < 2
    assert work.finished == [] and work.running == 0, "cancelled, not completed"
    assert workers.held == 0 and workers.failure is None, "handed back is not a failure"


async def test_abandon_drops_and_cancels_only_what_it_selects() -> None:
    work = Recorder()
    work.gate = asyncio.Event()
    workers: KeyOrderedWorkers[tuple[str, int]] = KeyOrderedWorkers(work)
    for item in (("p0", 1), ("p0", 2), ("p1", 1)):
        workers.submit(item[0], item)
    await asyncio.sleep(0.01)
    cancelled = workers.abandon(lambda item: item[0] == "p0")
    assert len(cancelled) == 1, "the running p0 item"
    await asyncio.wait(cancelled)
    await asyncio.sleep(0)
    assert workers.held == 1, "p0's waiting item dropped, p1's still held"
    work.gate.set()
    assert await workers.wait_until(lambda: workers.held == 0, 5)
    assert work.finished == [("p1", 1)]
