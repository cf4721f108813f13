"""The audit log (issue #10, point 5): who changed what, when, with which outcome; never a secret."""

# ruff: noqa: S105, S106 - test credentials
from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from config_api_testkit import (
    ADMIN_TOKEN,
    NUMBER,
    PLAIN,
    SERVICE_TOKENS,
    auth,
    line_body,
    make_settings,
    running,
    tenant_body,
)
from pydantic import SecretStr

from voiceticket_common.logging import JsonFormatter
from voiceticket_common.privacy import phone_ref
from voiceticket_config_api.audit import AuditEvent, purge_audit
from voiceticket_config_api.settings import parse_admin_tokens

ALICE = "alice-token-0123456789abcdef"
CI = "ci-token-0123456789abcdef0123"
NAMED = f"alice:{ALICE},ci:{CI}"
CANARY = "CANARY-credential-5f2e9d1c7b3a"  # a recognisable credential value
LINE = f"line:{phone_ref(NUMBER)}"


@pytest.fixture
async def named(tmp_path: Path):
    async with running(make_settings(tmp_path, admin_tokens=NAMED)) as client:
        yield client


async def entries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await client.get("/v1/audit", params={"limit": 500, **params}, headers=auth(ADMIN_TOKEN))
    assert r.status_code == 200, r.text
    return r.json()["items"]


