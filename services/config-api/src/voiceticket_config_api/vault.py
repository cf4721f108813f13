"""The key vault: one data key per call, wrapped by the master keys, destroyed to erase the call.

Every personal field an event carries is sealed under its call's data key wherever it is written
(``voiceticket_common.sealing``). The vault issues those keys, and finds a caller's calls again
for an erasure or an export by a keyed hash of the number (the *subject*), never the number.
Destroying a key (an erasure, a tenant's removal) leaves a tombstone: the key is gone, and the
call can never be given a new one, so an event of the call still in flight cannot be sealed
readable again. Tombstones go after ``TOMBSTONE_DAYS``, when no record of the call is left on the
bus (event retention is days, dead letters a few weeks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import DateTime, String, Text, delete, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from voiceticket_common.sealing import CallErased as SealedCallErased
from voiceticket_common.sealing import CallKey

from .crypto import KeyRing
from .db import Base, utcnow

TOMBSTONE_DAYS = 60
"""How long an erased call's tombstone is kept: longer than any record of it can stay on the bus."""
SUBJECT_SECRET = "subject-hmac"  # noqa: S105 - the name of a generated secret, not a secret

ERASED_BY_CALLER = "caller_erasure"
ERASED_BY_TENANT_REMOVAL = "tenant_removed"


class CallKeyRow(Base):
    __tablename__ = "call_keys"

    # No foreign key to tenants: a removed tenant's tombstones must outlive it.
    tenant_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), index=True)
    """HMAC-SHA256 of the caller's number under the vault's subject secret (hex)."""
    key_id: Mapped[str] = mapped_column(String(40))
    wrapped_key: Mapped[str | None] = mapped_column(Text)
    """The data key encrypted by the primary master key (``<kid>:<token>``); None once destroyed."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    erased_because: Mapped[str | None] = mapped_column(String(32))


class VaultSecret(Base):
    """Secrets the vault generates for itself, wrapped by the master keys (rotated with them)."""

    __tablename__ = "vault_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    wrapped: Mapped[str] = mapped_column(Text)


class CallErased(Exception):
    """The call's key was destroyed: it is never issued again."""


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str
    """base64 of the 32-byte data key."""


@dataclass(frozen=True)
class CallRecord:
    """What the vault knows of one call of a subject (no personal data)."""

    tenant_id: str
    call_sid: str
    created_at: datetime
    erased_at: datetime | None
    erased_because: str | None


async def subject_secret(session: AsyncSession, keys: KeyRing) -> bytes:
    """The vault's HMAC secret for subjects, created on first use."""

    row = await session.get(VaultSecret, SUBJECT_SECRET)
    if row is None:
        session.add(
            VaultSecret(name=SUBJECT_SECRET, wrapped=keys.encrypt(base64.b64encode(os.urandom(32)).decode()))
        )
        try:
            await session.flush()
        except IntegrityError:  # another request created it first
            await session.rollback()
        row = await session.get(VaultSecret, SUBJECT_SECRET)
        if row is None:
            raise RuntimeError("the vault's subject secret could not be created")
    return base64.b64decode(keys.decrypt(row.wrapped))


async def subject_of(session: AsyncSession, keys: KeyRing, number: str) -> str:
    return _subject(await subject_secret(session, keys), number)


def _subject(secret: bytes, number: str) -> str:
    return hmac.new(secret, number.strip().encode(), hashlib.sha256).hexdigest()


def _issued(row: CallKeyRow, keys: KeyRing) -> IssuedKey:
    if row.wrapped_key is None:
        raise CallErased(row.call_sid)
    return IssuedKey(key_id=row.key_id, key=keys.decrypt(row.wrapped_key))


