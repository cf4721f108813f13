"""The scheduled purge deletes every expired transcript row; live ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from voiceticket_common.db import open_engine
from voiceticket_transcriber.ledger import SqlTranscriptLedger, TranscriptRow

NOW = datetime(2025, 1, 1, tzinfo=UTC)


async def test_purge_deletes_expired_outcomes_only(tmp_path: Path) -> None:
    async with open_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db") as engine:
        ledger = SqlTranscriptLedger(engine, clock=lambda: NOW)
        await ledger.create_schema()
        async with ledger._ledger.sessions.begin() as session:
            for i, expires in enumerate([NOW - timedelta(hours=1)] * 150 + [NOW + timedelta(hours=1)]):
                session.add(
                    TranscriptRow(
                        tenant_id="acme",
                        call_sid=f"CA{i:032d}",
                        recording_sid=f"RE{i:032d}",
                        outcome="{}",
                        expires_at=expires,
                        updated_at=NOW,
                    )
                )
        assert await ledger.purge(dry_run=True) == 150
        assert await ledger.purge() == 150, "all of them, not one bounded batch"
        assert await ledger.purge(NOW + timedelta(hours=2)) == 1


def test_the_purge_command_prints_counts_as_json(tmp_path: Path) -> None:
    """``python -m voiceticket_transcriber purge [--dry-run]``: what the CronJob runs."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "VOICETICKET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db"}
    for args in (["--dry-run"], []):
        done = subprocess.run(
            [sys.executable, "-m", "voiceticket_transcriber", "purge", *args],
            env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path, check=True,
        )  # fmt: skip
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report == {
            "event": "retention purge", "store": "transcriber", "dry_run": bool(args), "removed": {"outcomes": 0}
        }  # fmt: skip
    bad = subprocess.run(
        [sys.executable, "-m", "voiceticket_transcriber", "purge", "--force"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 2
