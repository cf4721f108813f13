"""The SMS ledger: claimed before sending, so a redelivered event never sends a second SMS; and the
callers who opted out, remembered by a keyed hash so later calls skip the send."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class MessageRow(Base):
    __tablename__ = "notifier_messages"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32))  # claimed | sent | rejected | unknown | opted-out
    message_sid: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OptOutRow(Base):
    __tablename__ = "notifier_opt_outs"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC-SHA256 hex
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlSmsLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    def _insert(self, table: type[Base]):  # type: ignore[no-untyped-def]
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    async def create_schema(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def claim(self, tenant_id: str, call_sid: str) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                self._insert(MessageRow)
                .values(
                    tenant_id=tenant_id, call_sid=call_sid, outcome="claimed", updated_at=datetime.now(UTC)
                )
                .on_conflict_do_nothing()
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

    async def opted_out_since(self, tenant_id: str, caller_hash: str) -> datetime | None:
        async with self._sessions() as session:
            recorded = await session.scalar(
                select(OptOutRow.recorded_at).where(
                    OptOutRow.tenant_id == tenant_id, OptOutRow.caller_hash == caller_hash
                )
            )
        if recorded is not None and recorded.tzinfo is None:
            recorded = recorded.replace(tzinfo=UTC)  # SQLite drops the zone
        return recorded

    async def record_opt_out(self, tenant_id: str, caller_hash: str) -> None:
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            await session.execute(
                self._insert(OptOutRow)
                .values(tenant_id=tenant_id, caller_hash=caller_hash, recorded_at=now)
                .on_conflict_do_update(index_elements=["tenant_id", "caller_hash"], set_={"recorded_at": now})
            )
