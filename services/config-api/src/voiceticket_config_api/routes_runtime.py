"""Runtime API for the services: one line's config, trimmed to what the caller's role needs."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path
from sqlalchemy.ext.asyncio import AsyncSession

from voiceticket_common.runtime_views import VIEWS

from .auth import require_role
from .block_list import has_entries
from .crypto import KeyRing, SecretDecryptError
from .db import SECRET_FIELDS, Line, Tenant
from .deps import Keys, Session
from .openapi import AUTH_ERRORS, errors
from .schemas import E164_RE, RuntimeLineOut
from .store import get_secret, provider_concurrency, provider_endpoint

log = logging.getLogger(__name__)

# role -> (tenant fields, line fields), from the service's view model. Least privilege: nothing
# else leaves this service.
ROLE_VIEWS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    role: (view.tenant_fields(), view.line_fields()) for role, view in VIEWS.items()
}

# role -> {tenant field: the keys of it served}: provider_concurrency narrowed to the role's own
# provider (the transcriber learns nothing of the tenant's Jira).
ROLE_SUBFIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    role: dict(view.tenant_subfields()) for role, view in VIEWS.items() if view.tenant_subfields()
}

# role -> {tenant field: line flag}: fields of the role's view sent only for lines with the flag on
# (jira-writer's Twilio account, only to attach recordings: ADR 6).
LINE_GATED: dict[str, dict[str, str]] = {
    role: dict(view.line_gated) for role, view in VIEWS.items() if view.line_gated
}

# Served resolved: field -> (provider, 0 for the URL / 1 for the key); the transcriber gets
# speech-to-text's, the analyzer the LLM's, and neither the other's nor the bare OpenAI key.
PROVIDER_FIELDS: dict[str, tuple[str, int]] = {
    f"{provider}_{part}": (provider, index)
    for provider in ("speech_to_text", "llm")
    for index, part in enumerate(("base_url", "api_key"))
}

# Tenant fields of a view that are computed here rather than stored: whether the tenant's block list
# has entries (ingress asks about a caller only then: no lookup on the webhook path otherwise).
COMPUTED_TENANT_FIELDS: dict[str, Callable[[AsyncSession, Tenant], Awaitable[Any]]] = {
    "blocks_callers": lambda session, tenant: has_entries(session, tenant.id),
}

router = APIRouter(prefix="/v1/runtime", tags=["runtime"])


# No pattern on the number: the services pass on whatever number was called, and anything that is
# not a configured line, E.164 or not, is an unknown line (404), never a validation error.
RuntimeNumber = Annotated[
    str,
    Path(
        description="the called number, E.164 (URL-encode + as %2B); any other value is an unknown line",
        examples=["+14155550100"],
    ),
]


@router.get(
    "/lines/{number}",
    response_model=RuntimeLineOut,
    responses={**AUTH_ERRORS, **errors(404, 500, described={404: "unknown line"})},
)
async def runtime_line(
    number: RuntimeNumber,
    role: Annotated[str, Depends(require_role(*ROLE_VIEWS))],
    session: Session,
    keys: Keys,
) -> dict[str, Any]:
    line = await session.get(Line, number) if E164_RE.match(number) else None
    if line is None:
        raise HTTPException(404, "unknown line")
    tenant = await session.get(Tenant, line.tenant_id)
    if tenant is None:  # the foreign key (ON DELETE CASCADE) rules this out
        log.error("line's tenant %s is missing", line.tenant_id)
        raise HTTPException(500, "the line's tenant is missing")
    tenant_fields, line_fields = ROLE_VIEWS[role]
    view: dict[str, Any] = {}
    view_class = VIEWS[role]
    subfields = ROLE_SUBFIELDS.get(role, {})
    for field in tenant_fields:
        if not view_class.serves_gated(field, line, tenant):
            continue
        if field in COMPUTED_TENANT_FIELDS:
            view[field] = await COMPUTED_TENANT_FIELDS[field](session, tenant)
            continue
        try:
            view[field] = _tenant_value(tenant, field, keys, subfields)
        except SecretDecryptError:
            log.error("tenant %s: credential for %s cannot be decrypted", tenant.id, field)
            raise HTTPException(500, f"credential {field} cannot be decrypted") from None
    return {
        "tenant_id": tenant.id,
        "line": {f: getattr(line, f) for f in line_fields},
        "tenant": view,
    }


def _tenant_value(tenant: Tenant, field: str, keys: KeyRing, subfields: dict[str, tuple[str, ...]]) -> Any:
    """What ``field`` is served as: a provider's URL and key resolved (the OpenAI settings standing
    in), a credential decrypted, a narrowed object, or the column. Raises ``SecretDecryptError``."""
    if field in PROVIDER_FIELDS:
        provider, part = PROVIDER_FIELDS[field]
        return provider_endpoint(tenant, provider, keys)[part]
    if field in SECRET_FIELDS:
        return get_secret(tenant, field, keys)
    if field in subfields:
        return _narrowed(tenant, field, subfields[field])
    return getattr(tenant, field)


def _narrowed(tenant: Tenant, field: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if field != "provider_concurrency":
        raise TypeError(f"no narrowed form of tenant field {field}")
    limits = provider_concurrency(tenant).limits()  # explicit values, defaults filled in
    return {key: limits[key] for key in keys}
