"""Database engines for the services that own state (ledgers, config).

Postgres (``postgresql+asyncpg://``) in production, SQLite (``sqlite+aiosqlite://``) for the
embedded single-process mode and local runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(url: str) -> AsyncEngine:
    """An engine for ``url``. ``hide_parameters``: a database error's message never carries a
    statement's values (numbers, transcripts, sealed fields)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection: SQLite takes one writer at a time anyway, and writers queued on the pool
        # wait in asyncio, where writers racing on the file wait in SQLite's busy handler (which
        # sleeps and retries, and past its timeout fails: a burst of 150 calls got "database is
        # locked" in the embedded runtime). Nothing in a ledger holds one session while opening
        # another.
        engine = create_async_engine(url, hide_parameters=True, pool_size=1, max_overflow=0, pool_timeout=60)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True, hide_parameters=True)


@asynccontextmanager
async def open_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """``create_engine`` for as long as the context is open; its pool is disposed on exit."""

    engine = create_engine(url)
    try:
        yield engine
    finally:
        await engine.dispose()
