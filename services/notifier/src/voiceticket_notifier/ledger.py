"""The SMS ledger: claimed before sending, so a redelivered event never sends a second SMS; and the
callers who opted out, remembered by a keyed hash so later calls skip the send.

A claim is held under a lease (``voiceticket_common.ledger``) and every write is fenced by the
holder's token. ``send_started_at`` is written just before the message goes to Twilio: a row still
``claimed`` whose lease expired (its holder crashed) either never started a send (send) or did and
its outcome is unknown (look at Twilio's Messages list first, ``handlers``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import DateTime, String, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from voiceticket_common.ledger import LeasedCallClaim, LeasedLedger, as_utc, purge_rows, utcnow

from .ports import SmsClaim

CLAIMED = "claimed"
DEFAULT_LEASE = timedelta(seconds=60)


class Base(DeclarativeBase):
    pass


class MessageRow(LeasedCallClaim, Base):
    __tablename__ = "notifier_messages"

    outcome: Mapped[str] = mapped_column(String(32))  # claimed | sent | rejected | unknown | opted-out
    message_sid: Mapped[str | None] = mapped_column(String(64))
    send_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When an attempt last started sending: from then on the SMS may exist at Twilio."""


class OptOutRow(Base):
    __tablename__ = "notifier_opt_outs"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    caller_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # HMAC-SHA256 hex
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlSmsLedger(LeasedLedger):
    service = "notifier"  # its migrations: voiceticket_notifier.migrations
    metadata = Base.metadata
    table = MessageRow

    def __init__(
        self,
        engine: AsyncEngine,
        lease: timedelta = DEFAULT_LEASE,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(engine, lease, clock)
        self._sessions = self._ledger.sessions

    async def claim(self, tenant_id: str, call_sid: str) -> SmsClaim | None:
        now = self.now()
        key = {"tenant_id": tenant_id, "call_sid": call_sid}
        async with self._sessions.begin() as session:
            row = await session.get(MessageRow, (tenant_id, call_sid))
            if row is not None and row.outcome != CLAIMED:
                return None  # settled: sent, rejected, unknown or opted out
            lease = await self._ledger.acquire(
                session, MessageRow, key, now=now, duration=self.lease, outcome=CLAIMED
            )
            started = (
                await session.execute(
                    select(MessageRow.send_started_at).where(
                        MessageRow.tenant_id == tenant_id, MessageRow.call_sid == call_sid
                    )
                )
            ).scalar_one()
        return SmsClaim(
            tenant_id,
            call_sid,
            lease.token,
            fresh=lease.fresh,
            send_started_at=as_utc(started) if started is not None else None,
        )

    async def begin_send(self, claim: SmsClaim) -> datetime:
        now = self.now()
        until = now + self.lease
        await self._update(claim, send_started_at=now, lease_until=until)
        return until

    async def release(self, claim: SmsClaim, *, sent_nothing: bool = False) -> None:
        await self._release(claim, **({"send_started_at": None} if sent_nothing else {}))

    async def complete(self, claim: SmsClaim, outcome: str, message_sid: str | None) -> None:
        await self._update(
            claim, outcome=outcome, message_sid=message_sid, lease_owner=None, lease_until=None
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
        now = self.now()
        async with self._sessions.begin() as session:
            await session.execute(
                self._ledger.insert(OptOutRow)
                .values(tenant_id=tenant_id, caller_hash=caller_hash, recorded_at=now)
                .on_conflict_do_update(index_elements=["tenant_id", "caller_hash"], set_={"recorded_at": now})
            )

    async def purge(
        self,
        older_than: timedelta,
        opt_outs_older_than: timedelta,
        *,
        now: datetime | None = None,
        dry_run: bool = False,
    ) -> dict[str, int]:
        """Delete message rows of calls last touched more than ``older_than`` ago that nobody
        holds, and opt-out hashes recorded more than ``opt_outs_older_than`` ago (past the recheck
        window they are not used any more); returns how many of each (would) go. ``now``: the
        ledger's clock unless given."""
        now = now or self.now()
        messages = await self._purge_unheld(older_than, now, dry_run=dry_run)
        opt_outs = await purge_rows(
            self._ledger, OptOutRow, OptOutRow.recorded_at < now - opt_outs_older_than, dry_run=dry_run
        )
        return {"messages": messages, "opt_outs": opt_outs}
