"""A tenant's block list of callers (issue #16.5), kept as the vault's keyed hash of each number.

An entry holds the tenant, the caller's *subject* (``vault.subject_of``: HMAC-SHA256 of the number
under the vault's own secret, the same hash the call keys carry, so the number itself is stored
nowhere and a database alone cannot be searched for one) and the admin's note. Ingress asks whether
a caller is blocked only for tenants whose list is not empty (``has_entries``, served in its runtime
view as ``blocks_callers``). Entries go with their tenant (ON DELETE CASCADE); a caller's erasure
keeps them on purpose (docs/security-privacy.md, "Erasure and export for one caller").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .crypto import KeyRing
from .db import Base, utcnow
from .vault import subject_of

SUBJECT_PREFIX_CHARS = 16
"""How much of the keyed hash the API shows (as the audit log's ``caller:<16 hex>``)."""


class BlockedCaller(Base):
    __tablename__ = "blocked_callers"
    __table_args__ = (UniqueConstraint("tenant_id", "subject", name="uq_blocked_callers_tenant_subject"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(64))
    """The vault's HMAC-SHA256 of the caller's number (hex); never the number."""
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AlreadyBlocked(Exception):
    """The caller is on the tenant's list already."""


@dataclass(frozen=True)
class BlockEntry:
    """One entry as the API shows it: a prefix of the hash, never the number."""

    id: int
    tenant_id: str
    subject_prefix: str
    note: str | None
    created_at: datetime


def _entry(row: BlockedCaller) -> BlockEntry:
    return BlockEntry(row.id, row.tenant_id, row.subject[:SUBJECT_PREFIX_CHARS], row.note, row.created_at)


async def block(
    session: AsyncSession, keys: KeyRing, tenant_id: str, number: str, note: str | None
) -> BlockEntry:
    """Add ``number`` to ``tenant_id``'s list (the caller commits); AlreadyBlocked if it is there."""
    subject = await subject_of(session, keys, number)
    if await _row(session, tenant_id, subject) is not None:
        raise AlreadyBlocked()
    row = BlockedCaller(tenant_id=tenant_id, subject=subject, note=note, created_at=utcnow())
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:  # a concurrent add of the same caller won
        await session.rollback()
        raise AlreadyBlocked() from None
    return _entry(row)


async def entries(session: AsyncSession, tenant_id: str) -> list[BlockEntry]:
    rows = await session.scalars(
        select(BlockedCaller).where(BlockedCaller.tenant_id == tenant_id).order_by(BlockedCaller.id)
    )
    return [_entry(r) for r in rows]


async def unblock(session: AsyncSession, tenant_id: str, entry_id: int) -> BlockEntry | None:
    """Remove entry ``entry_id`` of ``tenant_id`` (the caller commits); None when there is none."""
    row = await session.scalar(
        select(BlockedCaller).where(BlockedCaller.tenant_id == tenant_id, BlockedCaller.id == entry_id)
    )
    if row is None:
        return None
    await session.delete(row)
    return _entry(row)


async def unblock_number(
    session: AsyncSession, keys: KeyRing, tenant_id: str, number: str
) -> tuple[str, BlockEntry | None]:
    """Remove ``number`` from ``tenant_id``'s list: (its subject, the entry removed or None)."""
    subject = await subject_of(session, keys, number)
    row = await _row(session, tenant_id, subject)
    if row is None:
        return subject, None
    await session.delete(row)
    return subject, _entry(row)


async def is_blocked(session: AsyncSession, keys: KeyRing, tenant_id: str, number: str) -> bool:
    if not await has_entries(session, tenant_id):
        return False  # nothing to match (and no subject secret is made for a read)
    subject = await subject_of(session, keys, number)
    return await _row(session, tenant_id, subject) is not None


async def has_entries(session: AsyncSession, tenant_id: str) -> bool:
    """Whether ``tenant_id`` blocks anyone: ingress skips the lookup for a tenant that does not."""
    found = await session.scalar(
        select(BlockedCaller.id).where(BlockedCaller.tenant_id == tenant_id).limit(1)
    )
    return found is not None


async def entries_of_subject(
    session: AsyncSession, subject: str, tenant_id: str | None = None
) -> Sequence[BlockEntry]:
    """The entries of one caller (a privacy export or erasure), optionally of one tenant."""
    query = select(BlockedCaller).where(BlockedCaller.subject == subject)
    if tenant_id is not None:
        query = query.where(BlockedCaller.tenant_id == tenant_id)
    return [_entry(r) for r in await session.scalars(query.order_by(BlockedCaller.id))]


async def forget_tenant_entries(session: AsyncSession, tenant_id: str) -> int:
    """Delete ``tenant_id``'s entries (the caller commits): a tenant's removal, explicitly, so the
    count is reported and SQLite without foreign keys enforced loses none either."""
    result = await session.execute(delete(BlockedCaller).where(BlockedCaller.tenant_id == tenant_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def _row(session: AsyncSession, tenant_id: str, subject: str) -> BlockedCaller | None:
    row: BlockedCaller | None = await session.scalar(
        select(BlockedCaller).where(BlockedCaller.tenant_id == tenant_id, BlockedCaller.subject == subject)
    )
    return row
