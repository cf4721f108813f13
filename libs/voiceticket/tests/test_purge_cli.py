"""``voiceticket purge [--dry-run]``: one purge of the embedded data directory, counts as JSON."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from voiceticket_common.bus.embedded import EmbeddedEventBus


def voiceticket(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voiceticket", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_purge_reports_counts_per_store_and_dry_run_deletes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"

    async def old_record() -> None:
        bus = EmbeddedEventBus(data / "bus.db", "test")
        await bus.start()
        await bus.db.execute(
            "INSERT INTO bus_records (topic, key, value, headers, stored_at) "
            "VALUES ('voiceticket.call.analyzed.v1', X'00', X'00', '[]', '2000-01-01T00:00:00.000Z')"
        )
        await bus.stop()

    data.mkdir(mode=0o700)
    asyncio.run(old_record())
    dry = voiceticket("purge", "--data-dir", str(data), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout.strip().splitlines()[-1])
    assert report["dry_run"] is True
    assert set(report["removed"]) == {
        "bus",
        "transcriber",
        "analyzer",
        "jira-writer",
        "notifier",
        "config-api",
    }
    assert report["removed"]["bus"] == {"events": 1, "dead_letters": 0}
    done = voiceticket("purge", "--data-dir", str(data), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["removed"]["bus"]["events"] == 1
    again = voiceticket("purge", "--data-dir", str(data), "--dry-run", cwd=tmp_path)
    assert json.loads(again.stdout.strip().splitlines()[-1])["removed"]["bus"]["events"] == 0


def test_purge_without_a_data_dir_is_a_usage_error(tmp_path: Path) -> None:
    assert voiceticket("purge", "--data-dir", str(tmp_path / "none"), cwd=tmp_path).returncode == 2
