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
    make_settings,
    running,
    tenant_body,
)

from voiceticket_config_api.routes_runtime import LINE_GATED, ROLE_VIEWS

EXPECTED = {
    "ingress": (
        {"twilio_account_sid", "twilio_auth_token"},
        {
            "number",
            "language",
            "greeting",
            "recording_notice",
            "voice",
            "max_recording_seconds",
            "record_timeout_seconds",
            "record_finish_on_key",
        },
    ),
    "transcriber": (
        {
            "twilio_account_sid",
            "twilio_auth_token",
            "openai_base_url",
            "openai_api_key",
            "transcription_model",
            "vocabulary",
        },
        {"number", "language_mode", "language"},
    ),
    "analyzer": (
        {"openai_base_url", "openai_api_key", "analysis_model"},
        {"number", "language_mode", "language", "request_types", "request_type_id"},
    ),
    "jira-writer": (
        {
            "jira_base_url",
            "jira_auth",
            "jira_email",
            "jira_api_token",
            "jira_oauth_token",
            "twilio_account_sid",
            "twilio_auth_token",
        },
        {
            "number",
            "service_desk_id",
            "request_type_id",
            "request_types",
            "phone_field_id",
            "attach_recording",
            "ticket_on_absent_recording",
            "language",
        },
    ),
    "notifier": (
        {"twilio_account_sid", "twilio_auth_token"},
        {"number", "sms_enabled", "sms_from", "sms_messaging_service_sid", "sms_template", "language"},
    ),
}


def test_role_views_match_the_contract():
    assert {r: (set(t), set(ln)) for r, (t, ln) in ROLE_VIEWS.items()} == EXPECTED


@pytest.mark.parametrize("role", sorted(EXPECTED))
async def test_runtime_view_per_role(seeded, role):
    r = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(SERVICE_TOKENS[role]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"tenant_id", "line", "tenant"}
    assert body["tenant_id"] == "acme"
    tenant_fields, line_fields = EXPECTED[role]
    tenant_fields = tenant_fields - set(LINE_GATED.get(role, {}))  # line_body() attaches no recording
    assert set(body["tenant"]) == tenant_fields
    assert set(body["line"]) == line_fields
    for name, value in PLAIN.items():  # secrets decrypted, and only those the role needs
        if name in tenant_fields:
            assert body["tenant"][name] == value
        else:
            assert value not in r.text
    assert r.headers["cache-control"] == "no-store"


async def test_least_privilege_examples(seeded):
    notifier = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(SERVICE_TOKENS["notifier"]))
    assert notifier.json()["tenant"] == {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": PLAIN["twilio_auth_token"],
    }
    assert PLAIN["jira_api_token"] not in notifier.text
    assert PLAIN["openai_api_key"] not in notifier.text
    jira = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(SERVICE_TOKENS["jira-writer"]))
    # jira-writer sees Twilio only for lines that attach the recording (ADR 6), OpenAI never
    assert "twilio_auth_token" not in jira.json()["tenant"]
    assert PLAIN["twilio_auth_token"] not in jira.text
    assert PLAIN["openai_api_key"] not in jira.text
    analyzer = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(SERVICE_TOKENS["analyzer"]))
    assert PLAIN["twilio_auth_token"] not in analyzer.text and PLAIN["jira_api_token"] not in analyzer.text


async def test_unknown_line_404(seeded):
    for number in ("+14155550999", "not-a-number", "%2B14155550999"):
        r = await seeded.get(f"/v1/runtime/lines/{number}", headers=auth(SERVICE_TOKENS["ingress"]))
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


async def test_wrong_role_403(seeded):
    for role, token in SERVICE_TOKENS.items():
        r = await seeded.get("/v1/tenants", headers=auth(token))
        assert r.status_code == 403, role
        r = await seeded.post("/v1/admin/rotate-master-key", headers=auth(token))
        assert r.status_code == 403, role
    # the admin reads masks only; the decrypting runtime API is for services
    r = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(ADMIN_TOKEN))
    assert r.status_code == 403


async def test_no_admin_token_configured_locks_admin_api(tmp_path):
    async with running(make_settings(tmp_path, admin_token=None)) as client:
        assert (await client.get("/v1/tenants", headers=auth(""))).status_code == 401
        assert (await client.get("/v1/tenants", headers=auth("None"))).status_code == 401


async def test_logs_hold_no_numbers_or_secrets(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with running(make_settings(tmp_path)) as client:
        a = auth(ADMIN_TOKEN)
        await client.post("/v1/tenants", json=tenant_body(), headers=a)
        await client.put(f"/v1/lines/{NUMBER}", json=line_body(sms_from="+14155550177"), headers=a)
        await client.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(SERVICE_TOKENS["notifier"]))
        await client.get("/v1/runtime/lines/+14155550999", headers=auth(SERVICE_TOKENS["ingress"]))
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
