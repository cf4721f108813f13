"""``POST /v1/tenants/{id}/connection-test``: one cheap authenticated read at each of a tenant's
providers with its stored credentials, answered with each provider's own short answer.

Jira: ``GET /rest/servicedeskapi/servicedesk`` (the service desks the account sees; basic auth or
the OAuth 2.0 bearer token at Atlassian's gateway); Twilio: ``GET /2010-04-01/Accounts/{Sid}.json``;
OpenAI or an OpenAI-compatible server: ``GET {base_url}/models``, once when speech-to-text and the
LLM use the same server and key (``openai``), else once each (``speech_to_text``, ``llm``). Every
request goes through the egress guard (``CONFIG_API_EGRESS_ALLOWED_HOSTS``, and the tenant's own
provider hosts unless ``CONFIG_API_EGRESS_ALLOW_TENANT_HOSTS`` is off). An answer is the status line and
a trimmed message; never a credential (the provider's answer is scrubbed of it, and of anything
shaped like a key or a phone number). Admin scope; audited as ``tenant.connection_test``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from pydantic import BaseModel, Field

from voiceticket_common.http import EgressDenied, provider_client, tenant_hosts
from voiceticket_common.privacy import redact_phone_numbers

from .audit import AuditDep, audited, tenant_target
from .auth import ADMIN, require_role
from .crypto import KeyRing, SecretDecryptError
from .db import Tenant
from .deps import Keys, Session
from .openapi import AUTH_ERRORS, errors
from .schemas import TENANT_ID_HELP, TENANT_ID_PATTERN
from .settings import Settings
from .store import get_secret, provider_endpoint

router = APIRouter(
    prefix="/v1", tags=["admin"], dependencies=[Depends(require_role(ADMIN))], responses=AUTH_ERRORS
)
TenantIdPath = Annotated[str, Path(pattern=TENANT_ID_PATTERN, description=TENANT_ID_HELP, examples=["acme"])]
Provider = Literal["jira", "twilio", "openai", "speech_to_text", "llm"]
TIMEOUT_SECONDS = 10.0
MAX_ANSWER = 240
_KEY_LIKE = re.compile(r"\b(?:sk|vtk|rk|pk)[-_][A-Za-z0-9*_\-.]{6,}|\bAT[A-Za-z0-9_\-]{20,}")


class ProviderResult(BaseModel):
    provider: Provider
    ok: bool = Field(description="the provider accepted the credentials and answered as expected")
    status: int | None = Field(description="the provider's HTTP status; null when none came back")
    answer: str = Field(
        description="the provider's own short answer: status line and a trimmed message, never a credential",
        examples=["200 OK: 1 service desk visible: HELP (4)"],
    )


class ConnectionTestOut(BaseModel):
    results: list[ProviderResult] = Field(
        description="jira, twilio, then openai, in this order; speech_to_text and llm instead of "
        "openai when the two use different servers or keys"
    )


@dataclass
class Probe:
    """One read at one provider, or why it cannot be made (``missing``)."""

    provider: Provider
    url: str = ""
    auth: tuple[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    summarise: Callable[[Any], tuple[bool, str]] = lambda _: (True, "")
    missing: str = ""
    secrets: tuple[str, ...] = ()
    tenant_host: str = ""
    """The tenant's configured server (a base URL) this read goes to: allowed as a tenant host."""


def _secret(tenant: Tenant, name: str, keys: KeyRing) -> str | None:
    try:
        return get_secret(tenant, name, keys)
    except SecretDecryptError:
        raise _Unusable(f"the stored {name} cannot be decrypted under the current master keys") from None


class _Unusable(Exception):
    """A credential is there but cannot be used (message says why, without it)."""


def _desks(body: Any) -> tuple[bool, str]:
    values = body.get("values", []) if isinstance(body, dict) else []
    shown = ", ".join(f"{d.get('projectKey')} ({d.get('id')})" for d in values[:5])
    more = f" and {len(values) - 5} more" if len(values) > 5 else ""
    if not values:
        return False, "no service desk visible to this account (add it to the desk as an agent)"
    return True, f"{len(values)} service desk{'s' if len(values) != 1 else ''} visible: {shown}{more}"


