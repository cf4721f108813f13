"""Admin REST API (admin token only). Credentials are write-only: reads show masks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from voiceticket_common.events import ConfigChangeKind

from .audit import (
    MASTER_KEY_TARGET,
    AuditDep,
    AuditEvent,
    audited,
    line_target,
    target_filter,
    tenant_target,
)
from .auth import ADMIN, require_role
from .block_list import forget_tenant_entries
from .calls import forget_tenant_calls
from .db import SECRET_FIELDS, Line, Tenant
from .deps import Keys, Session
from .openapi import AUTH_ERRORS, errors, invalid
from .outbox import record_change, tenant_lines
from .schemas import (
    E164,
    E164_PATTERN,
    TENANT_ID_HELP,
    TENANT_ID_PATTERN,
    AuditEventOut,
    AuditPage,
    CredentialIn,
    CredentialName,
    LineIn,
    LineOut,
    RotateResult,
    TenantCreate,
    TenantOut,
    TenantPatch,
    jira_url_problem,
)
from .store import apply_line, apply_tenant, delete_tenant, reencrypt_all, set_secret, tenant_out
from .tenant_removal import REVOCATION_STEPS
from .vault import destroy_tenant_keys, rewrap_all

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/v1", tags=["admin"], dependencies=[Depends(require_role(ADMIN))], responses=AUTH_ERRORS
)

# E164 validates with a readable message; the schema carries the same rule as its pattern.
Number = Annotated[
    E164,
    Path(
        description="E.164, e.g. +14155550100 (URL-encode + as %2B)",
        examples=["+14155550100"],
        json_schema_extra={"pattern": E164_PATTERN},
    ),
]
TenantIdPath = Annotated[str, Path(pattern=TENANT_ID_PATTERN, description=TENANT_ID_HELP, examples=["acme"])]
BODY = 400  # FastAPI's answer to a body it cannot decode (not UTF-8), before validation
UNKNOWN_TENANT = errors(404, described={404: "unknown tenant"})
UNKNOWN_LINE = errors(404, described={404: "unknown line"})


_Row = TypeVar("_Row", Tenant, Line)


async def _found(session: AsyncSession, model: type[_Row], key: str, what: str) -> _Row:
    """The row with primary key ``key``; 404 ``unknown <what>`` when there is none."""
    row = await session.get(model, key)
    if row is None:
        raise HTTPException(404, f"unknown {what}")
    return row


async def _tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    return await _found(session, Tenant, tenant_id, "tenant")


_TENANT_CHANGE: dict[str, Any] = {
    "response_model": TenantOut,
    "responses": {**UNKNOWN_TENANT, **errors(BODY)},
}
"""What a request changing an existing tenant answers: the tenant, 404 or a body error."""


@router.post(
    "/tenants",
    status_code=201,
    response_model=TenantOut,
    responses=errors(BODY, 409, described={409: "the tenant already exists"}),
    openapi_extra=audited("tenant.create"),
)
async def create_tenant(body: TenantCreate, session: Session, keys: Keys, audit: AuditDep) -> TenantOut:
    audit.about(tenant_target(body.id), body.id)
    if await session.get(Tenant, body.id) is not None:
        raise HTTPException(409, f"tenant '{body.id}' already exists")
    tenant = Tenant(id=body.id)
    apply_tenant(tenant, body, keys)
    session.add(tenant)
    await record_change(session, ConfigChangeKind.TENANT, body.id)
    # Names of the credentials given, never their values.
    credentials = sorted(name for name in SECRET_FIELDS if getattr(body, name) is not None)
    try:
        await audit.commit(session, 201, credentials=credentials)
    except IntegrityError:
        raise HTTPException(409, f"tenant '{body.id}' already exists") from None
    log.info("tenant %s created", tenant.id)
    return tenant_out(tenant, keys)


@router.get("/tenants", response_model=list[TenantOut], openapi_extra=audited("tenant.list"))
async def list_tenants(session: Session, keys: Keys) -> list[TenantOut]:
    tenants = (await session.scalars(select(Tenant).order_by(Tenant.id))).all()
    return [tenant_out(t, keys) for t in tenants]


@router.get(
    "/tenants/{tenant_id}",
    response_model=TenantOut,
    responses=UNKNOWN_TENANT,
    openapi_extra=audited("tenant.get"),
)
async def get_tenant(tenant_id: TenantIdPath, session: Session, keys: Keys) -> TenantOut:
    return tenant_out(await _tenant(session, tenant_id), keys)


@router.patch("/tenants/{tenant_id}", **_TENANT_CHANGE, openapi_extra=audited("tenant.update"))
async def patch_tenant(
    tenant_id: TenantIdPath, body: TenantPatch, session: Session, keys: Keys, audit: AuditDep
) -> TenantOut:
    audit.about(fields=sorted(body.model_fields_set))  # names only: values may be personal data
    tenant = await _tenant(session, tenant_id)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(tenant, field, value)
    problem = jira_url_problem(tenant.jira_auth, tenant.jira_base_url)
    if problem:
        raise invalid(("body", "jira_base_url"), problem)
    await record_change(session, ConfigChangeKind.TENANT, tenant_id, await tenant_lines(session, tenant_id))
    await audit.commit(session, 200)
    log.info("tenant %s updated: %s", tenant_id, sorted(body.model_fields_set))
    return tenant_out(tenant, keys)


class TenantRemoval(BaseModel):
    """What removing a tenant did here, and what its owner must still do at the providers."""

    tenant_id: str
    lines_deleted: int
    call_keys_destroyed: int = Field(
        description="data keys of the tenant's calls destroyed: its queued and in-flight events, dead "
        "letters included, can no longer be opened and are dropped by the consumers"
    )
    revocation_steps: list[str]


@router.delete(
    "/tenants/{tenant_id}",
    response_model=TenantRemoval,
    responses=UNKNOWN_TENANT,
    openapi_extra=audited("tenant.delete"),
)
async def remove_tenant(tenant_id: TenantIdPath, session: Session, audit: AuditDep) -> TenantRemoval:
    """Remove the tenant, its lines and credentials, and destroy the data keys of all its calls
    (tenant_removal.py); answers with the revocation steps left to do at the providers."""
    tenant = await _tenant(session, tenant_id)
    lines = await session.scalar(select(func.count()).select_from(Line).where(Line.tenant_id == tenant_id))
    numbers = await tenant_lines(session, tenant_id)
    unblocked = await forget_tenant_entries(session, tenant_id)  # its block list (block_list.py)
    await delete_tenant(session, tenant)
    await record_change(session, ConfigChangeKind.TENANT_REMOVED, tenant_id, numbers)
    destroyed = await destroy_tenant_keys(session, tenant_id)
    await forget_tenant_calls(session, tenant_id)  # the calls view's rows (calls.py)
    await audit.commit(
        session,
        200,
        lines_deleted=lines or 0,
        call_keys_destroyed=destroyed,
        blocked_callers_deleted=unblocked,
    )
    log.info("tenant %s deleted with its lines, credentials and %d call keys", tenant_id, destroyed)
    return TenantRemoval(
        tenant_id=tenant_id,
        lines_deleted=lines or 0,
        call_keys_destroyed=destroyed,
        revocation_steps=list(REVOCATION_STEPS),
    )


# credential.rotate when it replaces a stored value; refusals are recorded as credential.set
@router.put(
    "/tenants/{tenant_id}/credentials/{name}", **_TENANT_CHANGE, openapi_extra=audited("credential.set")
)
async def put_credential(
    tenant_id: TenantIdPath,
    name: CredentialName,
    body: CredentialIn,
    session: Session,
    keys: Keys,
    audit: AuditDep,
) -> TenantOut:
    audit.about(credential=name.value)  # the name; the value never reaches the audit log
    tenant = await _tenant(session, tenant_id)
    before = getattr(tenant, f"{name.value}_enc")
    set_secret(tenant, name.value, body.value, keys)
    changed = getattr(tenant, f"{name.value}_enc") != before
    action = "credential.set" if before is None else "credential.rotate"
    if changed:  # the value never travels: the services fetch it again
        await record_change(
            session, ConfigChangeKind.CREDENTIAL, tenant_id, await tenant_lines(session, tenant_id)
        )
    await audit.commit(session, 200, action=action, changed=changed)
    log.info("tenant %s: credential %s rotated", tenant_id, name.value)
    return tenant_out(tenant, keys)


@router.put(
    "/lines/{number}",
    response_model=LineOut,
    responses={
        200: {"description": "the line was replaced"},
        201: {"model": LineOut, "description": "the line was created"},
        **errors(BODY, 409, described={409: "a concurrent change won; retry"}),
    },
    openapi_extra=audited("line.put"),
)
async def put_line(
    number: Number, body: LineIn, session: Session, response: Response, audit: AuditDep
) -> Line:
    audit.about(line_target(number), body.tenant_id)
    if body.number is not None and body.number != number:
        raise invalid(("body", "number"), "body.number differs from the number in the path")
    if await session.get(Tenant, body.tenant_id) is None:
        raise invalid(("body", "tenant_id"), f"unknown tenant '{body.tenant_id}'")
    line = await session.get(Line, number)
    created = line is None
    moved_from = None if line is None or line.tenant_id == body.tenant_id else line.tenant_id
    if line is None:
        line = Line(number=number)
        session.add(line)
    apply_line(line, body)
    await record_change(session, ConfigChangeKind.LINE, body.tenant_id, [number])
    details: dict[str, Any] = {"created": created}
    if moved_from is not None:
        details["previous_tenant_id"] = moved_from
    try:
        await audit.commit(session, 201 if created else 200, **details)
    except IntegrityError:
        raise HTTPException(409, "conflicting concurrent change; retry") from None
    response.status_code = 201 if created else 200
    log.info("line %s for tenant %s", "created" if created else "replaced", body.tenant_id)
    return line


@router.get("/lines", response_model=list[LineOut], openapi_extra=audited("line.list"))
async def list_lines(
    session: Session,
    tenant_id: Annotated[
        str | None, Query(pattern=TENANT_ID_PATTERN, description="only this tenant's lines")
    ] = None,
) -> list[Line]:
    query = select(Line).order_by(Line.number)
    if tenant_id is not None:
        query = query.where(Line.tenant_id == tenant_id)
    return list((await session.scalars(query)).all())


@router.get(
    "/lines/{number}", response_model=LineOut, responses=UNKNOWN_LINE, openapi_extra=audited("line.get")
)
async def get_line(number: Number, session: Session) -> Line:
    return await _found(session, Line, number, "line")


@router.delete(
    "/lines/{number}", status_code=204, responses=UNKNOWN_LINE, openapi_extra=audited("line.delete")
)
async def remove_line(number: Number, session: Session, audit: AuditDep) -> Response:
    line = await _found(session, Line, number, "line")
    audit.about(tenant_id=line.tenant_id)
    await session.delete(line)
    await record_change(session, ConfigChangeKind.LINE, line.tenant_id, [number])
    await audit.commit(session, 204)
    return Response(status_code=204)


@router.post("/admin/rotate-master-key", response_model=RotateResult, openapi_extra=audited("keys.rotate"))
async def rotate_master_key(session: Session, keys: Keys, audit: AuditDep) -> RotateResult:
    """Re-encrypt every credential under the current primary master key (the first of
    CONFIG_API_MASTER_KEYS). Rotate by prepending a new key, restarting, then calling this;
    the old key can be removed from the list afterwards."""
    audit.about(MASTER_KEY_TARGET)
    count = await reencrypt_all(session, keys, commit=False)
    count += await rewrap_all(session, keys)  # the call data keys and the vault's own secret
    await audit.commit(session, 200, primary_kid=keys.primary_kid, reencrypted=count)
    log.info("re-encrypted %d credentials under master key %s", count, keys.primary_kid)
    return RotateResult(primary_kid=keys.primary_kid, reencrypted=count)


ActorFilter = Annotated[
    str | None,
    Query(pattern=r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$", description="only this actor's entries"),
]
ActionFilter = Annotated[
    str | None,
    Query(
        pattern=r"^[a-z][a-z_]*(?:\.[a-z_]+)*(?:\.\*)?$",
        description="only this action (e.g. tenant.delete), or a family ending in .* (e.g. privacy.*)",
    ),
]
TargetFilter = Annotated[
    str | None,
    Query(
        pattern=r"^[!-~]{1,200}$",
        description="only this target (tenant:acme, master-key, line:ph_...); an E.164 number "
        "(+ as %2B) means that line's entries",
    ),
]


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # the first or last representable day in another zone
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


@router.get("/audit", response_model=AuditPage, openapi_extra=audited("audit.list"))
async def list_audit(
    session: Session,
    since: Annotated[
        datetime | None, Query(description="entries at or after this time (UTC if no offset)")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="entries before this time (UTC if no offset)")
    ] = None,
    actor: ActorFilter = None,
    action: ActionFilter = None,
    target: TargetFilter = None,
    tenant_id: Annotated[
        str | None,
        Query(pattern=TENANT_ID_PATTERN, description="entries about this tenant, its lines and credentials"),
    ] = None,
    outcome: Annotated[str | None, Query(pattern=r"^(success|refused|error)$")] = None,
    before: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**63 - 1,
            description="only entries older than this id (the previous page's next_before)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """The audit log, newest first (in the order the entries were written), one page at a time.
    Read-only: there is no API to change or delete an entry (retention purges old ones)."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if since is not None:
        query = query.where(AuditEvent.at >= _utc(since))
    if until is not None:
        query = query.where(AuditEvent.at < _utc(until))
    if actor is not None:
        query = query.where(AuditEvent.actor == actor)
    if action is not None:
        if action.endswith(".*"):
            query = query.where(AuditEvent.action.startswith(action[:-1], autoescape=True))
        else:
            query = query.where(AuditEvent.action == action)
    if target is not None:
        query = query.where(AuditEvent.target == target_filter(target))
    if tenant_id is not None:
        query = query.where(AuditEvent.tenant_id == tenant_id)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return AuditPage(
        items=[AuditEventOut.model_validate(r) for r in rows],
        next_before=rows[-1].id if more else None,
    )
