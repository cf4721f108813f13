"""The Kafka adapter replaces a producer whose idempotent session the broker refuses.

After a broker restart that lost the producers' sequence state, the broker refuses every later
batch of an existing idempotent producer with OutOfOrderSequenceNumber, and aiokafka never resets
it: the chaos suite saw ingress answer 231 webhooks with 500 for three minutes, until the process
was restarted. The adapter now starts a new producer (a new producer id) and sends the record again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, OutOfOrderSequenceNumber

from voiceticket_common.bus.kafka import KafkaEventBus
from voiceticket_common.testing import ticket_created


class FakeProducer:
    """Refuses its first ``refusals`` sends as a broker refuses a stale idempotent session."""

    def __init__(self, refusals: int = 0, error: type[Exception] = OutOfOrderSequenceNumber) -> None:
        self.refusals, self.error = refusals, error
        self.sent: list[str] = []
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send_and_wait(self, topic: str, **_: Any) -> None:
        await asyncio.sleep(0)
        if self.refusals:
            self.refusals -= 1
            raise self.error()
        self.sent.append(topic)


def bus_with(broken: FakeProducer, *fresh: FakeProducer) -> KafkaEventBus:
    bus = KafkaEventBus("127.0.0.1:9", "test")
    bus._producer = broken  # type: ignore[assignment]
    queue = list(fresh)
    bus._new_producer = lambda: queue.pop(0)  # type: ignore[method-assign]
    return bus


async def test_a_refused_producer_session_is_replaced_and_the_record_sent_once_more() -> None:
    broken, fresh = FakeProducer(refusals=10**6), FakeProducer()
    bus = bus_with(broken, fresh)
    await bus.publish(ticket_created())
    assert fresh.started and broken.stopped and bus.producers_replaced == 1
    assert fresh.sent == ["voiceticket.ticket.created.v1"] and broken.sent == []
    await bus.publish(ticket_created())  # and every later send goes to the new one
    assert len(fresh.sent) == 2


async def test_concurrent_refusals_replace_the_producer_once() -> None:
    broken, fresh, spare = FakeProducer(refusals=10**6), FakeProducer(), FakeProducer()
    bus = bus_with(broken, fresh, spare)
    await asyncio.gather(*(bus.publish(ticket_created()) for _ in range(5)))
    assert bus.producers_replaced == 1 and len(fresh.sent) == 5 and not spare.started


async def test_other_send_failures_are_not_a_reason_to_replace_it() -> None:
    flaky = FakeProducer(refusals=1, error=KafkaTimeoutError)
    bus = bus_with(flaky, FakeProducer())
    with pytest.raises(KafkaTimeoutError):
        await bus.publish(ticket_created())
    assert bus.producers_replaced == 0
