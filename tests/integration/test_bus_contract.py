"""The bus port's contract, run against both adapters: Kafka (a real 4.x broker) and embedded.

Every adapter of the port must pass these: order per call, at-least-once with commits only after
the handler's outcome is published (also across a restart), dead-lettering of poison and
permanently failing messages without stalling the call's partition, and CloudEvents headers with
trace context on the wire. Key-ordered concurrency: different calls in parallel up to the
in-flight limit while each call's events stay in order, commits that never pass an unfinished
record (a crash redelivers what completed after it), a stop that finishes what it holds, and a
second consumer joining and the first leaving mid-flight without losing or repeating a record.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from voiceticket_common.bus import PermanentError, RetryPolicy, TransientError, encode, envelope_for
from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.bus.kafka import KafkaEventBus
from voiceticket_common.events import Event, NotificationSent, TicketCreated
from voiceticket_common.testing import cancelled, ticket_created

NAMESPACE = f"contract-{uuid.uuid4().hex[:6]}"  # keeps these records away from other tests' services
FAST = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.2, max_total_seconds=10)


def ticket(call_no: int, key: str = "HELP-1") -> TicketCreated:
    return ticket_created(call_sid=f"CA{call_no:032x}", issue_key=key)


class Adapter:
    """Makes bus instances of one adapter, and can write a raw record the way a bad producer would."""

    def __init__(self, kind: str, request: pytest.FixtureRequest, tmp_path) -> None:  # type: ignore[no-untyped-def]
        self.kind = kind
        self.bootstrap = request.getfixturevalue("kafka_bootstrap") if kind == "kafka" else ""
        self.path = tmp_path / "bus.db"
        self.open: list = []

    async def new_bus(self, namespace: str = NAMESPACE, partitions: int = 3):  # type: ignore[no-untyped-def]
        bus = (
            KafkaEventBus(
                self.bootstrap, source="contract-test", topic_namespace=namespace, partitions=partitions
            )
            if self.kind == "kafka"
            else EmbeddedEventBus(self.path, source="contract-test", poll_interval=0.05)
        )
        await bus.start()
        self.open.append(bus)
        return bus

    async def write_raw(self, bus, topic: str, key: bytes, value: bytes, headers: list) -> None:  # type: ignore[no-untyped-def]
        if self.kind == "embedded":
            await bus._write([(topic, key, value, headers)])
            return
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(f"{NAMESPACE}.{topic}", value, key=key, headers=headers)
        finally:
            await producer.stop()

    async def close(self) -> None:
        for bus in self.open:
            await bus.stop()


@pytest.fixture(params=["kafka", "embedded"])
async def adapter(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Adapter]:  # type: ignore[no-untyped-def]
    adapter = Adapter(request.param, request, tmp_path)
    yield adapter
    await adapter.close()


@pytest.fixture
async def bus(adapter: Adapter):  # type: ignore[no-untyped-def]
    return await adapter.new_bus()


@contextlib.asynccontextmanager
async def consuming(bus, group: str, handler, types=(TicketCreated,), *, max_in_flight: int = 16,  # type: ignore[no-untyped-def]
                    drain: float = 5.0):  # fmt: skip
    task = asyncio.create_task(
        bus.consume(group, list(types), handler, FAST, max_in_flight=max_in_flight, drain_seconds=drain)
    )
    try:
        yield task
    finally:
        await cancelled(task)


async def eventually(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 15.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, group_id=None)  # fmt: skip
    await consumer.start()
    records: list = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(records) < expect and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records += recs
    finally:
        await consumer.stop()
    return records


def group() -> str:
    return f"contract-{uuid.uuid4().hex[:8]}"


async def test_events_of_one_call_arrive_in_order(bus) -> None:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    async def handler(delivered: Event) -> Sequence[Event]:
        assert isinstance(delivered, TicketCreated)
        seen.append(delivered.issue_key)
        return []

    call = 1000 + uuid.uuid4().int % 10_000
    keys = [f"HELP-{n}" for n in range(20)]
    await bus.ensure_topics([TicketCreated])
    async with consuming(bus, group(), handler):
        for key in keys:
            await bus.publish(ticket(call, key), discriminator=key)
        await eventually(lambda: len([k for k in seen if k in keys]) >= len(keys))
    assert [k for k in seen if k in keys] == keys


async def test_kafka_records_are_cloudevents_binary_mode_with_traceparent(kafka_bootstrap: str) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    event = ticket(uuid.uuid4().int % 10**9)
    bus = KafkaEventBus(kafka_bootstrap, source="contract-test", topic_namespace=NAMESPACE)
    await bus.start()
    try:
        with trace.get_tracer("t").start_as_current_span("root"):
            await bus.publish(event)
    finally:
        await bus.stop()
    records = [r for r in await read_topic(kafka_bootstrap, bus.topic(TicketCreated.topic()), 10_000, timeout=5)
               if r.key == event.call_sid.encode()]  # fmt: skip
    assert len(records) == 1
    headers = dict(records[0].headers)
    assert headers["ce_type"] == b"io.voiceticket.ticket.created.v1"
    assert headers["ce_subject"] == event.call_sid.encode()
    assert headers["ce_source"] == b"contract-test"
    assert headers["content-type"] == b"application/json"
    assert headers["traceparent"].startswith(b"00-")


async def test_a_message_whose_handler_died_is_delivered_again_after_a_restart(adapter: Adapter, bus) -> None:  # type: ignore[no-untyped-def]
    """A consumer that dies mid-handler gets the message again, also in a new process: at-least-once."""

    gid = group()
    event = ticket(uuid.uuid4().int % 10**9)
    first_attempt = asyncio.Event()

    async def dies(delivered: Event) -> Sequence[Event]:
        if delivered.call_sid == event.call_sid:
            first_attempt.set()
            await asyncio.sleep(3600)  # "crash": cancelled before returning
        return []

    await bus.ensure_topics([TicketCreated])
    async with consuming(bus, gid, dies, drain=0):  # no time to finish: a crash
        await bus.publish(event)
        await asyncio.wait_for(first_attempt.wait(), 30)

    outcomes: list[str] = []

    async def succeeds(delivered: Event) -> Sequence[Event]:
        if delivered.call_sid == event.call_sid:
            outcomes.append(delivered.call_sid)
            return [
                NotificationSent(
                    tenant_id="acme", call_sid=event.call_sid, issue_key="HELP-1", message_sid="SM1"
                )
            ]
        return []

    await bus.stop()
    adapter.open.remove(bus)
    restarted = await adapter.new_bus()
    async with consuming(restarted, gid, succeeds):
        await eventually(lambda: outcomes == [event.call_sid])
        await asyncio.sleep(0.5)
    assert outcomes == [event.call_sid], "delivered again exactly once after the restart"
    assert [d for d in await restarted.dead_letters(gid) if d.call_sid == event.call_sid] == []


async def test_poison_and_permanent_failures_are_dead_lettered_and_do_not_stall(
    adapter: Adapter, bus
) -> None:  # type: ignore[no-untyped-def]
    gid = group()
    call = uuid.uuid4().int % 10**9
    bad, good = ticket(call, "HELP-BAD"), ticket(call, "HELP-GOOD")
    handled: list[str] = []
    attempts: list[str] = []

    async def handler(delivered: Event) -> Sequence[Event]:
        assert isinstance(delivered, TicketCreated)
        key = delivered.issue_key
        attempts.append(key)
        if key == "HELP-BAD":
            raise PermanentError("jira rejected the request: field summary is required")
        if key == "HELP-FLAKY":
            raise TransientError("503")
        handled.append(key)
        return []

    await bus.ensure_topics([TicketCreated], [gid])
    # A record no schema accepts, on the same partition (same key) as the good one.
    await adapter.write_raw(
        bus, TicketCreated.topic(), good.call_sid.encode(), b"{not json",
        [("ce_type", b"io.voiceticket.ticket.created.v1"), ("ce_specversion", b"1.0")],
    )  # fmt: skip
    await bus.publish(bad, discriminator="bad")
    await bus.publish(ticket(call, "HELP-FLAKY"), discriminator="flaky")
    await bus.publish(good, discriminator="good")
    async with consuming(bus, gid, handler):
        await eventually(lambda: "HELP-GOOD" in handled)

    assert attempts.count("HELP-BAD") == 1, "permanent failures are not retried"
    assert attempts.count("HELP-FLAKY") == FAST.max_attempts, "transient failures are retried, boundedly"
    dead = await bus.dead_letters(gid)
    assert sorted(d.error_type for d in dead) == ["MalformedMessage", "PermanentError", "TransientError"]
    for letter in dead:
        assert letter.original_topic.endswith(TicketCreated.topic())
        assert letter.call_sid == good.call_sid
        assert letter.consumer_group == gid
        assert "+1415" not in letter.error
    assert any("field summary is required" in d.error for d in dead)


async def test_a_replayed_dead_letter_is_delivered_again(bus) -> None:  # type: ignore[no-untyped-def]
    gid = group()
    event = ticket(uuid.uuid4().int % 10**9, "HELP-LATER")
    fixed = False
    delivered: list[str] = []

    async def handler(record: Event) -> Sequence[Event]:
        if record.call_sid != event.call_sid:
            return []
        if not fixed:
            raise PermanentError("jira rejected the request: request type 99 does not exist")
        delivered.append(record.call_sid)
        return []

    await bus.ensure_topics([TicketCreated], [gid])
    await bus.publish(event)
    async with consuming(bus, gid, handler):
        deadline = asyncio.get_running_loop().time() + 30
        letters: list = []
        while not letters and asyncio.get_running_loop().time() < deadline:
            letters = [d for d in await bus.dead_letters(gid) if d.call_sid == event.call_sid]
            await asyncio.sleep(0.2)
        assert len(letters) == 1
        fixed = True  # the operator fixed the configuration
        await bus.replay(letters[0])
        await eventually(lambda: delivered == [event.call_sid])


async def test_an_older_consumer_reads_a_newer_producers_event_with_an_extra_optional_field(
    adapter: Adapter, bus
) -> None:  # type: ignore[no-untyped-def]
    """A rolling deploy: the new producer adds an optional field (a compatible schema change)
    while consumers of the old version still run; they handle the event instead of dead-lettering it."""

    gid = group()
    event = ticket(uuid.uuid4().int % 10**9, "HELP-NEWER")
    received: list[TicketCreated] = []

    async def handler(delivered: Event) -> Sequence[Event]:
        if isinstance(delivered, TicketCreated) and delivered.call_sid == event.call_sid:
            received.append(delivered)
        return []

    newer = json.loads(event.model_dump_json()) | {"queue_position": 3, "channel": {"kind": "voice"}}
    _, _, headers = encode(envelope_for(event, "producer-v2"))
    await bus.ensure_topics([TicketCreated], [gid])
    await adapter.write_raw(
        bus, TicketCreated.topic(), event.call_sid.encode(), json.dumps(newer).encode(), headers
    )
    async with consuming(bus, gid, handler):
        await eventually(lambda: len(received) == 1)
    assert received[0] == event, "the known fields arrive intact; the unknown ones are ignored"
    assert [d for d in await bus.dead_letters(gid) if d.call_sid == event.call_sid] == []


class Overlap:
    """Counts handlers running at once; ``peak`` is the most seen together."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    @contextlib.contextmanager
    def running_one(self):  # type: ignore[no-untyped-def]
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            yield
        finally:
            self.running -= 1


