"""A ledger database that fails mid-call (locked, down) is a transient failure: the bus retries
the step instead of dead-lettering a call whose request already exists (no SMS ever sent)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from voiceticket_common.bus.delivery import DeadLettered, Delivered, run_handler
from voiceticket_common.bus.port import RetryPolicy
from voiceticket_common.events import Event
from voiceticket_common.ledger import LedgerDatabaseError
from voiceticket_common.testing import ticket_created
from voiceticket_notifier.ledger import SqlSmsLedger

CALL = "CA" + "d" * 32


@pytest.fixture
async def ledger(tmp_path: Path) -> SqlSmsLedger:
    # A short lock wait, so that a held lock fails the claim at once instead of after 5 s.
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'notifier.db'}", connect_args={"timeout": 0.1}
    )
    yield await SqlSmsLedger.with_schema(engine)
    await engine.dispose()


def lock(path: Path) -> sqlite3.Connection:
    """Another writer holding the database (a long transaction, a migration, a backup)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


async def test_a_locked_ledger_is_a_transient_failure_whose_message_holds_no_data(
    ledger: SqlSmsLedger, tmp_path: Path
) -> None:
    holder = lock(tmp_path / "notifier.db")
    try:
        with pytest.raises(LedgerDatabaseError) as raised:
            await ledger.claim("acme", CALL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "OperationalError" in str(raised.value) and CALL not in str(raised.value)
    claim = await ledger.claim("acme", CALL)  # the failed transaction claimed nothing
    assert claim is not None and claim.fresh


async def test_the_bus_retries_a_step_whose_ledger_was_briefly_locked(
    ledger: SqlSmsLedger, tmp_path: Path
) -> None:
    holder = lock(tmp_path / "notifier.db")
    attempts = 0

    async def notify(event: Event) -> Sequence[Event]:
        nonlocal attempts
        attempts += 1
        claim = await ledger.claim(event.tenant_id, event.call_sid)
        assert claim is not None
        return []

    async def release_soon() -> None:
        await asyncio.sleep(0.3)
        holder.execute("ROLLBACK")
        holder.close()

    releasing = asyncio.create_task(release_soon())
    outcome = await run_handler(
        ticket_created(call_sid=CALL),
        notify,
        RetryPolicy(max_attempts=10, initial_backoff=0.05, max_backoff=0.2),
    )
    await releasing
    assert not isinstance(outcome, DeadLettered), outcome
    assert isinstance(outcome, Delivered) and attempts > 1
