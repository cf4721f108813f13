"""The scheduled purge deletes every expired analysis row; live ones stay."""

from __future__ import annotations

from pathlib import Path

from voiceticket_analyzer.ledger import AnalysisRow, SqlAnalysisLedger
from voiceticket_common.testing import check_purge_deletes_expired_rows_only


async def test_purge_deletes_expired_outcomes_only(tmp_path: Path) -> None:
    await check_purge_deletes_expired_rows_only(
        f"sqlite+aiosqlite:///{tmp_path}/t.db",
        SqlAnalysisLedger,
        AnalysisRow,
        lambda i: {"transcript_sha256": f"{i:064d}"},
    )