def calls(count: int) -> list[int]:
    base = uuid.uuid4().int % 10**9
    return [base + n for n in range(count)]


@pytest.mark.parametrize(("limit", "expected_peak"), [(16, 10), (4, 4)])
async def test_different_calls_are_handled_in_parallel_up_to_the_in_flight_limit(
    bus, limit: int, expected_peak: int
) -> None:  # type: ignore[no-untyped-def]
    """Ten calls whose handlers take 0.5 s each: all ten at once (not one after another, 5 s);
    with a limit of four, never more than four."""

    numbers = calls(10)
    mine = {ticket(n).call_sid for n in numbers}
    overlap, handled, times = Overlap(), [], []
    clock = asyncio.get_running_loop().time

    async def slow(delivered: Event) -> Sequence[Event]:
        if delivered.call_sid not in mine:
            return []
        times.append(clock())
        with overlap.running_one():
            await asyncio.sleep(0.5)
        handled.append(delivered.call_sid)
        times.append(clock())
        return []

    await bus.ensure_topics([TicketCreated])
    for n in numbers:
        await bus.publish(ticket(n))
    async with consuming(bus, group(), slow, max_in_flight=limit):
        await eventually(lambda: len(handled) == 10)
    assert overlap.peak == expected_peak, f"limit {limit}: {overlap.peak} handlers at once"
    if limit >= 10:
        assert max(times) - min(times) < 3.0, "generously under the 5 s of one at a time"


