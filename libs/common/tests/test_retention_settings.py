"""Bus retention comes from settings, for both adapters; the embedded purge can dry-run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.bus.port import TopicRetention, dead_letter_topic
from voiceticket_common.events import CallAnalyzed
from voiceticket_common.service import kafka_bus
from voiceticket_common.settings import ServiceSettings


def test_retention_settings_default_and_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().topic_retention() == TopicRetention()
    monkeypatch.setenv("VOICETICKET_EVENT_RETENTION_HOURS", "24")
    monkeypatch.setenv("VOICETICKET_DEAD_LETTER_RETENTION_HOURS", "48")
    settings = ServiceSettings()
    assert settings.topic_retention() == TopicRetention(timedelta(hours=24), timedelta(hours=48))
    bus = kafka_bus(settings, "test")
    assert bus._topic_configs(CallAnalyzed.topic())["retention.ms"] == str(24 * 3600 * 1000)
    dlq = bus._topic_configs(dead_letter_topic("voiceticket-notifier"))
    assert dlq["retention.ms"] == str(48 * 3600 * 1000)


async def test_embedded_purge_dry_run_counts_and_deletes_nothing(tmp_path: Path) -> None:
    bus = EmbeddedEventBus(tmp_path / "bus.db", "test", retention=TopicRetention(timedelta(hours=1)))
    await bus.start()
    try:
        await bus.db.execute(
            "INSERT INTO bus_records (topic, key, value, headers, stored_at) VALUES (?, ?, ?, '[]', ?)",
            (CallAnalyzed.topic(), b"CA1", b"{}", "2000-01-01T00:00:00.000Z"),
        )
        now = datetime.now(UTC)
        dry = await bus.purge(now, dry_run=True)
        assert (dry.events, dry.dead_letters) == (1, 0)
        assert (await bus.purge(now)).events == 1
        assert (await bus.purge(now, dry_run=True)).events == 0
    finally:
        await bus.stop()
