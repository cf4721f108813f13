"""Admin REST API (admin token only). Credentials are write-only: reads show masks."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .auth import ADMIN, require_role
from .db import Line, Tenant
from .deps import Keys, Session
from .schemas import (
    E164,
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

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["admin"], dependencies=[Depends(require_role(ADMIN))])

Number = Annotated[E164, Path(description="E.164, e.g. +14155550100 (URL-encode + as %2B)")]


async def _tenant(session: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise HTTPException(404, "unknown tenant")
    return tenant


@router.post("/tenants", status_code=201, response_model=TenantOut)
async def create_tenant(body: TenantCreate, session: Session, keys: Keys) -> TenantOut:
    if await session.get(Tenant, body.id) is not None:
        raise HTTPException(409, f"tenant '{body.id}' already exists")
    tenant = Tenant(id=body.id)
    apply_tenant(tenant, body, keys)
    session.add(tenant)
    try:
        await session.commit()
    except IntegrityError:
        raise HTTPException(409, f"tenant '{body.id}' already exists") from None
    log.info("tenant %s created", tenant.id)
    return tenant_out(tenant, keys)


@router.get("/tenants", response_model=list[TenantOut])
async def list_tenants(session: Session, keys: Keys) -> list[TenantOut]:
    tenants = (await session.scalars(select(Tenant).order_by(Tenant.id))).all()
    return [tenant_out(t, keys) for t in tenants]


@router.get("/tenants/{tenant_id}", response_model=TenantOut)
async def get_tenant(tenant_id: str, session: Session, keys: Keys) -> TenantOut:
    return tenant_out(await _tenant(session, tenant_id), keys)


@router.patch("/tenants/{tenant_id}", response_model=TenantOut)
async def patch_tenant(tenant_id: str, body: TenantPatch, session: Session, keys: Keys) -> TenantOut:
    tenant = await _tenant(session, tenant_id)
    for field, value in body.model_dump(exclude_unset=True).items():
        setattr(tenant, field, value)
    problem = jira_url_problem(tenant.jira_auth, tenant.jira_base_url)
    if problem:
        raise HTTPException(422, problem)
    await session.commit()
    log.info("tenant %s updated: %s", tenant_id, sorted(body.model_fields_set))
    return tenant_out(tenant, keys)


@router.delete("/tenants/{tenant_id}", status_code=204)
async def remove_tenant(tenant_id: str, session: Session) -> Response:
    await delete_tenant(session, await _tenant(session, tenant_id))
    await session.commit()
    log.info("tenant %s deleted with its lines and credentials", tenant_id)
    return Response(status_code=204)


@router.put("/tenants/{tenant_id}/credentials/{name}", response_model=TenantOut)
async def put_credential(
    tenant_id: str, name: CredentialName, body: CredentialIn, session: Session, keys: Keys
) -> TenantOut:
    tenant = await _tenant(session, tenant_id)
    set_secret(tenant, name.value, body.value, keys)
    await session.commit()
    log.info("tenant %s: credential %s rotated", tenant_id, name.value)
    return tenant_out(tenant, keys)


@router.put("/lines/{number}", response_model=LineOut)
async def put_line(number: Number, body: LineIn, session: Session, response: Response) -> Line:
    if body.number is not None and body.number != number:
        raise HTTPException(422, "body.number differs from the number in the path")
    if await session.get(Tenant, body.tenant_id) is None:
        raise HTTPException(422, f"unknown tenant '{body.tenant_id}'")
    line = await session.get(Line, number)
    created = line is None
    if line is None:
        line = Line(number=number)
        session.add(line)
    apply_line(line, body)
    try:
        await session.commit()
    except IntegrityError:
        raise HTTPException(409, "conflicting concurrent change; retry") from None
    response.status_code = 201 if created else 200
    log.info("line %s for tenant %s", "created" if created else "replaced", body.tenant_id)
    return line


@router.get("/lines", response_model=list[LineOut])
async def list_lines(session: Session, tenant_id: str | None = None) -> list[Line]:
    query = select(Line).order_by(Line.number)
    if tenant_id is not None:
        query = query.where(Line.tenant_id == tenant_id)
    return list((await session.scalars(query)).all())


@router.get("/lines/{number}", response_model=LineOut)
async def get_line(number: Number, session: Session) -> Line:
    line = await session.get(Line, number)
    if line is None:
        raise HTTPException(404, "unknown line")
    return line


@router.delete("/lines/{number}", status_code=204)
async def remove_line(number: Number, session: Session) -> Response:
    line = await session.get(Line, number)
    if line is None:
        raise HTTPException(404, "unknown line")
    await session.delete(line)
    await session.commit()
    return Response(status_code=204)


@router.post("/admin/rotate-master-key", response_model=RotateResult)
async def rotate_master_key(session: Session, keys: Keys) -> RotateResult:
    """Re-encrypt every credential under the current primary master key (the first of
    CONFIG_API_MASTER_KEYS). Rotate by prepending a new key, restarting, then calling this;
    the old key can be removed from the list afterwards."""
    count = await reencrypt_all(session, keys)
    log.info("re-encrypted %d credentials under master key %s", count, keys.primary_kid)
    return RotateResult(primary_kid=keys.primary_kid, reencrypted=count)
