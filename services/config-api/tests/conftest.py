from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from config_api_testkit import (
    ADMIN_TOKEN,
    NUMBER,
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
async def seeded(client: httpx.AsyncClient) -> httpx.AsyncClient:
    r = await client.post("/v1/tenants", json=tenant_body(), headers=auth(ADMIN_TOKEN))
    assert r.status_code == 201, r.text
    r = await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=auth(ADMIN_TOKEN))
    assert r.status_code == 201, r.text
    return client