async def test_each_calls_events_stay_in_order_while_calls_run_concurrently(bus) -> None:  # type: ignore[no-untyped-def]
    numbers = calls(8)
    steps = [f"HELP-{s}" for s in range(6)]
    seen: dict[str, list[str]] = {ticket(n).call_sid: [] for n in numbers}
    overlap = Overlap()

    async def handler(delivered: Event) -> Sequence[Event]:
        assert isinstance(delivered, TicketCreated)
        if delivered.call_sid in seen:
            with overlap.running_one():
                await asyncio.sleep(random.uniform(0, 0.05))
            seen[delivered.call_sid].append(delivered.issue_key)
        return []

    await bus.ensure_topics([TicketCreated])
    for step in steps:  # interleaved: call 1 step 0, call 2 step 0, ...
        for n in numbers:
            await bus.publish(ticket(n, step), discriminator=step)
    async with consuming(bus, group(), handler):
        await eventually(lambda: all(len(v) == len(steps) for v in seen.values()))
    assert all(order == steps for order in seen.values()), "each call's events in publication order"
    assert overlap.peak > 1, "calls ran concurrently"
    assert overlap.peak <= len(numbers), "never two events of one call at once"


async def test_a_retrying_event_holds_up_only_its_own_call(bus) -> None:  # type: ignore[no-untyped-def]
    flaky, other = calls(2)
    order: list[str] = []
    attempts = 0

    async def handler(delivered: Event) -> Sequence[Event]:
        nonlocal attempts
        assert isinstance(delivered, TicketCreated)
        if delivered.call_sid == ticket(flaky).call_sid:
            attempts += 1
            if attempts < FAST.max_attempts:
                await asyncio.sleep(0.3)
                raise TransientError("503")
        if delivered.call_sid in {ticket(flaky).call_sid, ticket(other).call_sid}:
            order.append(delivered.issue_key)
        return []

    await bus.ensure_topics([TicketCreated])
    await bus.publish(ticket(flaky, "HELP-FLAKY"))
    await bus.publish(ticket(flaky, "HELP-FLAKY-NEXT"), discriminator="next")
    for step in range(3):
        await bus.publish(ticket(other, f"HELP-OTHER-{step}"), discriminator=str(step))
    async with consuming(bus, group(), handler):
        await eventually(lambda: len(order) == 5)
    assert order.index("HELP-OTHER-2") < order.index("HELP-FLAKY"), "the other call went on meanwhile"
    assert order.index("HELP-FLAKY") < order.index("HELP-FLAKY-NEXT"), "the retrying call kept its order"


