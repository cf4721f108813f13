"""The Kafka group member's bookkeeping (``bus/kafka_member.py``) on a fake consumer: contiguous
commits, pausing at the in-flight limit, and handing work back on a rebalance. The real broker is
in tests/integration/test_bus_contract.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from voiceticket_common.bus.kafka_member import KafkaGroupMember
from voiceticket_common.metrics import consumer_tracked
from voiceticket_common.testing import cancelled

TP = TopicPartition("voiceticket.ticket.created.v1", 0)


def record(offset: int, key: str) -> Any:
    return SimpleNamespace(topic=TP.topic, partition=TP.partition, offset=offset, key=key.encode())


class FakeConsumer:
    """What the member uses of AIOKafkaConsumer: one partition, a buffer, recorded commits."""

    def __init__(self, *records: Any) -> None:
        self.buffer = deque(records)
        self.assigned = {TP}
        self.paused_tps: set[TopicPartition] = set()
        self.commits: list[int] = []
        self.was_paused = False
        self.end: int | None = None
        """The partition's high-water mark as the last fetch saw it (None: never fetched)."""

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_tps)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused_tps |= set(tps)
        self.was_paused = self.was_paused or bool(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused_tps -= set(tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        while self.buffer and self.buffer[0].offset > offset:
            self.buffer.popleft()

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.end

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        return None  # read_uncommitted, as far as the member can tell: the high-water mark rules

    async def getmany(self, timeout_ms: int = 0, max_records: int = 1) -> dict[TopicPartition, list[Any]]:
        if TP not in self.assigned:
            await asyncio.sleep(min(timeout_ms, 20) / 1000)
            return {}
        self.end = max((r.offset + 1 for r in self.buffer), default=self.end)
        if TP in self.paused_tps or not self.buffer:
            await asyncio.sleep(min(timeout_ms, 20) / 1000)
            return {}
        return {TP: [self.buffer.popleft() for _ in range(min(max_records, len(self.buffer)))]}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets[TP])


class Gated:
    """``process``: records whose key is in ``held`` wait for ``release``; the rest finish at once."""

    def __init__(self, *held: str) -> None:
        self.held = {key.encode() for key in held}
        self.release = asyncio.Event()
        self.running: set[int] = set()
        self.done: list[int] = []
        self.cancelled: list[int] = []

    async def __call__(self, rec: Any) -> None:
        self.running.add(rec.offset)
        try:
            if rec.key in self.held:
                await self.release.wait()
            self.done.append(rec.offset)
        except asyncio.CancelledError:
            self.cancelled.append(rec.offset)
            raise
        finally:
            self.running.discard(rec.offset)


@contextlib.asynccontextmanager
async def member_running(
    consumer: FakeConsumer, process: Gated, *, limit: int = 16, drain: float = 5.0
) -> AsyncIterator[KafkaGroupMember]:
    member = KafkaGroupMember(consumer, "g", process, max_in_flight=limit, drain_seconds=drain)  # type: ignore[arg-type]
    task = asyncio.create_task(member.run())
    try:
        yield member
    finally:
        await cancelled(task)


async def until(condition: Any, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_a_slow_record_is_not_passed_by_the_commits_of_faster_later_ones() -> None:
    consumer = FakeConsumer(record(0, "slow"), record(1, "b"), record(2, "c"), record(3, "d"))
    process = Gated("slow")
    async with member_running(consumer, process):
        await until(lambda: sorted(process.done) == [1, 2, 3])
        await asyncio.sleep(0.05)
        assert max(consumer.commits, default=0) == 0, "nothing past the unfinished offset 0"
        process.release.set()
        await until(lambda: consumer.commits and consumer.commits[-1] == 4)


async def test_fetching_pauses_at_the_in_flight_limit_and_resumes_below_it() -> None:
    consumer = FakeConsumer(*(record(n, f"call{n}") for n in range(6)))
    process = Gated(*(f"call{n}" for n in range(6)))
    async with member_running(consumer, process, limit=2):
        await until(lambda: len(process.running) == 2 and consumer.was_paused)
        await asyncio.sleep(0.05)
        assert len(process.running) == 2 and len(consumer.buffer) == 4, "no more than two taken"
        process.release.set()
        await until(lambda: consumer.commits and consumer.commits[-1] == 6)
    assert sorted(process.done) == list(range(6))


async def test_revoked_partitions_finish_their_records_and_commit_before_handing_over() -> None:
    consumer = FakeConsumer(record(0, "a"), record(1, "b"), record(2, "a"))
    process = Gated("a", "b")
    async with member_running(consumer, process) as member:
        await until(lambda: process.running == {0, 1})
        revoke = asyncio.create_task(member.listener.on_partitions_revoked({TP}))
        await asyncio.sleep(0.05)
        assert not revoke.done(), "the rebalance waits for the records in flight"
        process.release.set()
        await asyncio.wait_for(revoke, 5)
        assert sorted(process.done) == [0, 1, 2] and consumer.commits[-1] == 3
        await member.listener.on_partitions_assigned({TP})


async def test_records_still_running_after_the_drain_are_handed_back_uncommitted() -> None:
    consumer = FakeConsumer(record(0, "fast"), record(1, "stuck"), record(2, "later"))
    process = Gated("stuck")
    async with member_running(consumer, process, drain=0.2) as member:
        await until(lambda: 1 in process.running and 2 in process.done)
        await asyncio.wait_for(member.listener.on_partitions_revoked({TP}), 5)
        await until(lambda: process.cancelled == [1])
        assert consumer.commits[-1] == 1, "committed up to the stuck record, not past it"
        await member.listener.on_partitions_assigned({TP})


async def test_stopping_lets_records_in_flight_finish_and_commits_them() -> None:
    consumer = FakeConsumer(record(0, "a"), record(1, "b"))
    process = Gated("a", "b")
    member = KafkaGroupMember(consumer, "g", process, max_in_flight=4, drain_seconds=5)  # type: ignore[arg-type]
    task = asyncio.create_task(member.run())
    await until(lambda: process.running == {0, 1})
    task.cancel()
    await asyncio.sleep(0.05)
    process.release.set()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert sorted(process.done) == [0, 1] and consumer.commits[-1] == 2


def lag_sample(group: str = "g") -> float | None:
    return REGISTRY.get_sample_value(
        "voiceticket_consumer_lag", {"group": group, "topic": TP.topic, "partition": str(TP.partition)}
    )


async def test_the_lag_gauge_grows_while_records_wait_even_with_no_commit() -> None:
    consumer = FakeConsumer(*(record(n, f"call{n}") for n in range(2)))
    process = Gated("call0", "call1")
    async with member_running(consumer, process, limit=2) as member:
        with consumer_tracked("lag-grows", member.progress):
            await until(lambda: len(process.running) == 2)
            assert lag_sample("lag-grows") == 2
            consumer.buffer.extend(record(n, f"call{n}") for n in range(2, 7))  # arrive while full
            await until(lambda: consumer.end == 7)
            assert consumer.commits == [], "nothing finished, so nothing committed"
            assert lag_sample("lag-grows") == 7, "the gauge follows the log, not the last commit"
            assert REGISTRY.get_sample_value("voiceticket_consumer_in_flight", {"group": "lag-grows"}) == 2
            process.release.set()
            await until(lambda: consumer.commits and consumer.commits[-1] == 7)
            assert lag_sample("lag-grows") == 0
    assert REGISTRY.get_sample_value("voiceticket_consumer_in_flight", {"group": "lag-grows"}) is None


async def test_a_revoked_partition_leaves_the_members_lag_series_at_once() -> None:
    consumer = FakeConsumer(record(0, "a"), record(1, "b"), record(2, "c"))
    process = Gated("c")
    async with member_running(consumer, process) as member:
        with consumer_tracked("revoked", member.progress):
            await until(lambda: sorted(process.done) == [0, 1] and 2 in process.running)
            await until(lambda: lag_sample("revoked") == 1)
            process.release.set()
            await asyncio.wait_for(member.listener.on_partitions_revoked({TP}), 5)
            consumer.assigned = set()
            await member.listener.on_partitions_assigned(set())
            # Another member owns the partition now and reports it; a stale figure here would
            # double-count it (or hide its real lag) in every sum over the group.
            assert lag_sample("revoked") is None
            assert REGISTRY.get_sample_value("voiceticket_consumer_partitions", {"group": "revoked"}) == 0
