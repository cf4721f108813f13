"""The bus port's contract, run against both adapters: Kafka (a real 4.x broker) and embedded.

Every adapter of the port must pass these: order per call, at-least-once with commits only after
the handler's outcome is published (also across a restart), dead-lettering of poison and
permanently failing messages without stalling the call's partition, and CloudEvents headers with
trace context on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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

    async def new_bus(self):  # type: ignore[no-untyped-def]
        bus = (
            KafkaEventBus(self.bootstrap, source="contract-test", topic_namespace=NAMESPACE)
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
async def consuming(bus, group: str, handler, types=(TicketCreated,)):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(bus.consume(group, list(types), handler, FAST))
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
    async with consuming(bus, gid, dies):
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
