"""The request ledger: a row claimed before the Jira request is created, completed step by step."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voiceticket_common.ledger import CallClaim, SqlLedger

from .ports import CreatedRequest, LedgerEntry


class Base(DeclarativeBase):
    pass


class RequestRow(CallClaim, Base):
    __tablename__ = "jira_writer_requests"

    issue_key: Mapped[str | None] = mapped_column(String(64))
    issue_id: Mapped[str | None] = mapped_column(String(64))
    property_set: Mapped[bool] = mapped_column(Boolean, default=False)
    comment_added: Mapped[bool] = mapped_column(Boolean, default=False)
    attachment_added: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlRequestLedger(SqlLedger):
    metadata = Base.metadata

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
        async with self._ledger.sessions.begin() as session:
            fresh = await self._ledger.claim(session, RequestRow, **values)
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
        async with self._ledger.sessions.begin() as session:
            row = await session.get(RequestRow, (entry.tenant_id, entry.call_sid))
            if row is None:  # claimed rows are never deleted while their call is in flight
                raise LookupError(f"no ledger row for call {entry.call_sid}")
            for name, value in changes.items():
                setattr(row, name, value)
            row.updated_at = datetime.now(UTC)
