from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voiceticket_common.db import create_engine
from voiceticket_jira_writer.ledger import SqlRequestLedger
from voiceticket_sandbox.testing import sandbox, specs  # noqa: F401 - fixtures


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SqlRequestLedger]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    ledger = SqlRequestLedger(engine)
    await ledger.create_schema()
    yield ledger
    await engine.dispose()
