"""``POST /v1/tenants/{id}/connection-test`` (issue #13, point 5) against the real stand-ins on
loopback (each request validated against the provider's official OpenAPI spec): each provider's
own answer, a refusal named, no credential in the answer, the egress guard applied, audited."""

# ruff: noqa: S105 - test credentials
from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from config_api_testkit import ADMIN_TOKEN, auth, make_settings, running

from voiceticket_sandbox import SandboxUrls, run_sandboxes
from voiceticket_sandbox.demo_tenant import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    JIRA_EMAIL,
    JIRA_TOKEN,
    OPENAI_KEY,
    configure_sandboxes,
)

ADMIN = auth(ADMIN_TOKEN)
LOOPBACK = ["http://127.0.0.1:*"]


@pytest.fixture
async def sandboxes() -> AsyncIterator[SandboxUrls]:
    async with run_sandboxes() as urls:
        await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
        yield urls


def tenant(urls: SandboxUrls, **extra: Any) -> dict[str, Any]:
    return {
        "id": "acme",
        "name": "Acme",
        "jira_base_url": urls.jira,
        "jira_email": JIRA_EMAIL,
        "jira_api_token": JIRA_TOKEN,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "openai_base_url": urls.openai_v1,
        "openai_api_key": OPENAI_KEY,
        **extra,
    }


async def connection_test(client: httpx.AsyncClient, tenant_id: str = "acme") -> dict[str, dict[str, Any]]:
    r = await client.post(f"/v1/tenants/{tenant_id}/connection-test", headers=ADMIN)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["provider"] for x in results] == ["jira", "twilio", "openai"]
    assert all(set(x) == {"provider", "ok", "status", "answer"} for x in results)
    return {x["provider"]: x for x in results}


async def spec_valid_requests(urls: SandboxUrls) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as c:
        records = [r for base in (urls.jira, urls.twilio, urls.openai)
                   for r in (await c.get(f"{base}/_sandbox/requests")).json()]  # fmt: skip
    return records


async def test_each_provider_answers_with_the_stored_credentials(
    sandboxes: SandboxUrls, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, egress_allowed_hosts=LOOPBACK, twilio_api_base_url=sandboxes.twilio)
    async with running(settings) as client:
        assert (await client.post("/v1/tenants", json=tenant(sandboxes), headers=ADMIN)).status_code == 201
        results = await connection_test(client)
    assert results["jira"] == {"provider": "jira", "ok": True, "status": 200,
                               "answer": "200 OK: 1 service desk visible: HELP (4)"}  # fmt: skip
    assert results["twilio"] == {"provider": "twilio", "ok": True, "status": 200,
                                 "answer": "200 OK: account 'Sandbox account' is active"}  # fmt: skip
    assert results["openai"]["ok"] and results["openai"]["status"] == 200
    assert results["openai"]["answer"] == (
        "200 OK: 5 models; analysis model gpt-4o-mini listed, transcription model gpt-4o-mini-transcribe listed"
    )
    records = await spec_valid_requests(sandboxes)
    reads = {(r["method"], r["path"]) for r in records}
    assert reads == {
        ("GET", "/rest/servicedeskapi/servicedesk"),
        ("GET", f"/2010-04-01/Accounts/{ACCOUNT_SID}.json"),
        ("GET", "/v1/models"),
    }
    assert all(r["valid"] for r in records), [r["errors"] for r in records if not r["valid"]]
    # Twilio's answer holds the auth token; ours never does.
    assert all(AUTH_TOKEN not in x["answer"] and OPENAI_KEY not in x["answer"] for x in results.values())


