"""Named admin tokens (issue #13, point 2): created with a scope, shown once, hashed at rest,
listed, revoked; read-only tokens read and are refused every change; every change audited with
the acting token's name. Against the real app and its SQLite database."""

# ruff: noqa: S105 - test credentials
from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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

ALICE = "alice-token-0123456789abcdef"  # a CONFIG_API_ADMIN_TOKENS token


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running(make_settings(tmp_path, admin_tokens=f"alice:{ALICE}")) as client:
        yield client


async def create(client: httpx.AsyncClient, name: str, scope: str = "admin", by: str = ADMIN_TOKEN) -> str:
    r = await client.post("/v1/admin/tokens", json={"name": name, "scope": scope}, headers=auth(by))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == name and body["scope"] == scope and body["revoked_at"] is None
    token: str = body["token"]
    assert token.startswith("vtk_") and len(token) >= 4 + 43  # 256 random bits, url-safe base64
    return token


async def audit_entries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/audit", params={"limit": 500, **params}, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_a_created_token_works_is_shown_once_and_stored_only_as_its_hash(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    token = await create(api, "ops-bot")
    r = await api.post("/v1/tenants", json=tenant_body(), headers=auth(token))
    assert r.status_code == 201, r.text

    listed = (await api.get("/v1/admin/tokens", headers=auth(ADMIN_TOKEN))).json()
    assert token not in str(listed)
    assert [(t["name"], t["scope"], t["source"]) for t in listed] == [
        ("admin", "admin", "settings"),
        ("alice", "admin", "settings"),
        ("ops-bot", "admin", "api"),
    ]
    mine = listed[2]
    assert mine["created_by"] == "admin" and mine["created_at"] and mine["last_used_at"]

    with sqlite3.connect(tmp_path / "config.db") as db:
        rows = db.execute("SELECT name, scope, digest FROM admin_tokens").fetchall()
        dump = "\n".join(db.iterdump())
    assert rows == [("ops-bot", "admin", hashlib.sha256(token.encode()).hexdigest())]
    assert token not in dump and token[4:] not in dump


async def test_a_read_only_token_reads_and_is_refused_every_change_with_a_clear_message(
    api: httpx.AsyncClient,
) -> None:
    await api.post("/v1/tenants", json=tenant_body(), headers=auth(ADMIN_TOKEN))
    await api.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=auth(ADMIN_TOKEN))
    viewer = await create(api, "viewer", "read-only")
    for path in ("/v1/tenants", "/v1/tenants/acme", "/v1/lines", f"/v1/lines/{NUMBER}", "/v1/audit",
                 "/v1/admin/tokens"):  # fmt: skip
        r = await api.get(path, headers=auth(viewer))
        assert r.status_code == 200, (path, r.text)

    changes = [
        ("POST", "/v1/tenants", tenant_body("other")),
        ("PATCH", "/v1/tenants/acme", {"name": "Renamed"}),
        ("PUT", "/v1/tenants/acme/credentials/openai_api_key", {"value": "sk-new-value-1234"}),
        ("DELETE", "/v1/tenants/acme", None),
        ("PUT", f"/v1/lines/{NUMBER}", line_body()),
        ("DELETE", f"/v1/lines/{NUMBER}", None),
        ("POST", "/v1/admin/rotate-master-key", None),
        ("POST", "/v1/admin/tokens", {"name": "sneaky", "scope": "admin"}),
        ("DELETE", "/v1/admin/tokens/viewer", None),
        ("POST", "/v1/privacy/exports", {"phone": "+14155550123"}),
    ]
    for method, path, body in changes:
        r = await api.request(method, path, json=body, headers=auth(viewer))
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["detail"].startswith("token 'viewer' is read-only")
    # Nothing changed.
    assert (await api.get("/v1/tenants/acme", headers=auth(ADMIN_TOKEN))).json()["name"] == "Acme Corp"
    assert (await api.get(f"/v1/lines/{NUMBER}", headers=auth(ADMIN_TOKEN))).status_code == 200
    names = [t["name"] for t in (await api.get("/v1/admin/tokens", headers=auth(ADMIN_TOKEN))).json()]
    assert "sneaky" not in names
    # Each refusal is in the audit log under the read-only token's name.
    refused = await audit_entries(api, actor="viewer")
    assert len(refused) == len(changes)
    assert {(e["outcome"], e["status_code"]) for e in refused} == {("refused", 403)}
    # A read-only token is not a service token either.
    r = await api.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(viewer))
    assert r.status_code == 403


