"""The request ledger: a row claimed before the Jira request is created, completed step by step.

The row is held under a lease (``voiceticket_common.ledger``): one attempt at a time works on a
call, and every write below is fenced by the holder's token. ``create_settles_at`` is set before
each create: the time by which that create's request, if Jira made it, is searchable (the end of
the lease the create runs in, plus the search index's lag). A later attempt that finds no issue
key and no request in search waits until then before it creates (``request_steps``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Boolean, DateTime, String, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voiceticket_common.ledger import LeasedCallClaim, LeasedLedger, as_utc, utcnow

from .ports import CreatedRequest, DueRecording, LedgerEntry, RecordingState

DEFAULT_LEASE = timedelta(seconds=60)
DEFAULT_INDEX_LAG = timedelta(seconds=15)


class Base(DeclarativeBase):
    pass


class RequestRow(LeasedCallClaim, Base):
    __tablename__ = "jira_writer_requests"

    issue_key: Mapped[str | None] = mapped_column(String(64))
    issue_id: Mapped[str | None] = mapped_column(String(64))
    property_set: Mapped[bool] = mapped_column(Boolean, default=False)
    comment_added: Mapped[bool] = mapped_column(Boolean, default=False)
    attachment_added: Mapped[bool] = mapped_column(Boolean, default=False)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    create_settles_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Set when a create was started and its outcome not recorded: when its request is searchable."""
    # Recording retention (the tenant's recording_retention): what to delete at Twilio, and when.
    recording_sid: Mapped[str | None] = mapped_column(String(34))
    line_number: Mapped[str | None] = mapped_column(String(32))
    """The called support line (not the caller): how the purge finds the tenant's Twilio account."""
    recording_delete_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    recording_deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SqlRequestLedger(LeasedLedger):
    service = "jira-writer"  # its migrations: voiceticket_jira_writer.migrations
    metadata = Base.metadata
    table = RequestRow

    def __init__(
        self,
        engine: AsyncEngine,
        lease: timedelta = DEFAULT_LEASE,
        search_index_lag: timedelta = DEFAULT_INDEX_LAG,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(engine, lease, clock)
        self.search_index_lag = search_index_lag

    async def claim(self, tenant_id: str, call_sid: str) -> LedgerEntry:
        now = self.now()
        initial = {
            "claimed_at": now,
            "property_set": False,
            "comment_added": False,
            "attachment_added": False,
        }
        key = {"tenant_id": tenant_id, "call_sid": call_sid}
        async with self._ledger.sessions.begin() as session:
            lease = await self._ledger.acquire(
                session, RequestRow, key, now=now, duration=self.lease, **initial
            )
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
                fresh=lease.fresh,
                issue_key=row.issue_key,
                issue_id=row.issue_id,
                property_set=row.property_set,
                comment_added=row.comment_added,
                attachment_added=row.attachment_added,
                token=lease.token,
                lease_until=lease.until,
                create_settles_at=as_utc(row.create_settles_at) if row.create_settles_at else None,
            )

    async def begin_create(self, entry: LedgerEntry) -> datetime:
        now = self.now()
        until = now + self.lease
        settles = until + self.search_index_lag
        await self._update(entry, lease_until=until, create_settles_at=settles)
        entry.lease_until, entry.create_settles_at, entry.create_started = until, settles, True
        return until

    async def record_created(self, entry: LedgerEntry, request: CreatedRequest) -> None:
        await self._update(
            entry, issue_key=request.issue_key, issue_id=request.issue_id, create_settles_at=None
        )
        entry.issue_key, entry.issue_id = request.issue_key, request.issue_id
        entry.create_settles_at, entry.create_started = None, False

    async def renew(self, entry: LedgerEntry) -> None:
        until = self.now() + self.lease
        await self._update(entry, lease_until=until)
        entry.lease_until = until

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

    async def release(self, entry: LedgerEntry) -> None:
        changes: dict[str, object] = {}
        if entry.create_started and entry.issue_key is None and not entry.create_outcome_unknown:
            # This attempt's create ended (Jira answered it with an error): its request, if Jira
            # made it anyway, is searchable after the index's lag from now, not from the end of
            # the lease. A create that got no answer may still be made later: not shortened.
            settles = self.now() + self.search_index_lag
            if entry.create_settles_at is None or settles < entry.create_settles_at:
                changes["create_settles_at"] = entry.create_settles_at = settles
        await self._release(entry, **changes)

    # --- retention ---------------------------------------------------------------------------

    async def recording_state(self, entry: LedgerEntry) -> RecordingState:
        """Whether the call's recording deletion is scheduled, and whether it is done."""
        async with self._ledger.sessions() as session:
            row = (
                await session.execute(
                    select(RequestRow.recording_delete_at, RequestRow.recording_deleted_at).where(
                        RequestRow.tenant_id == entry.tenant_id, RequestRow.call_sid == entry.call_sid
                    )
                )
            ).one()
        return RecordingState(scheduled=row[0] is not None, deleted=row[1] is not None)

    async def schedule_recording_deletion(
        self, entry: LedgerEntry, recording_sid: str, line_number: str, delete_at: datetime
    ) -> None:
        await self._update(
            entry, recording_sid=recording_sid, line_number=line_number, recording_delete_at=delete_at
        )

    async def mark_recording_deleted(self, entry: LedgerEntry) -> None:
        await self._update(entry, recording_deleted_at=self.now())

    async def due_recording_deletions(self, now: datetime, limit: int = 500) -> list[DueRecording]:
        """Recordings whose deletion is due and not done, oldest first."""
        async with self._ledger.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        RequestRow.tenant_id,
                        RequestRow.call_sid,
                        RequestRow.line_number,
                        RequestRow.recording_sid,
                    )
                    .where(
                        RequestRow.recording_delete_at <= now,
                        RequestRow.recording_deleted_at.is_(None),
                        RequestRow.recording_sid.is_not(None),
                    )
                    .order_by(RequestRow.recording_delete_at)
                    .limit(limit)
                )
            ).all()
        return [DueRecording(r[0], r[1], r[2] or "", r[3] or "") for r in rows]

    async def record_recording_deleted(self, tenant_id: str, call_sid: str) -> None:
        """The purge's mark (it holds no lease: marking a deletion done is idempotent)."""
        async with self._ledger.sessions.begin() as session:
            await session.execute(
                update(RequestRow)
                .where(RequestRow.tenant_id == tenant_id, RequestRow.call_sid == call_sid)
                .values(recording_deleted_at=self.now())
            )

    async def purge(
        self, older_than: timedelta, *, now: datetime | None = None, dry_run: bool = False
    ) -> int:
        """Delete the rows of calls last touched more than ``older_than`` before ``now`` (default:
        the ledger's clock) that nobody holds and whose recording is not waiting to be deleted;
        returns how many (would) go."""
        return await self._purge_unheld(
            older_than,
            now,
            RequestRow.recording_delete_at.is_(None) | RequestRow.recording_deleted_at.is_not(None),
            dry_run=dry_run,
        )
