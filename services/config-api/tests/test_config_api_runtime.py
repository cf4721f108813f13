from __future__ import annotations

import logging

import pytest
from config_api_testkit import (
    ACCOUNT_SID,
    ADMIN_TOKEN,
    NUMBER,
    PLAIN,
    SERVICE_TOKENS,
    auth,
    line_body,
    tenant_body,
)

from voiceticket_common.runtime_views import VIEWS, JiraWriterView, NotifierView
from voiceticket_config_api.db import SECRET_FIELDS, Line, Tenant
from voiceticket_config_api.routes_runtime import (
    COMPUTED_TENANT_FIELDS,
    LINE_GATED,
    ROLE_SUBFIELDS,
    ROLE_VIEWS,
)

# Who may hold each credential. A view that adds one for another role fails here first.
SECRET_AUDIENCE = {
    "twilio_auth_token": {"ingress", "transcriber", "jira-writer", "notifier"},
    "openai_api_key": set(),  # served only resolved, as the provider's own key (below)
    "speech_to_text_api_key": {"transcriber"},
    "llm_api_key": {"analyzer"},
    "jira_api_token": {"jira-writer"},
    "jira_oauth_token": {"jira-writer"},
    "jira_webhook_secret": {"ingress"},  # verifies Jira's status webhooks; nobody else needs it
}


def test_role_views_are_the_services_view_models():
    assert set(ROLE_VIEWS) == set(VIEWS) == set(SERVICE_TOKENS)
    for role, view in VIEWS.items():
        assert ROLE_VIEWS[role] == (view.tenant_fields(), view.line_fields())
        assert "number" in view.line_fields()


def test_views_name_only_what_config_api_stores():
    for role, (tenant_fields, line_fields) in ROLE_VIEWS.items():
        stored = {c.name for c in Tenant.__table__.columns} | set(SECRET_FIELDS) | set(COMPUTED_TENANT_FIELDS)
        assert set(tenant_fields) <= stored, role
        assert set(line_fields) <= {c.name for c in Line.__table__.columns}, role
    for role, gated in LINE_GATED.items():
        tenant_fields, line_fields = ROLE_VIEWS[role]
        assert set(gated) <= set(tenant_fields) and set(gated.values()) <= set(line_fields), role


def test_no_view_leaks_a_credential_it_does_not_need():
    for name in SECRET_FIELDS:
        assert {role for role, (tenant, _) in ROLE_VIEWS.items() if name in tenant} == SECRET_AUDIENCE[name]
    assert not {"jira_api_token", "jira_oauth_token", "openai_api_key"} & set(NotifierView.tenant_fields())
    assert "openai_api_key" not in JiraWriterView.tenant_fields()
    assert JiraWriterView.line_gated == {
        "twilio_account_sid": "attach_recording",
        "twilio_auth_token": "attach_recording",
    }


# Whose limit each role sees: only the provider it calls itself.
CONCURRENCY_AUDIENCE = {
    "transcriber": ("speech_to_text",),
    "analyzer": ("llm",),
    "jira-writer": ("jira",),
    "notifier": ("sms",),
}


def test_each_view_sees_only_its_own_providers_limit():
    assert {role: sub["provider_concurrency"] for role, sub in ROLE_SUBFIELDS.items()} == CONCURRENCY_AUDIENCE
    assert all(set(sub) == {"provider_concurrency"} for sub in ROLE_SUBFIELDS.values())
    assert "provider_concurrency" not in ROLE_VIEWS["ingress"][0]


