from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from config_api_testkit import (
    ADMIN_TOKEN,
    NUMBER,
    SERVICE_TOKENS,
    auth,
    line_body,
    make_settings,
    running,
    tenant_body,
)

from voiceticket_config_api import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as c:
        yield c


@pytest.fixture
def admin() -> dict[str, str]:
    """The admin API's Authorization header."""
    return auth(ADMIN_TOKEN)


@pytest.fixture
def service_headers() -> Callable[[str], dict[str, str]]:
    """role -> the runtime API's Authorization header for that service."""
    return lambda role: auth(SERVICE_TOKENS[role])


@pytest.fixture
def start(tmp_path: Path) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with start(**settings) as client``: the app on its database in ``tmp_path``."""
    return lambda **overrides: running(make_settings(tmp_path, **overrides))


@pytest.fixture
async def seeded(client: httpx.AsyncClient, admin: dict[str, str]) -> httpx.AsyncClient:
    r = await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    assert r.status_code == 201, r.text
    r = await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
    assert r.status_code == 201, r.text
    return client
