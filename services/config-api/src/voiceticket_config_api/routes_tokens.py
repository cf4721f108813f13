"""``/v1/admin/tokens``: create, list and revoke named admin tokens (admin_tokens.py).

Creating and revoking need an admin-scope token; a read-only token may list. Every change is
audited (``token.create``, ``token.revoke``) with the acting token's name as actor and
``token:<name>`` as target; the token itself is never logged, audited or listed.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .admin_tokens import (
    ADMIN_SCOPE,
    AdminToken,
    TokenCreate,
    TokenCreated,
    TokenOut,
    new_token,
    token_digest,
)
from .audit import AuditDep, audited
from .auth import ADMIN, request_identity, require_role
from .db import utcnow
from .deps import Session
from .openapi import AUTH_ERRORS, errors
from .settings import ADMIN_NAME_PATTERN, Settings, parse_admin_tokens

log = logging.getLogger("voiceticket_config_api.tokens")

router = APIRouter(
    prefix="/v1/admin/tokens",
    tags=["admin tokens"],
    dependencies=[Depends(require_role(ADMIN))],
    responses=AUTH_ERRORS,
)
TokenName = Annotated[str, Path(pattern=ADMIN_NAME_PATTERN, examples=["alice"])]
UNKNOWN_TOKEN = errors(404, described={404: "unknown token"})


def token_target(name: str) -> str:
    return f"token:{name}"


def settings_names(request: Request) -> list[str]:
    """The names of the settings' admin tokens: ``admin`` (CONFIG_API_ADMIN_TOKEN), then
    CONFIG_API_ADMIN_TOKENS's, each once."""
    settings: Settings = request.app.state.settings
    names = ["admin"] if settings.admin_token is not None and settings.admin_token.get_secret_value() else []
    for name, _ in parse_admin_tokens(settings.admin_tokens):
        if name not in names:
            names.append(name)
    return names


def _actor(request: Request) -> str:
    identity = request_identity(request)
    return "anonymous" if identity is None else identity.actor


@router.post(
    "",
    status_code=201,
    response_model=TokenCreated,
    responses=errors(
        400, 409, described={409: "the name is taken (by a token, revoked or not, or a setting)"}
    ),
    openapi_extra=audited("token.create"),
)
async def create_token(
    body: TokenCreate, request: Request, session: Session, audit: AuditDep
) -> TokenCreated:
    """Create a token; the answer holds it, this once (only its SHA-256 digest is stored)."""
    audit.about(token_target(body.name), scope=body.scope)
    if body.name in settings_names(request):
        raise HTTPException(409, f"the name '{body.name}' is a settings token's (CONFIG_API_ADMIN_TOKENS)")
    if await session.get(AdminToken, body.name) is not None:
        raise HTTPException(409, f"the name '{body.name}' is taken (revoked tokens keep their name)")
    token = new_token()
    row = AdminToken(
        name=body.name,
        scope=body.scope,
        digest=token_digest(token),
        created_at=utcnow(),
        created_by=_actor(request),
    )
    session.add(row)
    try:
        await audit.commit(session, 201)
    except IntegrityError:
        raise HTTPException(
            409, f"the name '{body.name}' is taken (revoked tokens keep their name)"
        ) from None
    log.info("admin token %s created (scope %s)", body.name, body.scope)
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=token)


@router.get("", response_model=list[TokenOut], openapi_extra=audited("token.list"))
async def list_tokens(request: Request, session: Session) -> list[TokenOut]:
    """Every admin token: the settings' first (scope admin), then those created here by name,
    revoked ones included. Never a token or its digest."""
    rows = (await session.scalars(select(AdminToken).order_by(AdminToken.name))).all()
    from_settings = [TokenOut(name=n, scope=ADMIN_SCOPE, source="settings") for n in settings_names(request)]
    return [*from_settings, *(TokenOut.model_validate(r) for r in rows)]


@router.delete(
    "/{name}",
    response_model=TokenOut,
    responses={
        **UNKNOWN_TOKEN,
        **errors(409, described={409: "a settings token: remove it from the settings instead"}),
    },
    openapi_extra=audited("token.revoke"),
)
async def revoke_token(name: TokenName, request: Request, session: Session, audit: AuditDep) -> TokenOut:
    """Revoke a token: it is refused from the next request on. Revoking a revoked token changes
    nothing and answers the same."""
    audit.about(token_target(name))
    row = await session.get(AdminToken, name)
    if row is None:
        if name in settings_names(request):
            raise HTTPException(
                409,
                f"'{name}' is set in CONFIG_API_ADMIN_TOKEN(S): remove it there and restart config-api",
            )
        raise HTTPException(404, "unknown token")
    already = row.revoked_at is not None
    if not already:
        row.revoked_at = utcnow()
        row.revoked_by = _actor(request)
    await audit.commit(session, 200, already_revoked=already)
    log.info("admin token %s revoked", name)
    return TokenOut.model_validate(row)