async def test_a_revoked_token_is_refused_at_once_and_stays_listed(api: httpx.AsyncClient) -> None:
    token = await create(api, "temp")
    assert (await api.get("/v1/tenants", headers=auth(token))).status_code == 200
    r = await api.delete("/v1/admin/tokens/temp", headers=auth(ALICE))
    assert r.status_code == 200, r.text
    assert r.json()["revoked_by"] == "alice" and r.json()["revoked_at"]
    assert (await api.get("/v1/tenants", headers=auth(token))).status_code == 401

    again = await api.delete("/v1/admin/tokens/temp", headers=auth(ADMIN_TOKEN))
    assert again.status_code == 200 and again.json()["revoked_by"] == "alice"
    listed = {t["name"]: t for t in (await api.get("/v1/admin/tokens", headers=auth(ADMIN_TOKEN))).json()}
    assert listed["temp"]["revoked_at"] is not None
    # A revoked token's name is not given to another token.
    r = await api.post("/v1/admin/tokens", json={"name": "temp"}, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 409 and "revoked tokens keep their name" in r.json()["detail"]


async def test_names_and_scopes_are_checked(api: httpx.AsyncClient) -> None:
    cases = [
        ({"name": "admin"}, 422),  # the bootstrap token's name
        ({"name": "ingress"}, 422),  # a service role
        ({"name": "Alice Smith"}, 422),
        ({"name": "bob", "scope": "superuser"}, 422),
        ({"name": "bob", "extra": 1}, 422),
        ({"name": "alice"}, 409),  # a settings token's name
    ]
    for body, code in cases:
        r = await api.post("/v1/admin/tokens", json=body, headers=auth(ADMIN_TOKEN))
        assert r.status_code == code, (body, r.text)
    assert (await api.delete("/v1/admin/tokens/nobody", headers=auth(ADMIN_TOKEN))).status_code == 404
    settings_token = await api.delete("/v1/admin/tokens/alice", headers=auth(ADMIN_TOKEN))
    assert settings_token.status_code == 409 and "CONFIG_API_ADMIN_TOKEN" in settings_token.json()["detail"]
    # Service tokens cannot manage admin tokens; the default scope is admin.
    r = await api.post("/v1/admin/tokens", json={"name": "x"}, headers=auth(SERVICE_TOKENS["ingress"]))
    assert r.status_code == 403
    token = await create(api, "defaulted")
    listed = {t["name"]: t for t in (await api.get("/v1/admin/tokens", headers=auth(token))).json()}
    assert listed["defaulted"]["scope"] == "admin"
    assert (await api.get("/v1/tenants", headers=auth("vtk_" + "x" * 43))).status_code == 401


async def test_every_change_is_audited_with_the_acting_tokens_name(api: httpx.AsyncClient) -> None:
    ops = await create(api, "ops", by=ALICE)
    r = await api.post("/v1/tenants", json=tenant_body(), headers=auth(ops))
    assert r.status_code == 201
    r = await api.post("/v1/tenants", json={"id": "bad"}, headers=auth(ops))  # refused: 422
    assert r.status_code == 422
    viewer = await create(api, "viewer", "read-only", by=ops)
    await api.delete("/v1/admin/tokens/viewer", headers=auth(ops))

    got = [(e["actor"], e["action"], e["target"], e["outcome"]) for e in reversed(await audit_entries(api))]
    assert got == [
        ("alice", "token.create", "token:ops", "success"),
        ("ops", "tenant.create", "tenant:acme", "success"),
        ("ops", "tenant.create", None, "refused"),  # 422 before the handler
        ("ops", "token.create", "token:viewer", "success"),
        ("ops", "token.revoke", "token:viewer", "success"),
    ]
    created = await audit_entries(api, action="token.create", target="token:viewer")
    assert created[0]["details"] == {"scope": "read-only"}
    everything = str(await audit_entries(api))
    assert ops not in everything and viewer not in everything


async def test_tokens_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running(settings) as api:
        token = await create(api, "durable", "read-only")
    async with running(settings) as api:
        assert (await api.get("/v1/tenants", headers=auth(token))).status_code == 200
        assert (await api.delete("/v1/lines/+14155550199", headers=auth(token))).status_code == 403