async def test_a_crash_redelivers_what_completed_after_an_unfinished_event_and_nothing_before(
    adapter: Adapter,
) -> None:
    """One partition (Kafka) or one log (embedded): the commit may not pass the slow event, so
    the faster events after it, though done, are delivered again after the crash; the events
    before it, done and committed, are not."""

    namespace = f"{NAMESPACE}-1p"
    bus = await adapter.new_bus(namespace=namespace, partitions=1)
    gid = group()
    before, slow, after = calls(3), calls(1)[0], calls(5)
    mine = {ticket(n).call_sid for n in [*before, slow, *after]}
    first_run: list[str] = []

    async def crashes_on_the_slow_one(delivered: Event) -> Sequence[Event]:
        if delivered.call_sid not in mine:
            return []
        if delivered.call_sid == ticket(slow).call_sid:
            await asyncio.sleep(3600)
        first_run.append(delivered.call_sid)
        return []

    await bus.ensure_topics([TicketCreated])
    for n in before:
        await bus.publish(ticket(n))
    async with consuming(bus, gid, crashes_on_the_slow_one):
        await eventually(lambda: len(first_run) == len(before))
        await asyncio.sleep(1.5)  # their commit goes through
        await bus.publish(ticket(slow))
        for n in after:
            await bus.publish(ticket(n))
        await eventually(lambda: len(first_run) == len(before) + len(after))
        await asyncio.sleep(1.5)  # a commit past the slow event would have happened by now
    # (leaving the block cancels the consumer with a drain; the slow handler sleeps through it)

    await bus.stop()
    adapter.open.remove(bus)
    restarted = await adapter.new_bus(namespace=namespace, partitions=1)
    second_run: list[str] = []

    async def succeeds(delivered: Event) -> Sequence[Event]:
        if delivered.call_sid in mine:
            second_run.append(delivered.call_sid)
        return []

    async with consuming(restarted, gid, succeeds):
        await eventually(lambda: len(second_run) >= 1 + len(after))
        await asyncio.sleep(1.0)
    assert sorted(second_run) == sorted(ticket(n).call_sid for n in [slow, *after]), (
        "the unfinished event and the completed-but-uncommitted ones after it, each once; "
        "nothing committed before it"
    )