def _account(body: Any) -> tuple[bool, str]:
    status = body.get("status") if isinstance(body, dict) else None
    name = body.get("friendly_name") if isinstance(body, dict) else None
    return status == "active", f"account {name!r} is {status}"


def _models(wanted: list[tuple[str, str]]) -> Callable[[Any], tuple[bool, str]]:
    def summarise(body: Any) -> tuple[bool, str]:
        data = body.get("data", []) if isinstance(body, dict) else []
        ids = {m.get("id") for m in data if isinstance(m, dict)}
        notes = [f"{what} model {m} {'listed' if m in ids else 'NOT listed'}" for what, m in wanted]
        return True, f"{len(ids)} models; " + ", ".join(notes)

    return summarise


def _jira(tenant: Tenant, keys: KeyRing) -> Probe:
    probe = Probe("jira", f"{tenant.jira_base_url.rstrip('/')}/rest/servicedeskapi/servicedesk?limit=50")
    probe.headers, probe.summarise = {"Accept": "application/json"}, _desks
    if tenant.jira_auth == "oauth2":
        token = _secret(tenant, "jira_oauth_token", keys)
        if token is None:
            probe.missing = "no jira_oauth_token stored (jira_auth is oauth2)"
            return probe
        probe.headers["Authorization"], probe.secrets = f"Bearer {token}", (token,)
        return probe
    token = _secret(tenant, "jira_api_token", keys)
    if token is None or not tenant.jira_email:
        probe.missing = "no jira_email and jira_api_token stored (jira_auth is basic)"
        return probe
    probe.auth, probe.secrets = (tenant.jira_email, token), (token,)
    return probe


def _twilio(tenant: Tenant, keys: KeyRing, base_url: str) -> Probe:
    sid = tenant.twilio_account_sid
    probe = Probe("twilio", f"{base_url.rstrip('/')}/2010-04-01/Accounts/{sid}.json", summarise=_account)
    token = _secret(tenant, "twilio_auth_token", keys)
    if not sid or token is None:
        probe.missing = "no twilio_account_sid and twilio_auth_token stored"
        return probe
    probe.auth, probe.secrets = (sid, token), (token,)
    return probe


def _endpoint(tenant: Tenant, provider: str, keys: KeyRing) -> tuple[str, str | None]:
    try:
        return provider_endpoint(tenant, provider, keys)
    except SecretDecryptError:
        raise _Unusable(
            f"the stored {provider}_api_key or openai_api_key cannot be decrypted under the current master keys"
        ) from None


def _model_probes(tenant: Tenant, keys: KeyRing) -> list[Probe]:
    """``openai``: one read when speech-to-text and the LLM share a server and key (the transcription
    model left out with the local engine); else ``speech_to_text`` and ``llm``, one each."""
    llm = _endpoint(tenant, "llm", keys)
    wanted: list[tuple[Provider, tuple[str, str | None], list[tuple[str, str]]]] = [
        ("llm", llm, [("analysis", tenant.analysis_model)])
    ]
    if tenant.transcription_backend != "local":
        stt = _endpoint(tenant, "speech_to_text", keys)
        if stt == llm:
            wanted[0][2].append(("transcription", tenant.transcription_model))
        else:
            wanted.insert(0, ("speech_to_text", stt, [("transcription", tenant.transcription_model)]))
    made = []
    for provider, (url, key), models in wanted:
        name: Provider = "openai" if len(wanted) == 1 else provider
        probe = Probe(name, f"{url}/models", summarise=_models(models), tenant_host=url)
        if key is None:
            own = "openai_api_key" if name == "openai" else f"{provider}_api_key"
            probe.missing = f"no {own} stored" + (
                "" if name == "openai" else " (the openai_api_key goes only to openai_base_url)"
            )
        else:
            probe.headers, probe.secrets = {"Authorization": f"Bearer {key}"}, (key,)
        made.append(probe)
    return made


