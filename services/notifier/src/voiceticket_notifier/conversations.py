"""The notifier's memory of whom it texted about which request, for two-way SMS and status texts.

One row per request we texted a caller about (after the ticket SMS went out): the request's key,
its call, its line, a keyed hash of the caller's number (to find the request a reply is about; never
the number in a lookup) and the number itself, sealed under the call's data key (to text the
caller when the request's status changes): erasing the caller destroys that key, and the row no
longer opens. Rows go with the message retention (``message_retention_days``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, Index, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from voiceticket_common.ledger import SqlLedger, as_utc, purge_rows, utcnow

from .ledger import Base, OptOutRow

CONVERSATION_PURPOSE = "notifier.conversation.v1"
"""What the sealed number of a conversation row is bound to (the AES-GCM associated data)."""


class ConversationRow(Base):
    __tablename__ = "notifier_conversations"
    __table_args__ = (Index("ix_notifier_conversations_caller", "tenant_id", "caller_hash"),)

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issue_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34))
    line_number: Mapped[str] = mapped_column(String(16))
    caller_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 hex (voiceticket_common.caller_hash)
    caller_sealed: Mapped[str] = mapped_column(Text)
    """The caller's number, sealed under the call's data key (``voiceticket_common.sealing``)."""
    language: Mapped[str | None] = mapped_column(String(8))
    texted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Conversation:
    """A request we texted a caller about; ``caller_sealed`` opens with the call's key."""

    tenant_id: str
    issue_key: str
    call_sid: str
    line_number: str
    caller_sealed: str
    language: str | None
    texted_at: datetime


class SqlConversations(SqlLedger):
    service = "notifier"  # the same migrations as the SMS ledger: one database, one version table
    metadata = Base.metadata

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(engine, clock)
        self._sessions = self._ledger.sessions

    async def remember(self, conversation: Conversation, caller_hash: str) -> None:
        """Note the request we just texted the caller about (the latest one wins for replies)."""
        values = {
            "call_sid": conversation.call_sid,
            "line_number": conversation.line_number,
            "caller_hash": caller_hash,
            "caller_sealed": conversation.caller_sealed,
            "language": conversation.language,
            "texted_at": conversation.texted_at,
        }
        async with self._sessions.begin() as session:
            await session.execute(
                self._ledger.insert(ConversationRow)
                .values(tenant_id=conversation.tenant_id, issue_key=conversation.issue_key, **values)
                .on_conflict_do_update(index_elements=["tenant_id", "issue_key"], set_=values)
            )

    async def latest_for(self, tenant_id: str, caller_hash: str, since: datetime) -> Conversation | None:
        """The request we last texted this caller about, no earlier than ``since``."""
        async with self._sessions() as session:
            row = await session.scalar(
                select(ConversationRow)
                .where(
                    ConversationRow.tenant_id == tenant_id,
                    ConversationRow.caller_hash == caller_hash,
                    ConversationRow.texted_at >= since,
                )
                .order_by(ConversationRow.texted_at.desc())
                .limit(1)
            )
            return _conversation(row) if row is not None else None

    async def of_request(self, tenant_id: str, issue_key: str) -> Conversation | None:
        async with self._sessions() as session:
            row = await session.get(ConversationRow, (tenant_id, issue_key))
            return _conversation(row) if row is not None else None

    async def forget_opt_out(self, tenant_id: str, caller_hash: str) -> bool:
        """START: the caller opted in again; True when an opt-out was remembered."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(OptOutRow).where(
                    OptOutRow.tenant_id == tenant_id, OptOutRow.caller_hash == caller_hash
                )
            )
        return bool(getattr(result, "rowcount", 0))

    async def purge(self, older_than: timedelta, *, now: datetime, dry_run: bool = False) -> int:
        return await purge_rows(
            self._ledger, ConversationRow, ConversationRow.texted_at < now - older_than, dry_run=dry_run
        )


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        tenant_id=row.tenant_id,
        issue_key=row.issue_key,
        call_sid=row.call_sid,
        line_number=row.line_number,
        caller_sealed=row.caller_sealed,
        language=row.language,
        texted_at=as_utc(row.texted_at),
    )
