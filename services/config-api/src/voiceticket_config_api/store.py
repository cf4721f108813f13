"""Persistence operations shared by the admin API, the runtime API and seeding."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pydantic import SecretStr, ValidationError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voiceticket_common.events import ConfigChangeKind
from voiceticket_common.runtime_views import provider_settings

from .crypto import KeyRing, SecretDecryptError
from .db import SECRET_FIELDS, Line, Tenant
from .outbox import record_change, tenant_lines
from .schemas import (
    IvrMenuIn,
    LineIn,
    ProviderConcurrency,
    RedactionSettings,
    SeedFile,
    TenantCreate,
    TenantOut,
    mask,
)

log = logging.getLogger(__name__)


def get_secret(tenant: Tenant, name: str, keyring: KeyRing) -> str | None:
    stored = getattr(tenant, f"{name}_enc")
    return None if stored is None else keyring.decrypt(stored)


def set_secret(tenant: Tenant, name: str, value: SecretStr | str | None, keyring: KeyRing) -> None:
    """Encrypt and store; leaves the row untouched when the plaintext is unchanged."""
    if name not in SECRET_FIELDS:
        raise ValueError(f"not a credential: {name}")
    plain = value.get_secret_value() if isinstance(value, SecretStr) else value
    try:
        if plain == get_secret(tenant, name, keyring):
            return
    except SecretDecryptError:
        pass  # overwrite an undecryptable value
    setattr(tenant, f"{name}_enc", None if plain is None else keyring.encrypt(plain))


def tenant_out(tenant: Tenant, keyring: KeyRing) -> TenantOut:
    masked: dict[str, str | None] = {}
    for name in SECRET_FIELDS:
        try:
            masked[name] = mask(get_secret(tenant, name, keyring))
        except SecretDecryptError:
            log.warning("tenant %s: credential %s cannot be decrypted", tenant.id, name)
            masked[name] = "•••• (cannot decrypt)"
    return TenantOut(
        id=tenant.id,
        name=tenant.name,
        jira_base_url=tenant.jira_base_url,
        jira_email=tenant.jira_email,
        jira_api_token=masked["jira_api_token"],
        jira_auth=tenant.jira_auth,
        jira_oauth_token=masked["jira_oauth_token"],
        twilio_account_sid=tenant.twilio_account_sid,
        twilio_auth_token=masked["twilio_auth_token"],
        openai_base_url=tenant.openai_base_url,
        openai_api_key=masked["openai_api_key"],
        speech_to_text_base_url=tenant.speech_to_text_base_url,
        speech_to_text_api_key=masked["speech_to_text_api_key"],
        llm_base_url=tenant.llm_base_url,
        llm_api_key=masked["llm_api_key"],
        jira_webhook_secret=masked["jira_webhook_secret"],
        transcription_model=tenant.transcription_model,
        vocabulary=tenant.vocabulary,
        analysis_model=tenant.analysis_model,
        redaction=RedactionSettings.model_validate(tenant.redaction or {}),
        recording_retention=_retention_out(tenant.recording_retention),
        provider_concurrency=provider_concurrency(tenant),
        transcription_backend=tenant.transcription_backend,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


def provider_endpoint(tenant: Tenant, provider: str, keyring: KeyRing) -> tuple[str, str | None]:
    """``speech_to_text``'s or ``llm``'s base URL and key, the OpenAI settings standing in for what
    the tenant did not set (``runtime_views.provider_settings``). Raises ``SecretDecryptError``."""
    return provider_settings(
        getattr(tenant, f"{provider}_base_url"),
        get_secret(tenant, f"{provider}_api_key", keyring),
        tenant.openai_base_url,
        get_secret(tenant, "openai_api_key", keyring),
    )


def provider_concurrency(tenant: Tenant) -> ProviderConcurrency:
    """The tenant's limits as stored, defaults filled in."""
    return ProviderConcurrency.model_validate(tenant.provider_concurrency or {})


def _retention_out(stored: str | None) -> str | int:
    value = stored or "keep"
    return int(value) if value.isdigit() else value


def apply_tenant(tenant: Tenant, data: TenantCreate, keyring: KeyRing) -> None:
    for field, value in data:
        if field == "id":
            continue
        if field in SECRET_FIELDS:
            set_secret(tenant, field, value, keyring)
            continue
        if isinstance(value, RedactionSettings | ProviderConcurrency):
            value = value.stored()
        if field == "recording_retention":
            value = str(value)  # days are stored as digits beside the two words
        if getattr(tenant, field) != value:
            setattr(tenant, field, value)


def apply_line(line: Line, data: LineIn) -> None:
    for field, value in data:
        if isinstance(value, IvrMenuIn):
            value = value.model_dump(mode="json")  # a JSON column stores data, not the model
        if field != "number" and getattr(line, field) != value:
            setattr(line, field, value)


async def delete_tenant(session: AsyncSession, tenant: Tenant) -> None:
    # Explicit line delete as well as ON DELETE CASCADE: both backends, no reliance on pragmas.
    await session.execute(delete(Line).where(Line.tenant_id == tenant.id))
    await session.delete(tenant)


async def reencrypt_all(session: AsyncSession, keyring: KeyRing, *, commit: bool = True) -> int:
    """Rewrite every secret not under the primary key with the primary key. Returns the count.
    ``commit=False`` leaves the commit to the caller (the admin API commits its audit entry with it)."""
    count = 0
    for tenant in (await session.scalars(select(Tenant).with_for_update())).all():
        for name in SECRET_FIELDS:
            stored = getattr(tenant, f"{name}_enc")
            if stored is not None and keyring.kid_of(stored) != keyring.primary_kid:
                setattr(tenant, f"{name}_enc", keyring.encrypt(keyring.decrypt(stored)))
                count += 1
    if commit:
        await session.commit()
    return count


def load_seed(path: Path) -> SeedFile:
    try:
        return SeedFile.model_validate(json.loads(path.read_text()))
    except ValidationError as exc:  # report locations and messages only, never input values
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise RuntimeError(f"seed file {path} is invalid: {problems}") from None


async def apply_seed(sessions: async_sessionmaker[AsyncSession], keyring: KeyRing, path: Path) -> None:
    """Idempotent upsert of the seed file's tenants and lines (nothing is deleted); what it
    changed is announced (``config.changed``, through the outbox)."""
    seed = load_seed(path)
    async with sessions() as session:
        changed: set[str] = set()
        for t in seed.tenants:
            tenant = await session.get(Tenant, t.id)
            if tenant is None:
                tenant = Tenant(id=t.id)
                session.add(tenant)
            apply_tenant(tenant, t, keyring)
            if tenant in session.new or session.is_modified(tenant):
                changed.add(t.id)
        await session.flush()
        for i, ln in enumerate(seed.lines):
            if await session.get(Tenant, ln.tenant_id) is None:
                raise RuntimeError(f"seed file {path}: lines[{i}] names unknown tenant")
            line = await session.get(Line, ln.number)
            if line is None:
                line = Line(number=ln.number)
                session.add(line)
            apply_line(line, ln)
            if line in session.new or session.is_modified(line):
                changed.add(ln.tenant_id)
        for tenant_id in sorted(changed):
            await record_change(
                session, ConfigChangeKind.TENANT, tenant_id, await tenant_lines(session, tenant_id)
            )
        await session.commit()
    log.info("seed applied: %d tenants, %d lines", len(seed.tenants), len(seed.lines))
