# ruff: noqa: S105, S106 - test credentials
"""Jira OAuth 2.0 as the second way to authenticate, and the missed-call line setting."""

from __future__ import annotations

import sqlite3

import pytest
from config_api_testkit import (
    ACCOUNT_SID,
    NUMBER,
    PLAIN,
    SERVICE_TOKENS,
    line_body,
    tenant_body,
)

CLOUD_URL = "https://api.atlassian.com/ex/jira/35273b54-3f06-40d2-880f-dd28cf8daafa"
OAUTH_TOKEN = "eyJraWQiOiJvYXV0aC1hY2Nlc3MtdG9rZW4tMDAwMDAwMDAwMDAw.oauth-secret-5150"


def oauth_tenant(**extra: object) -> dict[str, object]:
    body = tenant_body(
        **{"jira_base_url": CLOUD_URL, "jira_auth": "oauth2", "jira_oauth_token": OAUTH_TOKEN, **extra}
    )
    del body["jira_api_token"]
    return body


async def test_basic_is_the_default_and_the_oauth_token_is_masked_and_encrypted(client, settings, admin):
    basic = await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    oauth = await client.post("/v1/tenants", json=oauth_tenant(id="globex"), headers=admin)

    assert basic.status_code == 201 and oauth.status_code == 201, oauth.text
    assert (basic.json()["jira_auth"], basic.json()["jira_oauth_token"]) == ("basic", None)
    assert oauth.json()["jira_auth"] == "oauth2"
    assert oauth.json()["jira_oauth_token"] == "••••5150"
    listed = await client.get("/v1/tenants", headers=admin)
    assert OAUTH_TOKEN not in oauth.text + listed.text
    db_file = settings.database_url.split("///", 1)[1]
    with sqlite3.connect(db_file) as conn:
        dump = "\n".join(conn.iterdump())
        [stored] = conn.execute("SELECT jira_oauth_token_enc FROM tenants WHERE id = 'globex'").fetchone()
    assert OAUTH_TOKEN not in dump and stored.startswith("k1:gAAAAA")


async def test_the_oauth_token_rotates_through_the_credentials_endpoint(client, admin, service_headers):
    await client.post("/v1/tenants", json=oauth_tenant(), headers=admin)
    await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
    rotated = "eyJraWQiOiJyb3RhdGVkLXRva2VuLTAwMDAwMDAwMDAwMDAw.rotated-9999"

    r = await client.put(
        "/v1/tenants/acme/credentials/jira_oauth_token", json={"value": rotated}, headers=admin
    )
    view = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("jira-writer"))

    assert r.status_code == 200 and r.json()["jira_oauth_token"] == "••••9999"
    assert rotated not in r.text
    tenant = view.json()["tenant"]
    assert (tenant["jira_auth"], tenant["jira_oauth_token"], tenant["jira_base_url"]) == (
        "oauth2",
        rotated,
        CLOUD_URL,
    )


async def test_only_jira_writer_sees_the_oauth_token(client, admin, service_headers):
    await client.post("/v1/tenants", json=oauth_tenant(), headers=admin)
    await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
    for role in SERVICE_TOKENS:
        r = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers(role))
        assert (OAUTH_TOKEN in r.text) == (role == "jira-writer"), role


@pytest.mark.parametrize(
    "jira_base_url",
    ["https://acme.atlassian.net", "https://api.atlassian.com/ex/jira/", "https://x/ex/jira/a/b"],
)
async def test_oauth_needs_the_gateway_url(client, jira_base_url, admin):
    r = await client.post("/v1/tenants", json=oauth_tenant(jira_base_url=jira_base_url), headers=admin)

    assert r.status_code == 422
    assert "api.atlassian.com/ex/jira/<cloudId>" in r.text
    assert OAUTH_TOKEN not in r.text


async def test_patching_to_oauth_keeps_the_url_rule(client, admin):
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)

    refused = await client.patch("/v1/tenants/acme", json={"jira_auth": "oauth2"}, headers=admin)
    accepted = await client.patch(
        "/v1/tenants/acme", json={"jira_auth": "oauth2", "jira_base_url": CLOUD_URL}, headers=admin
    )
    unknown = await client.patch("/v1/tenants/acme", json={"jira_auth": "jwt"}, headers=admin)

    assert refused.status_code == 422 and "ex/jira" in refused.text
    assert accepted.status_code == 200 and accepted.json()["jira_auth"] == "oauth2"
    assert unknown.status_code == 422
    assert (await client.get("/v1/tenants/acme", headers=admin)).json()["jira_base_url"] == CLOUD_URL


async def test_jira_writer_sees_twilio_only_for_lines_that_attach_the_recording(
    client, admin, service_headers
):
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    attaching = "+14155550122"
    await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
    await client.put(f"/v1/lines/{attaching}", json=line_body(attach_recording=True), headers=admin)
    token = service_headers("jira-writer")

    plain = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=token)
    attach = await client.get(f"/v1/runtime/lines/{attaching}", headers=token)

    assert PLAIN["twilio_auth_token"] not in plain.text and "twilio_account_sid" not in plain.json()["tenant"]
    assert attach.json()["tenant"]["twilio_auth_token"] == PLAIN["twilio_auth_token"]
    assert attach.json()["tenant"]["twilio_account_sid"] == ACCOUNT_SID
    assert PLAIN["openai_api_key"] not in plain.text + attach.text


async def test_ticket_on_absent_recording_defaults_off_and_round_trips(client, admin, service_headers):
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    other = "+14155550111"

    default = await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
    enabled = await client.put(
        f"/v1/lines/{other}", json=line_body(ticket_on_absent_recording=True), headers=admin
    )
    view = await client.get(f"/v1/runtime/lines/{other}", headers=service_headers("jira-writer"))
    ingress = await client.get(f"/v1/runtime/lines/{other}", headers=service_headers("ingress"))

    assert default.json()["ticket_on_absent_recording"] is False
    assert enabled.json()["ticket_on_absent_recording"] is True
    assert view.json()["line"]["ticket_on_absent_recording"] is True
    assert "ticket_on_absent_recording" not in ingress.json()["line"]
