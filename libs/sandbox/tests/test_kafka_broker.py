"""LocalKafkaBroker runs a real Kafka 4.x broker: topic admin, idempotent produce, group consume."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from voiceticket_sandbox.kafka_broker import LocalKafkaBroker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("java") is None, reason="needs Java 17+ for the Kafka broker"),
]


@pytest.fixture
def broker() -> Iterator[LocalKafkaBroker]:
    # Started from the (main-thread) sync fixture, not the event loop: start() blocks for seconds.
    broker = LocalKafkaBroker().start(timeout=120)
    try:
        yield broker
    finally:
        broker.stop()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_produce_and_consume_in_order_then_stop(broker: LocalKafkaBroker) -> None:
    bootstrap = broker.bootstrap_servers
    assert bootstrap == f"127.0.0.1:{broker.port}"
    topic = f"vt-test-{uuid.uuid4().hex[:8]}"

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()

    sent = [f"call-{i}".encode() for i in range(3)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        offsets = []
        for i, value in enumerate(sent):
            md = await producer.send_and_wait(topic, value, key=b"call", headers=[("seq", str(i).encode())])
            offsets.append(md.offset)
        assert offsets == [0, 1, 2]
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"vt-test-group-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        received = []
        async with asyncio.timeout(60):
            while len(received) < len(sent):
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    received.extend(records)
        await consumer.commit()
    finally:
        await consumer.stop()

    assert [r.value for r in received] == sent
    assert [r.offset for r in received] == [0, 1, 2]
    assert [r.key for r in received] == [b"call"] * 3
    assert [dict(r.headers)["seq"] for r in received] == [b"0", b"1", b"2"]

    pid, port, data_dir = broker.pid, broker.port, broker.data_dir
    assert pid is not None and data_dir is not None and data_dir.is_dir()
    broker.stop()

    assert not broker.is_running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped: no orphan, no zombie
    assert not _port_open(port)
    assert not data_dir.exists()  # the temporary data dir is removed
