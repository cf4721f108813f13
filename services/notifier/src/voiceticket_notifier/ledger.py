"""The SMS ledger: claimed before sending, so a redelivered event never sends a second SMS."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class MessageRow(Base):
    __tablename__ = "notifier_messages"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32))  # claimed | sent | rejected | disabled
    message_sid: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlSmsLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def create_schema(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def claim(self, tenant_id: str, call_sid: str) -> bool:
        insert = (postgresql.insert if self._engine.dialect.name == "postgresql" else sqlite.insert)(
            MessageRow
        )
        async with self._sessions.begin() as session:
            result = await session.execute(
                insert.values(
                    tenant_id=tenant_id, call_sid=call_sid, outcome="claimed", updated_at=datetime.now(UTC)
                ).on_conflict_do_nothing()
            )
            return result.rowcount == 1

    async def release(self, tenant_id: str, call_sid: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                delete(MessageRow).where(
                    MessageRow.tenant_id == tenant_id,
                    MessageRow.call_sid == call_sid,
                    MessageRow.outcome == "claimed",
                )
            )

    async def complete(self, tenant_id: str, call_sid: str, outcome: str, message_sid: str | None) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(MessageRow)
                .where(MessageRow.tenant_id == tenant_id, MessageRow.call_sid == call_sid)
                .values(outcome=outcome, message_sid=message_sid, updated_at=datetime.now(UTC))
            )
