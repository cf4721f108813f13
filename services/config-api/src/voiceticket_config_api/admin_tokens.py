"""Named admin tokens created through the API (issue #13, point 2): a name, a scope, a hash.

A token is ``vtk_`` and 256 random bits (``secrets.token_urlsafe(32)``), shown once when it is
created; the database holds only its SHA-256 digest. A plain hash is right for this (not a
password hash): the token is random, there is no dictionary to try, and the digest of a 256-bit
secret cannot be reversed. A presented token is found by its digest and then compared once more
in constant time (``hmac.compare_digest``).

Scopes: ``admin`` may do everything the admin API offers; ``read-only`` may read it (GET) and is
refused every change with a 403 that says so (``auth.require_role``). Revoking keeps the row
(listed with ``revoked_at``), so a name is never given to a second token and the audit log's
actor keeps meaning one token. The tokens from settings (``CONFIG_API_ADMIN_TOKEN``, actor
``admin``, and ``CONFIG_API_ADMIN_TOKENS``) keep working beside these, with scope ``admin``; they
are listed too (``source: settings``) but can only be removed where they are set.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import DateTime, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, utcnow
from .settings import ADMIN_NAME_PATTERN, RESERVED_ACTORS

log = logging.getLogger("voiceticket_config_api.admin_tokens")

ADMIN_SCOPE: Final = "admin"
READ_ONLY: Final = "read-only"
SCOPES = (ADMIN_SCOPE, READ_ONLY)
Scope = Literal["admin", "read-only"]
TOKEN_PREFIX = "vtk_"  # noqa: S105 - the prefix of generated tokens (secret scanners know it), not a secret
LAST_USED_RESOLUTION = timedelta(seconds=60)
"""``last_used_at`` is written at most once a minute per token (reads do not each cost a write)."""


class AdminToken(Base):
    __tablename__ = "admin_tokens"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256 of the token
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(64), default=None)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class StoredToken:
    name: str
    scope: str


async def find_token(sessions: async_sessionmaker[AsyncSession], presented: str) -> StoredToken | None:
    """The live (not revoked) stored token ``presented`` is, if any; notes its use."""
    if not presented.startswith(TOKEN_PREFIX):
        return None  # not one of ours: no database round trip
    digest = token_digest(presented)
    async with sessions() as session:
        row = await session.scalar(
            select(AdminToken).where(AdminToken.digest == digest, AdminToken.revoked_at.is_(None))
        )
        if row is None or not hmac.compare_digest(row.digest, digest):
            return None
        now = utcnow()
        last = row.last_used_at
        if last is None or _aware(last) < now - LAST_USED_RESOLUTION:
            await session.execute(
                update(AdminToken).where(AdminToken.name == row.name).values(last_used_at=now)
            )
            try:
                await session.commit()
            except Exception as exc:  # noqa: BLE001 - a missed "last used" must not refuse the request
                log.warning("could not note the use of admin token %s: %s", row.name, type(exc).__name__)
        return StoredToken(row.name, row.scope)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # SQLite drops the tz


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=ADMIN_NAME_PATTERN,
        description="who holds the token (the audit log's actor): 1-64 lowercase letters, digits, "
        "'.', '_' or '-'",
        examples=["alice"],
    )
    scope: Scope = Field(
        default="admin", description="admin: everything; read-only: GET requests of the admin API only"
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED_ACTORS:
            raise ValueError(f"the name {v!r} is reserved ({', '.join(sorted(RESERVED_ACTORS))})")
        return v


class TokenOut(BaseModel):
    """A token as listed: never the token, nor its digest."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    scope: Scope
    source: Literal["api", "settings"] = Field(
        default="api",
        description="api: created through POST /v1/admin/tokens; settings: CONFIG_API_ADMIN_TOKEN "
        "or CONFIG_API_ADMIN_TOKENS (removed there, not through the API)",
    )
    created_at: datetime | None = None
    created_by: str | None = None
    last_used_at: datetime | None = Field(default=None, description="to the minute")
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    @field_validator("created_at", "last_used_at", "revoked_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        return None if v is None else _aware(v)


class TokenCreated(TokenOut):
    token: str = Field(description="the token itself: shown this once, stored only as a hash")
