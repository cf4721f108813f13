"""The scheduled purge deletes every expired analysis row; live ones stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from voiceticket_analyzer.ledger import AnalysisRow, SqlAnalysisLedger
from voiceticket_common.db import open_engine

NOW = datetime(2025, 1, 1, tzinfo=UTC)


async def test_purge_deletes_expired_outcomes_only(tmp_path: Path) -> None:
    async with open_engine(f"sqlite+aiosqlite:///{tmp_path}/t.db") as engine:
        ledger = SqlAnalysisLedger(engine, clock=lambda: NOW)
        await ledger.create_schema()
        async with ledger._ledger.sessions.begin() as session:
            for i, expires in enumerate([NOW - timedelta(hours=1)] * 150 + [NOW + timedelta(hours=1)]):
                session.add(
                    AnalysisRow(
                        tenant_id="acme",
                        call_sid=f"CA{i:032d}",
                        transcript_sha256=f"{i:064d}",
                        outcome="{}",
                        expires_at=expires,
                        updated_at=NOW,
                    )
                )
        assert await ledger.purge(dry_run=True) == 150
        assert await ledger.purge() == 150, "all of them, not one bounded batch"
        assert await ledger.purge(NOW + timedelta(hours=2)) == 1
