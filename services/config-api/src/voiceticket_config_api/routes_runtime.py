"""Runtime API for the services: one line's config, trimmed to what the caller's role needs."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from .auth import require_role
from .crypto import SecretDecryptError
from .db import SECRET_FIELDS, Line, Tenant
from .deps import get_keyring, get_session
from .schemas import E164_RE
from .store import get_secret

log = logging.getLogger(__name__)

# role -> (tenant fields, line fields). Least privilege: nothing else leaves this service.
ROLE_VIEWS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ingress": (
        ("twilio_account_sid", "twilio_auth_token"),
        (
            "number",
            "language",
            "greeting",
            "recording_notice",
            "voice",
            "max_recording_seconds",
            "record_timeout_seconds",
            "record_finish_on_key",
        ),
    ),
    "transcriber": (
        (
            "twilio_account_sid",
            "twilio_auth_token",
            "openai_base_url",
            "openai_api_key",
            "transcription_model",
            "vocabulary",
        ),
        ("number", "language_mode", "language"),
    ),
    # request_type_id: a degraded analysis (no speech, LLM down) names the line's default type.
    "analyzer": (
        ("openai_base_url", "openai_api_key", "analysis_model"),
        ("number", "language_mode", "language", "request_types", "request_type_id"),
    ),
    "jira-writer": (
        # The Twilio account only to download recordings, and only for lines that attach them
        # (LINE_GATED, ADR 6).
        (
            "jira_base_url",
            "jira_auth",
            "jira_email",
            "jira_api_token",
            "jira_oauth_token",
            "twilio_account_sid",
            "twilio_auth_token",
        ),
        (
            "number",
            "service_desk_id",
            "request_type_id",
            "request_types",
            "phone_field_id",
            "attach_recording",
            "ticket_on_absent_recording",
            "language",
        ),
    ),
    "notifier": (
        ("twilio_account_sid", "twilio_auth_token"),
        ("number", "sms_enabled", "sms_from", "sms_messaging_service_sid", "sms_template", "language"),
    ),
}

# role -> {tenant field: line flag}: fields of the role's view sent only for lines with the flag on.
LINE_GATED: dict[str, dict[str, str]] = {
    "jira-writer": {"twilio_account_sid": "attach_recording", "twilio_auth_token": "attach_recording"},
}

router = APIRouter(prefix="/v1/runtime", tags=["runtime"])


@router.get("/lines/{number}")
async def runtime_line(
    number: str,
    role: Annotated[str, Depends(require_role(*ROLE_VIEWS))],
    session=Depends(get_session),
    keys=Depends(get_keyring),
) -> dict[str, Any]:
    line = await session.get(Line, number) if E164_RE.match(number) else None
    if line is None:
        raise HTTPException(404, "unknown line")
    tenant = await session.get(Tenant, line.tenant_id)
    tenant_fields, line_fields = ROLE_VIEWS[role]
    view: dict[str, Any] = {}
    gated = LINE_GATED.get(role, {})
    for field in tenant_fields:
        if field in gated and not getattr(line, gated[field]):
            continue
        if field in SECRET_FIELDS:
            try:
                view[field] = get_secret(tenant, field, keys)
            except SecretDecryptError:
                log.error("tenant %s: credential %s cannot be decrypted", tenant.id, field)
                raise HTTPException(500, f"credential {field} cannot be decrypted") from None
        else:
            view[field] = getattr(tenant, field)
    return {
        "tenant_id": tenant.id,
        "line": {f: getattr(line, f) for f in line_fields},
        "tenant": view,
    }