def probes(tenant: Tenant, keys: KeyRing, settings: Settings) -> list[Probe]:
    """The reads, in answer order; a credential that cannot be used makes a ``missing`` one."""
    makers: list[tuple[Provider, Callable[[], list[Probe]]]] = [
        ("jira", lambda: [_jira(tenant, keys)]),
        ("twilio", lambda: [_twilio(tenant, keys, settings.twilio_api_base_url)]),
        ("openai", lambda: _model_probes(tenant, keys)),
    ]
    made = []
    for provider, make in makers:
        try:
            made.extend(make())
        except _Unusable as exc:
            made.append(Probe(provider, missing=str(exc)))
    return made


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """One line, no credential (the probe's own, anything key-shaped), no phone number, trimmed."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[credential]")
    text = redact_phone_numbers(_KEY_LIKE.sub("[credential]", text))
    text = " ".join(text.split())
    return text if len(text) <= MAX_ANSWER else text[: MAX_ANSWER - 1] + "…"


def provider_message(body: Any) -> str:
    """The message in a provider's error body: JSM, Jira platform, Twilio and OpenAI shapes."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    for value in (body.get("errorMessage"), body.get("message"), error):
        if isinstance(value, str) and value:
            return value
    messages = body.get("errorMessages")
    if isinstance(messages, list) and messages:
        return "; ".join(str(m) for m in messages)
    return ""


async def run_probe(
    probe: Probe, allowed_hosts: list[str], allow_tenant_hosts: bool = True
) -> ProviderResult:
    if probe.missing:
        return ProviderResult(
            provider=probe.provider, ok=False, status=None, answer=f"not tested: {probe.missing}"
        )
    client = provider_client(
        probe.provider, allowed_hosts, timeout=TIMEOUT_SECONDS, allow_tenant_hosts=allow_tenant_hosts
    )
    try:
        with tenant_hosts(*([probe.tenant_host] if probe.tenant_host else [])):
            response = await client.get(probe.url, auth=probe.auth, headers=probe.headers)
    except EgressDenied as exc:
        return ProviderResult(
            provider=probe.provider, ok=False, status=None, answer=scrub(str(exc), probe.secrets)
        )
    except httpx.HTTPError as exc:
        answer = f"no answer: {type(exc).__name__} ({'timed out' if isinstance(exc, httpx.TimeoutException) else 'could not connect'})"
        return ProviderResult(provider=probe.provider, ok=False, status=None, answer=answer)
    finally:
        await client.aclose()
    return _result(probe, response)


def _result(probe: Probe, response: httpx.Response) -> ProviderResult:
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    status_line = f"{response.status_code} {response.reason_phrase}".strip()
    ok = response.is_success
    if ok:
        ok, message = probe.summarise(body)
    else:
        message = provider_message(body)
    answer = f"{status_line}: {message}" if message else status_line
    return ProviderResult(
        provider=probe.provider, ok=ok, status=response.status_code, answer=scrub(answer, probe.secrets)
    )


@router.post(
    "/tenants/{tenant_id}/connection-test",
    response_model=ConnectionTestOut,
    responses=errors(404, described={404: "unknown tenant"}),
    openapi_extra=audited("tenant.connection_test"),
)
async def connection_test(
    tenant_id: TenantIdPath, request: Request, session: Session, keys: Keys, audit: AuditDep
) -> ConnectionTestOut:
    """Read once at Jira, Twilio and the OpenAI-compatible server(s) with the tenant's stored
    credentials and say what each answered (200 even when a provider refused: see ``ok``)."""
    audit.about(tenant_target(tenant_id), tenant_id)
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise HTTPException(404, "unknown tenant")
    settings: Settings = request.app.state.settings
    results = await asyncio.gather(
        *(
            run_probe(p, list(settings.egress_allowed_hosts), settings.egress_allow_tenant_hosts)
            for p in probes(tenant, keys, settings)
        )
    )
    await audit.commit(
        session,
        200,
        ok=[r.provider for r in results if r.ok],
        failed=[r.provider for r in results if not r.ok],
    )
    return ConnectionTestOut(results=list(results))
