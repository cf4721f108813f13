"""A tenant's block list of callers: the admin API (add, list, remove) and ingress's runtime check.

The admin sends a number; only its keyed hash (``block_list.py``) and the note are stored, and the
answers, the audit log (target ``caller:<16 hex>``, as privacy requests) and the logs show a prefix
of the hash, never the number. Ingress sends the caller's number in a request body (never in a URL,
where proxies and access logs would keep it). A change is announced as ``config.changed`` of the
tenant, so ingress learns at once whether the tenant blocks anyone (``blocks_callers``) and drops
the answers it cached.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from voiceticket_common.events import ConfigChangeKind

from . import block_list
from .audit import AuditDep, audited
from .auth import ADMIN, require_role
from .block_list import AlreadyBlocked, BlockEntry
from .db import Tenant
from .deps import Keys, Session
from .openapi import AUTH_ERRORS, errors
from .outbox import record_change, tenant_lines
from .routes_privacy import caller_reference
from .schemas import E164, TENANT_ID_HELP, TENANT_ID_PATTERN

log = logging.getLogger(__name__)

admin_router = APIRouter(
    prefix="/v1/tenants/{tenant_id}/blocked-callers",
    tags=["block list"],
    dependencies=[Depends(require_role(ADMIN))],
    responses=AUTH_ERRORS,
)
runtime_router = APIRouter(prefix="/v1/runtime", tags=["runtime"])

TenantIdPath = Annotated[str, Path(pattern=TENANT_ID_PATTERN, description=TENANT_ID_HELP, examples=["acme"])]
UNKNOWN_TENANT = errors(404, described={404: "unknown tenant"})


class BlockIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    number: E164 = Field(
        description="the caller's number, E.164: only its keyed hash is stored", examples=["+14155550123"]
    )
    note: str | None = Field(
        default=None,
        max_length=200,
        description="why the caller is blocked, shown in the list (no personal data: it is stored as is)",
        examples=["robocaller, reported 2026-12-01"],
    )


class NumberIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    number: E164 = Field(description="the blocked caller's number, E.164", examples=["+14155550123"])


class BlockedCallerOut(BaseModel):
    id: int
    tenant_id: str
    subject_prefix: str = Field(
        description="the first 16 hex digits of the number's keyed hash (the audit log's caller:<prefix>); "
        "the number itself is not stored"
    )
    note: str | None
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v  # SQLite drops the tz


class BlockCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    caller_number: str = Field(
        min_length=1, max_length=64, description="Twilio `From`: hashed here, never stored or logged"
    )


class BlockCheckOut(BaseModel):
    blocked: bool


def _out(entry: BlockEntry) -> BlockedCallerOut:
    return BlockedCallerOut(
        id=entry.id,
        tenant_id=entry.tenant_id,
        subject_prefix=entry.subject_prefix,
        note=entry.note,
        created_at=entry.created_at,
    )


async def _tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise HTTPException(404, "unknown tenant")
    return tenant


async def _announce(session: AsyncSession, tenant_id: str) -> None:
    # The tenant's runtime views change (blocks_callers) and so may ingress's cached answers.
    await record_change(session, ConfigChangeKind.TENANT, tenant_id, await tenant_lines(session, tenant_id))


@admin_router.post(
    "",
    status_code=201,
    response_model=BlockedCallerOut,
    responses={**UNKNOWN_TENANT, **errors(400, 409, described={409: "the caller is blocked already"})},
    openapi_extra=audited("block_list.add"),
)
async def add_blocked_caller(
    tenant_id: TenantIdPath, body: BlockIn, session: Session, keys: Keys, audit: AuditDep
) -> BlockedCallerOut:
    """Block a caller: their calls to the tenant's lines are screened as ``blocked_caller`` and go
    the way of the line's ``screening_action``."""
    await _tenant(session, tenant_id)
    try:
        entry = await block_list.block(session, keys, tenant_id, body.number, body.note)
    except AlreadyBlocked:
        raise HTTPException(409, "the caller is blocked already") from None
    audit.about(caller_reference(entry.subject_prefix), tenant_id, note=body.note is not None)
    await _announce(session, tenant_id)
    await audit.commit(session, 201)
    log.info("caller blocked", extra={"tenant_id": tenant_id, "entry_id": entry.id})
    return _out(entry)


@admin_router.get(
    "",
    response_model=list[BlockedCallerOut],
    responses=UNKNOWN_TENANT,
    openapi_extra=audited("block_list.list"),
)
async def list_blocked_callers(tenant_id: TenantIdPath, session: Session) -> list[BlockedCallerOut]:
    await _tenant(session, tenant_id)
    return [_out(e) for e in await block_list.entries(session, tenant_id)]


@admin_router.delete(
    "/{entry_id}",
    status_code=204,
    responses=errors(404, described={404: "unknown tenant or entry"}),
    openapi_extra=audited("block_list.remove"),
)
async def remove_blocked_caller(
    tenant_id: TenantIdPath,
    entry_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="the entry's id (from the list)")],
    session: Session,
    audit: AuditDep,
) -> Response:
    await _tenant(session, tenant_id)
    entry = await block_list.unblock(session, tenant_id, entry_id)
    if entry is None:
        raise HTTPException(404, "unknown entry")
    audit.about(caller_reference(entry.subject_prefix), tenant_id, entry_id=entry_id)
    await _announce(session, tenant_id)
    await audit.commit(session, 204)
    log.info("caller unblocked", extra={"tenant_id": tenant_id, "entry_id": entry_id})
    return Response(status_code=204)


@admin_router.post(
    "/removals",
    response_model=BlockedCallerOut,
    responses={
        **errors(400, 404, described={404: "unknown tenant, or the caller is not blocked"}),
        200: {"description": "the entry removed"},
    },
    openapi_extra=audited("block_list.remove"),
)
async def remove_blocked_number(
    tenant_id: TenantIdPath, body: NumberIn, session: Session, keys: Keys, audit: AuditDep
) -> BlockedCallerOut:
    """Unblock a caller by their number (in the body: a number does not belong in a URL)."""
    await _tenant(session, tenant_id)
    subject, entry = await block_list.unblock_number(session, keys, tenant_id, body.number)
    audit.about(caller_reference(subject), tenant_id)
    if entry is None:
        raise HTTPException(404, "the caller is not blocked")
    await _announce(session, tenant_id)
    await audit.commit(session, 200, entry_id=entry.id)
    log.info("caller unblocked", extra={"tenant_id": tenant_id, "entry_id": entry.id})
    return _out(entry)


@runtime_router.post(
    "/blocked-callers/check",
    response_model=BlockCheckOut,
    responses={**AUTH_ERRORS, **errors(400)},
)
async def check_blocked_caller(
    body: BlockCheckIn,
    _role: Annotated[str, Depends(require_role("ingress"))],
    session: Session,
    keys: Keys,
) -> BlockCheckOut:
    """Whether the caller is on the tenant's block list (an unknown tenant blocks no one)."""
    return BlockCheckOut(
        blocked=await block_list.is_blocked(session, keys, body.tenant_id, body.caller_number)
    )