@pytest.mark.parametrize("role", sorted(ROLE_VIEWS))
async def test_runtime_view_per_role(seeded, role, service_headers):
    r = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers(role))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"tenant_id", "line", "tenant"}
    assert body["tenant_id"] == "acme"
    tenant_fields, line_fields = ROLE_VIEWS[role]
    tenant_fields = set(tenant_fields) - set(LINE_GATED.get(role, {}))  # line_body() attaches no recording
    assert set(body["tenant"]) == tenant_fields
    assert set(body["line"]) == set(line_fields)
    # the OpenAI key reaches a role only as its provider's resolved key (the tenant sets no own one)
    provider_key = {"speech_to_text_api_key", "llm_api_key"} & tenant_fields
    for name, value in PLAIN.items():  # secrets decrypted, and only those the role needs
        if name in tenant_fields:
            assert body["tenant"][name] == value
        elif name == "openai_api_key" and provider_key:
            assert [body["tenant"][key] for key in provider_key] == [value]
        else:
            assert value not in r.text
    assert r.headers["cache-control"] == "no-store"
    view = VIEWS[role].model_validate(body)  # what the service reads is what was served
    assert view.tenant_id == "acme" and view.line.number == NUMBER


async def test_least_privilege_examples(seeded, service_headers):
    notifier = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("notifier"))
    assert notifier.json()["tenant"] == {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": PLAIN["twilio_auth_token"],
        "provider_concurrency": {"sms": 4},  # its own provider's limit only
    }
    assert PLAIN["jira_api_token"] not in notifier.text
    assert PLAIN["openai_api_key"] not in notifier.text
    jira = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("jira-writer"))
    # jira-writer sees Twilio only for lines that attach the recording (ADR 6), OpenAI never
    assert "twilio_auth_token" not in jira.json()["tenant"]
    assert PLAIN["twilio_auth_token"] not in jira.text
    assert PLAIN["openai_api_key"] not in jira.text
    analyzer = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("analyzer"))
    assert PLAIN["twilio_auth_token"] not in analyzer.text and PLAIN["jira_api_token"] not in analyzer.text


async def test_unknown_line_404(seeded, service_headers):
    for number in ("+14155550999", "not-a-number", "%2B14155550999"):
        r = await seeded.get(f"/v1/runtime/lines/{number}", headers=service_headers("ingress"))
        assert r.status_code == 404
        assert r.json() == {"detail": "unknown line"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        auth("wrong-token"),
        auth(SERVICE_TOKENS["notifier"] + "x"),
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
    ],
)
async def test_missing_or_unknown_token_401(seeded, headers):
    for path in ("/v1/tenants", f"/v1/runtime/lines/{NUMBER}"):
        r = await seeded.get(path, headers=headers)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"


async def test_wrong_role_403(seeded, admin):
    for role, token in SERVICE_TOKENS.items():
        r = await seeded.get("/v1/tenants", headers=auth(token))
        assert r.status_code == 403, role
        r = await seeded.post("/v1/admin/rotate-master-key", headers=auth(token))
        assert r.status_code == 403, role
    # the admin reads masks only; the decrypting runtime API is for services
    r = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=admin)
    assert r.status_code == 403


async def test_no_admin_token_configured_locks_admin_api(start):
    async with start(admin_token=None) as client:
        assert (await client.get("/v1/tenants", headers=auth(""))).status_code == 401
        assert (await client.get("/v1/tenants", headers=auth("None"))).status_code == 401


async def test_logs_hold_no_numbers_or_secrets(caplog, admin, service_headers, start):
    caplog.set_level(logging.DEBUG)
    async with start() as client:
        await client.post("/v1/tenants", json=tenant_body(), headers=admin)
        await client.put(f"/v1/lines/{NUMBER}", json=line_body(sms_from="+14155550177"), headers=admin)
        await client.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("notifier"))
        await client.get("/v1/runtime/lines/+14155550999", headers=service_headers("ingress"))
    ours = [r for r in caplog.records if r.name.startswith(("voiceticket_config_api", "uvicorn"))]
    text = "\n".join(r.getMessage() for r in ours)
    assert "GET /v1/runtime/lines/{number} 200" in text  # access log uses the route template
    for needle in (NUMBER, "14155550", "+14155550177", *PLAIN.values(), *SERVICE_TOKENS.values()):
        assert needle not in text


async def test_health_and_ready(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200 and r.json() == {"status": "ready"}
    await client.app.state.engine.dispose()  # type: ignore[attr-defined]
    client.app.state.engine = type("Broken", (), {"connect": lambda self: 1 / 0})()  # type: ignore[attr-defined]
    assert (await client.get("/readyz")).status_code == 503
