from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from voiceticket_common.db import create_engine
from voiceticket_common.testing import FakeClock
from voiceticket_jira_writer.ledger import SqlRequestLedger
from voiceticket_sandbox.testing import sandbox, specs  # noqa: F401 - fixtures


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SqlRequestLedger]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    ledger = SqlRequestLedger(engine)
    await ledger.create_schema()
    yield ledger
    await engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def clocked_ledger(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqlRequestLedger]:
    """The ledger on a clock the test moves: a 60 s lease, a 15 s search-index lag."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/clocked.db")
    ledger = SqlRequestLedger(
        engine, lease=timedelta(seconds=60), search_index_lag=timedelta(seconds=15), clock=clock
    )
    await ledger.create_schema()
    yield ledger
    await engine.dispose()