class Recorder:
    """Each step must add exactly one entry (the newest), with these fields."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.seen = 0

    async def one(self, **expected: Any) -> dict[str, Any]:
        items = await entries(self.client)
        assert len(items) == self.seen + 1, items[: len(items) - self.seen]
        self.seen = len(items)
        entry = items[0]
        for key, value in expected.items():
            assert entry[key] == value, (key, entry)
        return entry

    async def none(self) -> None:
        assert len(await entries(self.client)) == self.seen


async def test_each_admin_action_is_one_entry_with_actor_action_target_and_outcome(named):
    c, a, ci = named, auth(ALICE), auth(CI)
    rec = Recorder(c)

    assert (await c.post("/v1/tenants", json=tenant_body(), headers=a)).status_code == 201
    e = await rec.one(actor="alice", action="tenant.create", target="tenant:acme", tenant_id="acme",
                      outcome="success", status_code=201)  # fmt: skip
    assert e["details"] == {"credentials": ["jira_api_token", "openai_api_key", "twilio_auth_token"]}
    assert e["at"].endswith(("Z", "+00:00"))

    assert (await c.patch("/v1/tenants/acme", json={"name": "Acme Inc"}, headers=ci)).status_code == 200
    e = await rec.one(actor="ci", action="tenant.update", target="tenant:acme", outcome="success")
    assert e["details"] == {"fields": ["name"]}

    r = await c.put("/v1/tenants/acme/credentials/openai_api_key", json={"value": CANARY}, headers=a)
    assert r.status_code == 200
    e = await rec.one(actor="alice", action="credential.rotate", target="tenant:acme", status_code=200)
    assert e["details"] == {"credential": "openai_api_key", "changed": True}

    r = await c.put("/v1/tenants/acme/credentials/jira_oauth_token", json={"value": CANARY}, headers=a)
    assert r.status_code == 200
    e = await rec.one(action="credential.set", details={"credential": "jira_oauth_token", "changed": True})

    assert (await c.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=ci)).status_code == 201
    await rec.one(actor="ci", action="line.put", target=LINE, tenant_id="acme", status_code=201,
                  details={"created": True})  # fmt: skip
    assert (await c.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=ci)).status_code == 200
    await rec.one(action="line.put", target=LINE, status_code=200, details={"created": False})

    assert (await c.post("/v1/admin/rotate-master-key", headers=auth(ADMIN_TOKEN))).status_code == 200
    await rec.one(actor="admin", action="keys.rotate", target="master-key", outcome="success",
                  details={"primary_kid": "k1", "reencrypted": 0})  # fmt: skip

    # Reads change nothing and are not recorded.
    for path in ("/v1/tenants", "/v1/tenants/acme", "/v1/lines", f"/v1/lines/{NUMBER}", "/v1/audit"):
        assert (await c.get(path, headers=a)).status_code == 200
    await rec.none()

    assert (await c.delete(f"/v1/lines/{NUMBER}", headers=a)).status_code == 204
    await rec.one(actor="alice", action="line.delete", target=LINE, tenant_id="acme", status_code=204)
    assert (await c.delete("/v1/tenants/acme", headers=ci)).status_code == 200
    await rec.one(actor="ci", action="tenant.delete", target="tenant:acme", status_code=200,
                  details={"lines_deleted": 0, "call_keys_destroyed": 0,
                           "blocked_callers_deleted": 0})  # fmt: skip


async def test_refused_requests_are_audited_with_the_actor_that_tried(named):
    c, a = named, auth(ALICE)
    rec = Recorder(c)
    assert (await c.post("/v1/tenants", json=tenant_body(), headers=a)).status_code == 201
    await rec.one(outcome="success")

    assert (await c.post("/v1/tenants", json=tenant_body("other"))).status_code == 401
    await rec.one(actor="anonymous", action="tenant.create", outcome="refused", status_code=401)
    r = await c.delete("/v1/tenants/acme", headers=auth("not-a-known-token"))
    assert r.status_code == 401
    await rec.one(actor="anonymous", action="tenant.delete", target="tenant:acme", status_code=401)
    assert (await c.delete("/v1/tenants/acme", headers=auth(SERVICE_TOKENS["ingress"]))).status_code == 403
    await rec.one(actor="ingress", action="tenant.delete", target="tenant:acme", outcome="refused",
                  status_code=403)  # fmt: skip
    assert (await c.delete("/v1/tenants/nope", headers=a)).status_code == 404
    await rec.one(actor="alice", action="tenant.delete", target="tenant:nope", status_code=404)
    assert (await c.post("/v1/tenants", json=tenant_body(), headers=a)).status_code == 409
    await rec.one(actor="alice", action="tenant.create", target="tenant:acme", status_code=409)
    r = await c.put("/v1/tenants/acme/credentials/openai_api_key", json={"value": "has space"}, headers=a)
    assert r.status_code == 422
    e = await rec.one(actor="alice", action="credential.set", target="tenant:acme", status_code=422)
    assert e["details"]["invalid"] == ["body.value"]
    r = await c.put(f"/v1/lines/{NUMBER}", json=line_body("ghost"), headers=a)
    assert r.status_code == 422
    await rec.one(action="line.put", target=LINE, outcome="refused", status_code=422)
    r = await c.put(f"/v1/lines/{NUMBER}", content=b"\xff", headers={**a, "content-type": "application/json"})
    assert r.status_code in (400, 422)
    await rec.one(actor="alice", action="line.put", outcome="refused")

    # A read is recorded only when the token is refused.
    assert (await c.get("/v1/tenants/nope", headers=a)).status_code == 404
    await rec.none()
    assert (await c.get("/v1/tenants", headers=auth(SERVICE_TOKENS["notifier"]))).status_code == 403
    await rec.one(actor="notifier", action="tenant.list", outcome="refused", status_code=403)
    assert (await c.get("/v1/audit")).status_code == 401
    await rec.one(actor="anonymous", action="audit.list", status_code=401)
    # The runtime API is not the admin API: nothing recorded.
    r = await c.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(SERVICE_TOKENS["ingress"]))
    assert r.status_code == 404
    await rec.none()


async def test_no_secret_value_ever_reaches_the_audit_log(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="voiceticket_config_api.audit")
    settings = make_settings(tmp_path, admin_tokens=NAMED)
    async with running(settings) as c:
        a = auth(ALICE)
        assert (await c.post("/v1/tenants", json=tenant_body(), headers=a)).status_code == 201
        for name in ("jira_api_token", "twilio_auth_token", "openai_api_key", "jira_oauth_token"):
            r = await c.put(f"/v1/tenants/acme/credentials/{name}", json={"value": CANARY}, headers=a)
            assert r.status_code == 200
        # refused attempts with secrets in the body: a value with a space, an unknown field
        await c.put("/v1/tenants/acme/credentials/openai_api_key", json={"value": CANARY + " x"}, headers=a)
        await c.patch("/v1/tenants/acme", json={"openai_api_key": CANARY}, headers=a)
        await c.post("/v1/tenants", json=tenant_body("acme2", jira_api_tokn=CANARY), headers=a)
        await c.post("/v1/tenants", json=tenant_body("acme"), headers=auth(CANARY))  # as a token
        assert (await c.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=a)).status_code == 201
        assert (await c.post("/v1/admin/rotate-master-key", headers=a)).status_code == 200
        api = await c.get("/v1/audit", params={"limit": 500}, headers=a)
        assert api.status_code == 200 and len(api.json()["items"]) >= 10
    forbidden = [CANARY, *PLAIN.values(), ALICE, CI, ADMIN_TOKEN, NUMBER, NUMBER[1:]]
    # not even masked: no mask, no tail of a credential
    forbidden_in_audit = [*forbidden, "••••", CANARY[-4:], *(v[-4:] for v in PLAIN.values())]
    for value in forbidden_in_audit:
        assert value not in api.text, value
    db = tmp_path / "config.db"
    with sqlite3.connect(db) as conn:
        rows = json.dumps(conn.execute("SELECT * FROM audit_events").fetchall())
    for value in forbidden_in_audit:
        assert value not in rows, value
    for path in tmp_path.glob("config.db*"):  # the database file and any journal
        raw = path.read_bytes()
        for value in (CANARY, *PLAIN.values(), ALICE, CI, ADMIN_TOKEN):
            assert value.encode() not in raw, (path, value)
    audit_records = [r for r in caplog.records if r.name == "voiceticket_config_api.audit"]
    assert len(audit_records) == len(api.json()["items"])
    logged = "\n".join(JsonFormatter("config-api").format(r) for r in audit_records)
    for value in forbidden_in_audit:
        assert value not in logged, value


async def test_each_entry_is_also_a_json_log_line_with_the_actor(named, caplog):
    caplog.set_level(logging.INFO, logger="voiceticket_config_api.audit")
    r = await named.post("/v1/tenants", json=tenant_body(), headers={**auth(ALICE), "X-Request-Id": "req-42"})
    assert r.status_code == 201
    (record,) = [r for r in caplog.records if r.name == "voiceticket_config_api.audit"]
    line = json.loads(JsonFormatter("config-api").format(record))
    assert line["audit"]["actor"] == "alice" and line["audit"]["action"] == "tenant.create"
    assert line["audit"]["outcome"] == "success" and line["audit"]["target"] == "tenant:acme"
    assert line["audit"]["request_id"] == "req-42"
    assert (await entries(named))[0]["request_id"] == "req-42"


async def test_get_audit_filters_and_paginates_newest_first(named):
    c, a, ci = named, auth(ALICE), auth(CI)
    assert (await c.post("/v1/tenants", json=tenant_body("acme"), headers=a)).status_code == 201
    assert (await c.post("/v1/tenants", json=tenant_body("beta"), headers=ci)).status_code == 201
    assert (await c.patch("/v1/tenants/beta", json={"name": "B"}, headers=a)).status_code == 200
    assert (await c.put(f"/v1/lines/{NUMBER}", json=line_body("beta"), headers=ci)).status_code == 201
    assert (await c.delete("/v1/tenants/nope", headers=ci)).status_code == 404
    everything = await entries(c)
    assert [e["action"] for e in everything] == [
        "tenant.delete", "line.put", "tenant.update", "tenant.create", "tenant.create"
    ]  # fmt: skip
    ids = [e["id"] for e in everything]
    assert ids == sorted(ids, reverse=True)

    assert {e["actor"] for e in await entries(c, actor="alice")} == {"alice"}
    assert len(await entries(c, actor="alice")) == 2
    assert [e["target"] for e in await entries(c, action="tenant.create")] == ["tenant:beta", "tenant:acme"]
    assert len(await entries(c, action="tenant.*")) == 4
    assert [e["action"] for e in await entries(c, target="tenant:beta")] == ["tenant.update", "tenant.create"]
    assert [e["action"] for e in await entries(c, target=NUMBER)] == ["line.put"]  # the number's ref
    assert [e["action"] for e in await entries(c, target=LINE)] == ["line.put"]
    assert len(await entries(c, tenant_id="beta")) == 3  # the tenant, its update and its line
    assert [e["status_code"] for e in await entries(c, outcome="refused")] == [404]
    assert len(await entries(c, since=everything[2]["at"])) >= 3
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await entries(c, since=future) == []
    assert len(await entries(c, until=future)) == 5
    assert await entries(c, actor="alice", action="line.put") == []

    pages, before = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"before": before} if before else {})}
        r = await c.get("/v1/audit", params=params, headers=a)
        assert r.status_code == 200
        pages.append([e["id"] for e in r.json()["items"]])
        before = r.json()["next_before"]
        if before is None:
            break
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]

    assert (await c.get("/v1/audit", params={"limit": 0}, headers=a)).status_code == 422
    assert (await c.get("/v1/audit", params={"since": "yesterday"}, headers=a)).status_code == 422
    assert (await c.get("/v1/audit", headers=auth(SERVICE_TOKENS["analyzer"]))).status_code == 403


async def test_audit_entries_cannot_be_changed_or_deleted(named, tmp_path):
    c, a = named, auth(ALICE)
    assert (await c.post("/v1/tenants", json=tenant_body(), headers=a)).status_code == 201
    before = await entries(c)
    entry_id = before[0]["id"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert (await c.request(method, "/v1/audit", json={}, headers=a)).status_code == 405
        r = await c.request(method, f"/v1/audit/{entry_id}", json={"actor": "mallory"}, headers=a)
        assert r.status_code in (404, 405)
    assert (await entries(c))[-len(before) :] == before
    ops = [
        op for path, item in c.app.openapi()["paths"].items() if path.startswith("/v1/audit") for op in item
    ]
    assert ops == ["get"]
    # The database refuses UPDATE as well (a trigger): append-only below the API too.
    with (
        sqlite3.connect(tmp_path / "config.db") as conn,
        pytest.raises(sqlite3.DatabaseError, match="append-only"),
    ):
        conn.execute("UPDATE audit_events SET actor = 'mallory'")


async def test_retention_purge_removes_only_old_entries(tmp_path):
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    ages = {"ancient": 1000, "old": 31, "edge": 30, "recent": 1}  # days

    async def add_entries(client: httpx.AsyncClient) -> None:
        sessions = client.app.state.sessions
        async with sessions() as session:
            for name, days in ages.items():
                session.add(AuditEvent(at=now - timedelta(days=days, seconds=-1 if name == "edge" else 0),
                                       actor="alice", action="tenant.update", target=f"tenant:{name}",
                                       outcome="success", status_code=200, details={}))  # fmt: skip
            await session.commit()

    async with running(make_settings(tmp_path)) as c:
        await add_entries(c)
        sessions = c.app.state.sessions
        assert await purge_audit(sessions, now, retention_days=30) == 2
        assert {e["target"] for e in await entries(c)} == {"tenant:edge", "tenant:recent"}
        assert await purge_audit(sessions, now, retention_days=30) == 0
        naive = now.replace(tzinfo=None) + timedelta(days=29)  # naive: taken as UTC
        assert await purge_audit(sessions, naive, retention_days=30) == 1
        assert [e["target"] for e in await entries(c)] == ["tenant:recent"]
        with pytest.raises(ValueError):
            await purge_audit(sessions, now, retention_days=0)

    # At start, with CONFIG_API_AUDIT_RETENTION_DAYS: entries older than it are gone.
    async with running(make_settings(tmp_path, audit_retention_days=1)) as c:
        assert await entries(c) == []


def test_named_admin_tokens_are_parsed_and_checked(tmp_path):
    assert parse_admin_tokens(SecretStr("alice:a1, ci:c1,alice:a2")) == [
        ("alice", b"a1"), ("ci", b"c1"), ("alice", b"a2")
    ]  # fmt: skip
    for bad, message in [
        ("alice", "not 'name:token'"),
        ("alice:", "not 'name:token'"),
        ("Alice:x", "name must be"),
        ("admin:x", "reserved"),
        ("anonymous:x", "reserved"),
        ("ingress:x", "reserved"),
        ("a:x,b:x", "more than once"),
    ]:
        with pytest.raises(ValueError, match=message) as info:
            parse_admin_tokens(SecretStr(bad))
        assert ":x" not in str(info.value)
    from voiceticket_config_api import create_app

    with pytest.raises(ValueError, match="differ from every service token"):
        create_app(make_settings(tmp_path, admin_tokens=f"alice:{SERVICE_TOKENS['ingress']}"))
    with pytest.raises(ValueError, match="must differ"):
        create_app(make_settings(tmp_path, admin_tokens=f"alice:{ADMIN_TOKEN}"))
    with pytest.raises(ValueError, match="dev-only"):
        make_settings(tmp_path, env="production", admin_tokens="alice:dev-only-admin")


async def test_named_tokens_work_without_the_single_admin_token(tmp_path):
    async with running(make_settings(tmp_path, admin_token=None, admin_tokens=NAMED)) as c:
        assert (await c.get("/v1/tenants", headers=auth(ALICE))).status_code == 200
        assert (await c.get("/v1/tenants", headers=auth(ADMIN_TOKEN))).status_code == 401
        assert (await c.get("/openapi.json", headers=auth(CI))).status_code == 200
        r = await c.get("/v1/audit", params={"actor": "anonymous"}, headers=auth(CI))
        assert [e["action"] for e in r.json()["items"]] == ["tenant.list"]
