"""The scheduled purge: old SMS ledger rows and opt-out hashes past the recheck window go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from voiceticket_common.db import open_engine
from voiceticket_notifier.ledger import SqlSmsLedger


class Clock:
    def __init__(self) -> None:
        self.time = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.time


async def test_old_messages_and_opt_outs_go_fresh_ones_stay(tmp_path: Path) -> None:
    clock = Clock()
    async with open_engine(f"sqlite+aiosqlite:///{tmp_path}/n.db") as engine:
        ledger = await SqlSmsLedger.with_schema(engine, clock=clock)
        old = await ledger.claim("acme", "CA" + "1" * 32)
        assert old is not None
        await ledger.complete(old, "sent", "SM" + "1" * 32)
        await ledger.record_opt_out("acme", "a" * 64)
        clock.time += timedelta(days=31)
        fresh = await ledger.claim("acme", "CA" + "2" * 32)
        assert fresh is not None
        await ledger.complete(fresh, "sent", "SM" + "2" * 32)
        await ledger.record_opt_out("acme", "b" * 64)

        window = timedelta(days=30)
        assert await ledger.purge(window, window, dry_run=True) == {"messages": 1, "opt_outs": 1}
        assert await ledger.purge(window, window) == {"messages": 1, "opt_outs": 1}
        assert await ledger.purge(window, window) == {"messages": 0, "opt_outs": 0}
        assert await ledger.opted_out_since("acme", "a" * 64) is None
        assert await ledger.opted_out_since("acme", "b" * 64) is not None
        assert await ledger.claim("acme", "CA" + "2" * 32) is None, "the fresh call's SMS is still settled"
        assert await ledger.claim("acme", "CA" + "1" * 32) is not None, "the old row went"
