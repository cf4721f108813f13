"""The same API against a real throwaway PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncpg
import pytest
from config_api_testkit import (
    NUMBER,
    PLAIN,
    assert_analyzer_reads_the_line,
    line_body,
    new_key,
    running,
    seeded_settings,
    tenant_body,
)

from voiceticket_sandbox.postgres import postgres_bin_dir, throwaway_postgres

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        postgres_bin_dir() is None,
        reason="PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian "
        "'postgresql' package or set PG_BIN",
    ),
]


async def test_postgres_end_to_end(tmp_path, admin, service_headers, start):
    with throwaway_postgres() as dsn:
        url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        k1, k2 = f"k1:{new_key()}", f"k2:{new_key()}"
        settings = seeded_settings(tmp_path, [tenant_body("seeded")], [], database_url=url, master_keys=k1)
        async with running(settings) as c:
            assert (await c.get("/readyz")).status_code == 200
            assert (await c.post("/v1/tenants", json=tenant_body(), headers=admin)).status_code == 201
            assert (await c.post("/v1/tenants", json=tenant_body(), headers=admin)).status_code == 409
            r = await c.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
            assert r.status_code == 201, r.text
            await assert_analyzer_reads_the_line(c, service_headers("analyzer"))
        async with running(settings):  # seed again: idempotent on Postgres too
            pass

        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT * FROM tenants ORDER BY id")
            assert [r["id"] for r in rows] == ["acme", "seeded"]
            for row in rows:
                for name, value in PLAIN.items():
                    assert row[f"{name}_enc"].startswith("k1:")
                    assert value not in str(dict(row))
        finally:
            await conn.close()

        async with start(database_url=url, master_keys=f"{k2},{k1}") as c:
            r = await c.post("/v1/admin/rotate-master-key", headers=admin)
            assert r.json() == {"primary_kid": "k2", "reencrypted": 6}
            assert (await c.delete("/v1/tenants/acme", headers=admin)).status_code == 200

        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM lines") == 0
            assert await conn.fetchval("SELECT count(*) FROM tenants") == 1
            enc = await conn.fetchval("SELECT jira_api_token_enc FROM tenants")
            assert enc.startswith("k2:")
        finally:
            await conn.close()
