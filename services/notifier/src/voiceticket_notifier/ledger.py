"""The SMS ledger: claimed before sending, so a redelivered event never sends a second SMS; and the
callers who opted out, remembered by a keyed hash so later calls skip the send."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voiceticket_common.ledger import CallClaim, SqlLedger


class Base(DeclarativeBase):
    pass


class MessageRow(CallClaim, Base):
    __tablename__ = "notifier_messages"

    outcome: Mapped[str] = mapped_column(String(32))  # claimed | sent | rejected | unknown | opted-out
    message_sid: Mapped[str | None] = mapped_column(String(64))


class OptOutRow(Base):
    __tablename__ = "notifier_opt_outs"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC-SHA256 hex
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlSmsLedger(SqlLedger):
    metadata = Base.metadata

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._sessions = self._ledger.sessions

    async def claim(self, tenant_id: str, call_sid: str) -> bool:
        async with self._sessions.begin() as session:
            return await self._ledger.claim(
                session,
                MessageRow,
                tenant_id=tenant_id,
                call_sid=call_sid,
                outcome="claimed",
                updated_at=datetime.now(UTC),
            )

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
                self._ledger.insert(OptOutRow)
                .values(tenant_id=tenant_id, caller_hash=caller_hash, recorded_at=now)
                .on_conflict_do_update(index_elements=["tenant_id", "caller_hash"], set_={"recorded_at": now})
            )
