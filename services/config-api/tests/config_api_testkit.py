"""Shared helpers for the config-api tests (fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from voiceticket_config_api import Settings, create_app

ADMIN_TOKEN = "admin-token-0123456789abcdef"  # noqa: S105 - test value
SERVICE_TOKENS = {
    role: f"{role}-token-0123456789abcdef"
    for role in ("ingress", "transcriber", "analyzer", "jira-writer", "notifier")
}
PLAIN = {  # secrets used in tests; none of them may ever show up in an admin response
    "jira_api_token": "ATATT3xFfGF0-jira-secret-9f8e",
    "twilio_auth_token": "twilio-auth-secret-7c6b5a49",
    "openai_api_key": "sk-proj-openai-secret-1234wxyz",
}
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
NUMBER = "+14155550100"


def tenant_body(tenant_id: str = "acme", **extra: Any) -> dict[str, Any]:
    return {
        "id": tenant_id,
        "name": "Acme Corp",
        "jira_base_url": "https://acme.atlassian.net",
        "jira_email": "bot@acme.example",
        "twilio_account_sid": ACCOUNT_SID,
        **PLAIN,
        **extra,
    }


def line_body(tenant_id: str = "acme", **extra: Any) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "service_desk_id": "1",
        "request_type_id": "10",
        "request_types": {"incident": "11", "service_request": "12"},
        "language_mode": "enforced",
        "language": "en",
        "phone_field_id": "customfield_10050",
        **extra,
    }


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_key() -> str:
    return Fernet.generate_key().decode()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'config.db'}",
        "master_keys": f"k1:{new_key()}",
        "admin_token": ADMIN_TOKEN,
        "service_tokens": ",".join(f"{r}:{t}" for r, t in SERVICE_TOKENS.items()),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running, behind an in-process httpx client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://config-api") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def write_seed(path: Path, tenants: list[dict], lines: list[dict]) -> Path:
    path.write_text(json.dumps({"tenants": tenants, "lines": lines}))
    return path


def seeded_settings(tmp_path: Path, tenants: list[dict], lines: list[dict], **overrides: Any) -> Settings:
    """Settings whose seed file (``tmp_path/seed.json``) holds ``tenants`` and ``lines``."""
    return make_settings(tmp_path, seed_file=write_seed(tmp_path / "seed.json", tenants, lines), **overrides)


async def assert_analyzer_reads_the_line(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """The analyzer's runtime view of NUMBER carries the decrypted OpenAI key (as the LLM's: the
    tenant sets no own one) and the request types."""
    r = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=headers)
    assert r.json()["tenant"]["llm_api_key"] == PLAIN["openai_api_key"]
    assert r.json()["line"]["request_types"] == {"incident": "11", "service_request": "12"}
