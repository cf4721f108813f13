"""The scheduled purge deletes every expired transcript row; live ones stay."""

from __future__ import annotations

from pathlib import Path

from voiceticket_common.testing import check_purge_deletes_expired_rows_only
from voiceticket_transcriber.ledger import SqlTranscriptLedger, TranscriptRow


async def test_purge_deletes_expired_outcomes_only(tmp_path: Path) -> None:
    await check_purge_deletes_expired_rows_only(
        f"sqlite+aiosqlite:///{tmp_path}/t.db",
        SqlTranscriptLedger,
        TranscriptRow,
        lambda i: {"recording_sid": f"RE{i:032d}"},
    )


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
