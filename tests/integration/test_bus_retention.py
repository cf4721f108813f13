"""Retention on both buses: records do not outlive their retention, and deleted ones cannot be read
back from the embedded log's file; Kafka topics are provisioned with the same retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from voiceticket_common.bus import TopicRetention, dead_letter_topic
from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.bus.kafka import KafkaEventBus
from voiceticket_common.events import TicketCreated
from voiceticket_common.testing import ticket_created

RETENTION = TopicRetention(events=timedelta(hours=1), dead_letters=timedelta(hours=3))
CALLER = "+14155550177"


async def test_the_embedded_log_forgets_records_past_retention_for_good(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = EmbeddedEventBus(path, source="retention-test", retention=RETENTION)
    await bus.start()
    try:
        old = ticket_created(call_sid="CA" + "a" * 32, caller_number=CALLER)
        await bus.publish(old)
        letter = ticket_created(call_sid="CA" + "b" * 32, caller_number=CALLER)
        await bus._write(
            [(dead_letter_topic("g"), letter.call_sid.encode(), letter.model_dump_json().encode(), [])]
        )

        # Two hours on: the event is past its hour, the dead letter not yet past its three.
        report = await bus.purge(now=datetime.now(UTC) + timedelta(hours=2))
        assert (report.events, report.dead_letters) == (1, 0)
        assert await bus.history(old.call_sid) == []
        assert [d.call_sid for d in await bus.dead_letters("g")] == [letter.call_sid]

        fresh = ticket_created(call_sid="CA" + "c" * 32)
        await bus.publish(fresh)
        report = await bus.purge(now=datetime.now(UTC) + timedelta(hours=4))
        assert (report.events, report.dead_letters) == (1, 1)
        assert await bus.dead_letters("g") == []
    finally:
        await bus.stop()
    raw = _bus_files(tmp_path)
    assert CALLER.encode() not in raw, "deleted records are overwritten, not left in free pages or the WAL"


async def test_kafka_topics_are_created_with_the_retention(kafka_bootstrap: str) -> None:
    namespace = f"retention-{uuid.uuid4().hex[:6]}"
    bus = KafkaEventBus(
        kafka_bootstrap, source="retention-test", topic_namespace=namespace, retention=RETENTION
    )
    await bus.start()
    try:
        await bus.ensure_topics([TicketCreated], ["g"])
    finally:
        await bus.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topics = {
            f"{namespace}.{TicketCreated.topic()}": str(3600 * 1000),
            f"{namespace}.{dead_letter_topic('g')}": str(3 * 3600 * 1000),
        }
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
        )
    finally:
        await admin.close()
    found: dict[str, str] = {}
    for response in described:
        for resource in response.resources:
            _, _, _, name, entries = resource[:5]
            values = {entry[0]: entry[1] for entry in entries}
            found[name] = values["retention.ms"]
            assert values.get("cleanup.policy") == "delete", name
    assert found == topics


def _bus_files(folder: Path) -> bytes:
    """Every byte of the log's files (the database, its WAL and shared memory)."""

    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("bus.db"))
