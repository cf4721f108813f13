"""Claim-once ledgers: a row inserted before a side effect that must happen once per call (a Jira
request, an SMS), so that a redelivered event finds it and does not do it again.

Inserting the row is the claim: ``INSERT … ON CONFLICT DO NOTHING`` lets exactly one attempt's
insert land, atomically, on Postgres (production) and on SQLite (embedded and local runs) alike;
both dialects spell it the same, but SQLAlchemy builds it from the dialect's own ``insert``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Self

from sqlalchemy import DateTime, MetaData, String
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

Insert = postgresql.Insert | sqlite.Insert


class CallClaim:
    """Columns of a row claimed once per call: its key (tenant, CallSid) and when it last changed.

    A mixin for a service's mapped ledger class: ``class RequestRow(CallClaim, Base)``.
    """

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClaimOnceLedger:
    """Sessions, schema and claims for a service's ledger tables (``metadata``)."""

    def __init__(self, engine: AsyncEngine, metadata: MetaData) -> None:
        self._engine = engine
        self._metadata = metadata
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def create_schema(self) -> None:
        # Alembic migrations come with the persistence issue; tables are created if missing (an
        # existing table does not gain new columns: there are no deployments to migrate yet).
        async with self._engine.begin() as conn:
            await conn.run_sync(self._metadata.create_all)

    def insert(self, table: type[Any]) -> Insert:
        """An INSERT into ``table`` (a mapped class) with the engine's ON CONFLICT clauses."""
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def claim(self, session: AsyncSession, table: type[Any], **row: object) -> bool:
        """Insert ``row`` unless its key is already there: True when this attempt made the claim."""
        # On the session's connection: in its transaction, and the cursor's rowcount is the answer.
        connection = await session.connection()
        result = await connection.execute(self.insert(table).values(**row).on_conflict_do_nothing())
        return result.rowcount == 1


class SqlLedger:
    """Base of a service's ledger: the service's tables (``metadata``) on one engine."""

    metadata: ClassVar[MetaData]

    def __init__(self, engine: AsyncEngine) -> None:
        self._ledger = ClaimOnceLedger(engine, self.metadata)

    async def create_schema(self) -> None:
        await self._ledger.create_schema()

    @classmethod
    async def with_schema(cls, engine: AsyncEngine) -> Self:
        """The ledger on ``engine``, its tables created if missing."""
        ledger = cls(engine)
        await ledger.create_schema()
        return ledger
