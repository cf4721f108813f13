"""The request ledger: a row claimed before the Jira request is created, completed step by step.

The row is held under a lease (``voiceticket_common.ledger``): one attempt at a time works on a
call, and every write below is fenced by the holder's token. ``create_settles_at`` is set before
each create: the time by which that create's request, if Jira made it, is searchable (the end of
the lease the create runs in, plus the search index's lag). A later attempt that finds no issue
key and no request in search waits until then before it creates (``request_steps``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Boolean, DateTime, Index, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voiceticket_common.ledger import LeasedCallClaim, LeasedLedger, as_utc, purge_rows, utcnow

from .ports import CallerRequest, CreatedRequest, DueRecording, LedgerEntry, RecordingState

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
    repeat_decision: Mapped[str | None] = mapped_column(String(16))
    """Repeat callers: ``new`` or ``existing`` (the call went onto ``issue_key``); None: not taken."""


class CallerRow(Base):
    """A request created for a caller, known by a keyed hash of the number (``voiceticket_common.caller_hash``):
    how a repeat caller's open requests are found. Never the number."""

    __tablename__ = "jira_writer_callers"
    __table_args__ = (Index("ix_jira_writer_callers_caller", "tenant_id", "caller_hash"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    caller_hash: Mapped[str] = mapped_column(String(64))
    issue_key: Mapped[str] = mapped_column(String(64))
    issue_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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
                repeat_decision=row.repeat_decision,
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

    # --- repeat callers (the caller index) ------------------------------------------------------

    async def decide_repeat(self, entry: LedgerEntry, existing: CreatedRequest | None) -> None:
        if existing is None:
            await self._update(entry, repeat_decision="new")
            entry.repeat_decision = "new"
            return
        await self._update(
            entry, repeat_decision="existing", issue_key=existing.issue_key, issue_id=existing.issue_id
        )
        entry.repeat_decision = "existing"
        entry.issue_key, entry.issue_id = existing.issue_key, existing.issue_id

    async def recent_requests(
        self, tenant_id: str, caller_hash: str, since: datetime
    ) -> Sequence[CallerRequest]:
        async with self._ledger.sessions() as session:
            rows = (
                await session.execute(
                    select(CallerRow)
                    .where(
                        CallerRow.tenant_id == tenant_id,
                        CallerRow.caller_hash == caller_hash,
                        CallerRow.created_at >= since,
                    )
                    .order_by(CallerRow.created_at.desc())
                    .limit(20)
                )
            ).scalars()
            return [CallerRequest(r.issue_key, r.issue_id, r.call_sid, as_utc(r.created_at)) for r in rows]

    async def remember_request(self, entry: LedgerEntry, caller_hash: str, request: CreatedRequest) -> None:
        async with self._ledger.sessions.begin() as session:
            await self._ledger.claim(
                session,
                CallerRow,
                tenant_id=entry.tenant_id,
                call_sid=entry.call_sid,
                caller_hash=caller_hash,
                issue_key=request.issue_key,
                issue_id=request.issue_id,
                created_at=self.now(),
            )

    async def forget_call(self, tenant_id: str, call_sid: str) -> None:
        async with self._ledger.sessions.begin() as session:
            await session.execute(
                delete(CallerRow).where(CallerRow.tenant_id == tenant_id, CallerRow.call_sid == call_sid)
            )

    async def purge_callers(self, older_than: timedelta, *, now: datetime, dry_run: bool = False) -> int:
        """The caller index keeps a request no longer than the ledger keeps its call."""
        return await purge_rows(
            self._ledger, CallerRow, CallerRow.created_at < now - older_than, dry_run=dry_run
        )

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