async def issue_key(
    session: AsyncSession, keys: KeyRing, tenant_id: str, call_sid: str, caller_number: str
) -> IssuedKey:
    """The call's key, created on first use (ingress); :class:`CallErased` if it was destroyed."""

    row = await session.get(CallKeyRow, (tenant_id, call_sid))
    if row is not None:
        return _issued(row, keys)
    secret = base64.b64encode(os.urandom(32)).decode()
    row = CallKeyRow(
        tenant_id=tenant_id,
        call_sid=call_sid,
        subject=await subject_of(session, keys, caller_number),
        key_id=f"ck_{uuid.uuid4().hex}",
        wrapped_key=keys.encrypt(secret),
        created_at=utcnow(),
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:  # a concurrent first use won: serve its key
        await session.rollback()
        existing = await session.get(CallKeyRow, (tenant_id, call_sid))
        if existing is None:
            raise
        return _issued(existing, keys)
    return IssuedKey(key_id=row.key_id, key=secret)


@dataclass(frozen=True)
class KeyRequest:
    """One call's key asked for in a batch (``issue_keys``)."""

    tenant_id: str
    call_sid: str
    caller_number: str


async def issue_keys(
    session: AsyncSession, keys: KeyRing, requests: Sequence[KeyRequest]
) -> list[IssuedKey | CallErased]:
    """``issue_key`` for many calls in one transaction (ingress batches the calls starting at the
    same moment): each call's existing key, or a new one, or :class:`CallErased` if destroyed;
    in the order asked. The subject secret is read once and the new rows commit together."""

    wanted = {(r.tenant_id, r.call_sid): r for r in requests}
    existing: dict[tuple[str, str], CallKeyRow] = {}
    if wanted:
        rows = await session.scalars(
            select(CallKeyRow).where(tuple_(CallKeyRow.tenant_id, CallKeyRow.call_sid).in_(list(wanted)))
        )
        existing = {(row.tenant_id, row.call_sid): row for row in rows}
    fresh: dict[tuple[str, str], IssuedKey] = {}
    missing = [r for at, r in wanted.items() if at not in existing]
    if missing:
        secret = await subject_secret(session, keys)
        now = utcnow()
        for request in missing:
            data_key = base64.b64encode(os.urandom(32)).decode()
            row = CallKeyRow(
                tenant_id=request.tenant_id,
                call_sid=request.call_sid,
                subject=_subject(secret, request.caller_number),
                key_id=f"ck_{uuid.uuid4().hex}",
                wrapped_key=keys.encrypt(data_key),
                created_at=now,
            )
            session.add(row)
            fresh[(request.tenant_id, request.call_sid)] = IssuedKey(key_id=row.key_id, key=data_key)
        try:
            await session.commit()
        except IntegrityError:  # another replica created one of them first: one at a time then
            await session.rollback()
            return [await _issued_or_erased(session, keys, r) for r in requests]
    answers: list[IssuedKey | CallErased] = []
    for request in requests:
        at = (request.tenant_id, request.call_sid)
        if at in fresh:
            answers.append(fresh[at])
            continue
        try:
            answers.append(_issued(existing[at], keys))
        except CallErased as exc:
            answers.append(exc)
    return answers


async def _issued_or_erased(
    session: AsyncSession, keys: KeyRing, request: KeyRequest
) -> IssuedKey | CallErased:
    try:
        return await issue_key(session, keys, request.tenant_id, request.call_sid, request.caller_number)
    except CallErased as exc:
        return exc


async def existing_key(
    session: AsyncSession, keys: KeyRing, tenant_id: str, call_sid: str
) -> IssuedKey | None:
    """The call's key; None if it was never issued; :class:`CallErased` if destroyed."""

    row = await session.get(CallKeyRow, (tenant_id, call_sid))
    return None if row is None else _issued(row, keys)


async def calls_of(
    session: AsyncSession, keys: KeyRing, number: str, tenant_id: str | None = None
) -> list[CallRecord]:
    """The calls the vault holds for the caller ``number`` (optionally of one tenant), oldest first."""

    subject = await subject_of(session, keys, number)
    query = select(CallKeyRow).where(CallKeyRow.subject == subject)
    if tenant_id is not None:
        query = query.where(CallKeyRow.tenant_id == tenant_id)
    rows = (await session.scalars(query.order_by(CallKeyRow.created_at))).all()
    return [CallRecord(r.tenant_id, r.call_sid, r.created_at, r.erased_at, r.erased_because) for r in rows]


async def destroy_keys(
    session: AsyncSession, calls: Sequence[tuple[str, str]], because: str, now: datetime | None = None
) -> int:
    """Destroy the keys of ``calls`` ((tenant, CallSid) pairs), leaving tombstones; returns how
    many live keys were destroyed. The caller commits."""

    destroyed = 0
    for tenant_id, call_sid in calls:
        result = await session.execute(
            update(CallKeyRow)
            .where(
                CallKeyRow.tenant_id == tenant_id,
                CallKeyRow.call_sid == call_sid,
                CallKeyRow.wrapped_key.is_not(None),
            )
            .values(wrapped_key=None, erased_at=now or utcnow(), erased_because=because)
        )
        destroyed += int(getattr(result, "rowcount", 0) or 0)
    return destroyed


async def destroy_tenant_keys(session: AsyncSession, tenant_id: str, now: datetime | None = None) -> int:
    """Destroy every key of ``tenant_id`` (its removal); the caller commits."""

    result = await session.execute(
        update(CallKeyRow)
        .where(CallKeyRow.tenant_id == tenant_id, CallKeyRow.wrapped_key.is_not(None))
        .values(wrapped_key=None, erased_at=now or utcnow(), erased_because=ERASED_BY_TENANT_REMOVAL)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_tombstones(session: AsyncSession, now: datetime | None = None) -> int:
    """Delete tombstones older than ``TOMBSTONE_DAYS``; the caller commits."""

    cutoff = (now or utcnow()) - timedelta(days=TOMBSTONE_DAYS)
    result = await session.execute(
        delete(CallKeyRow).where(CallKeyRow.wrapped_key.is_(None), CallKeyRow.erased_at <= cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def rewrap_all(session: AsyncSession, keys: KeyRing) -> int:
    """Re-encrypt every live data key and the subject secret under the primary master key (the
    master-key rotation); returns how many were re-encrypted. The caller commits."""

    count = 0
    for secret in (await session.scalars(select(VaultSecret))).all():
        if KeyRing.kid_of(secret.wrapped) != keys.primary_kid:
            secret.wrapped = keys.encrypt(keys.decrypt(secret.wrapped))
            count += 1
    rows = (await session.scalars(select(CallKeyRow).where(CallKeyRow.wrapped_key.is_not(None)))).all()
    for row in rows:
        assert row.wrapped_key is not None
        if KeyRing.kid_of(row.wrapped_key) != keys.primary_kid:
            row.wrapped_key = keys.encrypt(keys.decrypt(row.wrapped_key))
            count += 1
    return count


class OpeningKeys:
    """The vault as ``sealing.CallKeys`` inside config-api, which opens sealed records (a caller's
    export, the calls view) and never seals any."""

    def __init__(
        self, sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]], keys: KeyRing
    ) -> None:
        self._sessions = sessions
        self._keys = keys

    async def key_for_sealing(self, event: object) -> CallKey:  # pragma: no cover - never seals
        raise SealedCallErased("config-api does not seal events")

    async def erased(self, tenant_id: str, call_sid: str) -> bool:  # pragma: no cover - not asked
        return False

    async def key_for_opening(self, tenant_id: str, call_sid: str) -> CallKey:
        async with self._sessions() as session:
            try:
                issued = await existing_key(session, self._keys, tenant_id, call_sid)
            except CallErased:
                raise SealedCallErased("erased") from None
        if issued is None:
            raise SealedCallErased("no key", destroyed=False)
        return CallKey(key_id=issued.key_id, secret=base64.b64decode(issued.key))
