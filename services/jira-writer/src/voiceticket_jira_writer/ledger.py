"""The request ledger: a row claimed before the Jira request is created, completed step by step."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, String, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .ports import CreatedRequest, LedgerEntry


class Base(DeclarativeBase):
    pass


class RequestRow(Base):
    __tablename__ = "jira_writer_requests"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    issue_key: Mapped[str | None] = mapped_column(String(64))
    issue_id: Mapped[str | None] = mapped_column(String(64))
    property_set: Mapped[bool] = mapped_column(Boolean, default=False)
    comment_added: Mapped[bool] = mapped_column(Boolean, default=False)
    attachment_added: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlRequestLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def create_schema(self) -> None:
        # Alembic migrations come with the persistence issue; the table is created if missing
        # (an existing table does not gain new columns: there are no deployments to migrate yet).
        async with self._engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def claim(self, tenant_id: str, call_sid: str) -> LedgerEntry:
        now = datetime.now(UTC)
        values = {
            "tenant_id": tenant_id,
            "call_sid": call_sid,
            "claimed_at": now,
            "updated_at": now,
            "property_set": False,
            "comment_added": False,
            "attachment_added": False,
        }
        dialect = self._engine.dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(RequestRow)
        async with self._sessions.begin() as session:
            result = await session.execute(insert.values(**values).on_conflict_do_nothing())
            fresh = result.rowcount == 1
            row = (
                await session.execute(
                    select(RequestRow).where(
                        RequestRow.tenant_id == tenant_id, RequestRow.call_sid == call_sid
                    )
                )
            ).scalar_one()
            return LedgerEntry(
                tenant_id=tenant_id,
                call_sid=call_sid,
                fresh=fresh,
                issue_key=row.issue_key,
                issue_id=row.issue_id,
                property_set=row.property_set,
                comment_added=row.comment_added,
                attachment_added=row.attachment_added,
            )

    async def record_created(self, entry: LedgerEntry, request: CreatedRequest) -> None:
        await self._update(entry, issue_key=request.issue_key, issue_id=request.issue_id)
        entry.issue_key, entry.issue_id = request.issue_key, request.issue_id

    async def mark(
        self,
        entry: LedgerEntry,
        *,
        property_set: bool = False,
        comment_added: bool = False,
        attachment_added: bool = False,
    ) -> None:
        changes = {}
        if property_set:
            changes["property_set"] = entry.property_set = True
        if comment_added:
            changes["comment_added"] = entry.comment_added = True
        if attachment_added:
            changes["attachment_added"] = entry.attachment_added = True
        await self._update(entry, **changes)

    async def _update(self, entry: LedgerEntry, **changes: object) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(RequestRow, (entry.tenant_id, entry.call_sid))
            assert row is not None
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_at = datetime.now(UTC)