async def test_refused_credentials_are_named_by_the_provider_and_never_echoed(
    sandboxes: SandboxUrls, tmp_path: Path
) -> None:
    wrong_key = "sk-sandbox-wrong-key-0123456789"
    body = tenant(sandboxes, jira_api_token="wrong-jira-token-0123456789", openai_api_key=wrong_key,
                  twilio_auth_token="wrong-twilio-token-0123456789")  # fmt: skip
    settings = make_settings(tmp_path, egress_allowed_hosts=LOOPBACK, twilio_api_base_url=sandboxes.twilio)
    async with running(settings) as client:
        assert (await client.post("/v1/tenants", json=body, headers=ADMIN)).status_code == 201
        results = await connection_test(client)
        audit = (
            await client.get("/v1/audit", params={"action": "tenant.connection_test"}, headers=ADMIN)
        ).json()
    assert {p: (r["ok"], r["status"]) for p, r in results.items()} == {
        "jira": (False, 401),
        "twilio": (False, 401),
        "openai": (False, 401),
    }
    assert results["jira"]["answer"] == "401 Unauthorized: Unauthorized"
    assert results["twilio"]["answer"] == "401 Unauthorized: Authenticate"
    assert results["openai"]["answer"] == "401 Unauthorized: Incorrect API key provided."
    text = repr(results) + repr(audit)
    assert "wrong" not in text and wrong_key not in text
    [entry] = audit["items"]
    assert (entry["actor"], entry["target"], entry["outcome"]) == ("admin", "tenant:acme", "success")
    assert entry["details"] == {"ok": [], "failed": ["jira", "twilio", "openai"]}


async def test_missing_credentials_the_egress_guard_and_an_unknown_tenant(
    sandboxes: SandboxUrls, tmp_path: Path
) -> None:
    body = {
        "id": "bare",
        "name": "Bare",
        "jira_base_url": sandboxes.jira,
        "openai_base_url": sandboxes.openai_v1,
    }
    # config-api's default allow-list has no loopback: the egress guard refuses before any request
    async with running(make_settings(tmp_path)) as client:
        assert (await client.post("/v1/tenants", json=body, headers=ADMIN)).status_code == 201
        assert (await client.post("/v1/tenants", json=tenant(sandboxes), headers=ADMIN)).status_code == 201
        bare = await connection_test(client, "bare")
        guarded = await connection_test(client, "acme")
        unknown = await client.post("/v1/tenants/nobody/connection-test", headers=ADMIN)
        anonymous = await client.post("/v1/tenants/acme/connection-test")
    assert bare["jira"] == {"provider": "jira", "ok": False, "status": None,
                            "answer": "not tested: no jira_email and jira_api_token stored (jira_auth is basic)"}  # fmt: skip
    assert bare["twilio"]["answer"] == "not tested: no twilio_account_sid and twilio_auth_token stored"
    assert bare["openai"]["answer"] == "not tested: no openai_api_key stored"
    assert all(not r["ok"] and r["status"] is None for r in guarded.values())
    assert (
        guarded["jira"]["answer"] == "egress refused (jira): host '127.0.0.1' is not in the egress allow-list"
    )
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "unknown tenant"})
    assert anonymous.status_code == 401
    assert await spec_valid_requests(sandboxes) == []  # nothing left this machine's guard


async def test_a_read_only_token_may_not_run_it(sandboxes: SandboxUrls, tmp_path: Path) -> None:
    async with running(make_settings(tmp_path, egress_allowed_hosts=LOOPBACK)) as client:
        assert (await client.post("/v1/tenants", json=tenant(sandboxes), headers=ADMIN)).status_code == 201
        created = await client.post(
            "/v1/admin/tokens", json={"name": "viewer", "scope": "read-only"}, headers=ADMIN
        )
        refused = await client.post("/v1/tenants/acme/connection-test", headers=auth(created.json()["token"]))
    assert refused.status_code == 403 and "read-only" in refused.json()["detail"]
    assert await spec_valid_requests(sandboxes) == []


def test_the_answer_is_scrubbed_of_credentials_and_phone_numbers() -> None:
    from voiceticket_config_api.routes_connection import provider_message, scrub

    said = "Incorrect API key provided: sk-proj-abcd****wxyz. Call +14155550123 " + "x" * 400
    cleaned = scrub(said, ("my-own-secret",))
    assert "sk-proj" not in cleaned and "+14155550123" not in cleaned and len(cleaned) <= 240
    assert scrub("token my-own-secret refused", ("my-own-secret",)) == "token [credential] refused"
    assert provider_message({"errorMessages": ["a", "b"], "errors": {}}) == "a; b"
    assert provider_message({"error": {"message": "quota"}}) == "quota"
    assert provider_message({"code": 20003, "message": "Authenticate"}) == "Authenticate"
    assert provider_message(["not", "a", "dict"]) == ""