async def test_a_stopping_consumer_finishes_what_it_holds_and_commits_it(adapter: Adapter, bus) -> None:  # type: ignore[no-untyped-def]
    gid = group()
    numbers = calls(5)
    mine = {ticket(n).call_sid for n in numbers}
    started: list[str] = []
    finished: list[str] = []

    async def slow(delivered: Event) -> Sequence[Event]:
        if delivered.call_sid in mine:
            started.append(delivered.call_sid)
            await asyncio.sleep(1.0)
            finished.append(delivered.call_sid)
        return []

    await bus.ensure_topics([TicketCreated])
    for n in numbers:
        await bus.publish(ticket(n))
    async with consuming(bus, gid, slow, drain=10):
        await eventually(lambda: len(started) == len(numbers))
    assert sorted(finished) == sorted(mine), "SIGTERM (cancel) let the events in flight finish"

    again: list[str] = []

    async def records(delivered: Event) -> Sequence[Event]:
        if delivered.call_sid in mine:
            again.append(delivered.call_sid)
        return []

    marker = ticket(calls(1)[0])
    mine.add(marker.call_sid)
    await bus.publish(marker)
    async with consuming(bus, gid, records):
        await eventually(lambda: marker.call_sid in again)
        await asyncio.sleep(0.5)
    assert again == [marker.call_sid], "what finished while stopping was committed: not delivered again"


async def test_a_consumer_joining_and_one_leaving_mid_flight_lose_and_repeat_nothing(
    adapter: Adapter, bus
) -> None:  # type: ignore[no-untyped-def]
    """Kafka rebalances twice (a second member joins, the first leaves) while events are in
    flight; the embedded bus keeps one consumer per group in its process, the second standing by
    until the first leaves. Either way each event's handler completes exactly once."""

    gid = group()
    numbers = calls(30)
    mine = {ticket(n).call_sid for n in numbers}
    completed: dict[str, list[str]] = {"first": [], "second": []}
    started = {"first": 0, "second": 0}

    def handler(member: str):  # type: ignore[no-untyped-def]
        async def handle(delivered: Event) -> Sequence[Event]:
            if delivered.call_sid in mine:
                started[member] += 1
                await asyncio.sleep(0.4)
                completed[member].append(delivered.call_sid)
            return []

        return handle

    await bus.ensure_topics([TicketCreated])
    for n in numbers:
        await bus.publish(ticket(n))
    # A second process on Kafka; on the embedded bus (one process by design) the same bus.
    second_bus = await adapter.new_bus() if adapter.kind == "kafka" else bus
    async with consuming(bus, gid, handler("first"), max_in_flight=4, drain=10) as first:
        await eventually(lambda: started["first"] >= 2)
        async with consuming(second_bus, gid, handler("second"), max_in_flight=4, drain=10):
            await eventually(lambda: len(completed["first"]) + len(completed["second"]) >= 12)
            await cancelled(first)  # the first member leaves mid-flight
            await eventually(lambda: len(completed["first"]) + len(completed["second"]) >= len(numbers), 60)
            await asyncio.sleep(1.0)
    everything = completed["first"] + completed["second"]
    assert sorted(everything) == sorted(mine), "every event completed exactly once"
    assert completed["first"] and completed["second"], "both members did part of the work"


async def test_every_follower_reads_every_record_without_a_group(adapter: Adapter) -> None:
    """``follow`` (config.changed): two followers (two replicas) each get every record, one of
    each tenant's in order; one published just before a follower started is not missed."""
    from voiceticket_common.events import ConfigChanged, ConfigChangeKind

    namespace = f"follow-{uuid.uuid4().hex[:6]}"
    publisher = await adapter.new_bus(namespace)

    def change(version: int, tenant: str = "acme") -> ConfigChanged:
        return ConfigChanged.of(tenant, ConfigChangeKind.LINE, ["+15005550006"], version)

    await publisher.publish(change(1))  # before either follower: within the look-back
    seen: list[list[int]] = [[], []]
    followers = []
    for i in range(2):
        bus = await adapter.new_bus(namespace)

        async def handle(event: Event, into: list[int] = seen[i]) -> None:
            assert isinstance(event, ConfigChanged)
            into.append(event.config_version)

        followers.append(asyncio.create_task(bus.follow([ConfigChanged], handle)))
    try:
        for version in range(2, 6):
            await publisher.publish(change(version, "acme" if version % 2 else "globex"))
        await eventually(lambda: all(len(s) == 5 for s in seen), timeout=20)
        await asyncio.sleep(0.5)  # nothing more arrives
    finally:
        for task in followers:
            await cancelled(task)
    for versions in seen:
        assert sorted(versions) == [1, 2, 3, 4, 5]
        assert [v for v in versions if v % 2] == [1, 3, 5]  # one tenant's changes in order
