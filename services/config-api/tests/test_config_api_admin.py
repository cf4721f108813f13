# ruff: noqa: S105, S106 - test credentials
from __future__ import annotations

import sqlite3

import pytest
from config_api_testkit import NUMBER, PLAIN, auth, line_body, tenant_body


def assert_no_plaintext(text: str) -> None:
    for value in PLAIN.values():
        assert value not in text


async def test_tenant_crud_and_masking(client, admin):
    r = await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["jira_api_token"] == "••••" + PLAIN["jira_api_token"][-4:]
    assert body["twilio_auth_token"] == "••••" + PLAIN["twilio_auth_token"][-4:]
    assert body["openai_api_key"] == "••••" + PLAIN["openai_api_key"][-4:]
    assert body["openai_base_url"] == "https://api.openai.com/v1"
    assert body["transcription_model"] == "gpt-4o-mini-transcribe"
    assert body["analysis_model"] == "gpt-4o-mini"
    assert body["created_at"].endswith(("Z", "+00:00"))
    assert r.headers["cache-control"] == "no-store"

    assert (await client.post("/v1/tenants", json=tenant_body(), headers=admin)).status_code == 409

    r = await client.patch("/v1/tenants/acme", json={"name": "Acme Inc"}, headers=admin)
    assert r.status_code == 200 and r.json()["name"] == "Acme Inc"
    r = await client.put(
        "/v1/tenants/acme/credentials/openai_api_key",
        json={"value": "sk-rotated-key-000000abcd"},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["openai_api_key"] == "••••abcd"

    responses = [
        await client.get("/v1/tenants", headers=admin),
        await client.get("/v1/tenants/acme", headers=admin),
    ]
    assert [t["id"] for t in responses[0].json()] == ["acme"]
    assert responses[1].json()["name"] == "Acme Inc"
    for resp in [r, *responses]:
        assert_no_plaintext(resp.text)
        assert "sk-rotated-key-000000abcd" not in resp.text

    assert (await client.get("/v1/tenants/nope", headers=admin)).status_code == 404
    assert (await client.delete("/v1/tenants/acme", headers=admin)).status_code == 200
    assert (await client.get("/v1/tenants/acme", headers=admin)).status_code == 404


async def test_unset_and_short_secrets(client, admin):
    body = tenant_body("bare", jira_api_token="short1234")
    del body["openai_api_key"]
    r = await client.post("/v1/tenants", json=body, headers=admin)
    assert r.status_code == 201
    assert r.json()["openai_api_key"] is None
    assert r.json()["jira_api_token"] == "••••"  # too short to reveal its tail


async def test_secrets_encrypted_at_rest(client, settings, admin):
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    db_file = settings.database_url.split("///", 1)[1]
    with sqlite3.connect(db_file) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM tenants WHERE id = 'acme'").fetchone())
        dump = "\n".join(conn.iterdump())
    assert_no_plaintext(dump)
    for name in PLAIN:
        assert name not in row  # only the *_enc columns exist
        assert row[f"{name}_enc"].startswith("k1:gAAAAA")  # kid + Fernet token


async def test_patch_validation(client, admin):
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    r = await client.patch("/v1/tenants/acme", json={"jira_api_token": "x" * 20}, headers=admin)
    assert r.status_code == 422
    assert "credentials" in r.text and "PUT /v1/tenants/{id}/credentials/{name}" in r.text
    assert "x" * 20 not in r.text  # inputs are not echoed
    r = await client.patch("/v1/tenants/acme", json={"name": None}, headers=admin)
    assert r.status_code == 422
    r = await client.put("/v1/tenants/acme/credentials/bogus", json={"value": "v"}, headers=admin)
    assert r.status_code == 422


BLANK_OR_INVISIBLE = [
    "",
    " ",
    "\u00a0",
    "\u200b",
    "\ufeff",
    "\t\n",
    "\u3000",
    "tok\u00a0en",
    "tok\x00en",
    "tok en",
]


@pytest.mark.parametrize("value", BLANK_OR_INVISIBLE)
async def test_blank_or_invisible_credentials_are_refused(client, admin, value):
    """A credential of whitespace or invisible characters is a paste error: 422, nothing stored."""
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    before = (await client.get("/v1/tenants/acme", headers=admin)).json()
    r = await client.put("/v1/tenants/acme/credentials/openai_api_key", json={"value": value}, headers=admin)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]  # FastAPI's documented shape: a list of {loc, msg, type}
    assert error["loc"] == ["body", "value"] and error["type"]
    assert (await client.get("/v1/tenants/acme", headers=admin)).json() == before
    r = await client.post("/v1/tenants", json=tenant_body("beta", twilio_auth_token=value), headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "twilio_auth_token"]


async def test_credentials_lose_surrounding_whitespace(client, admin):
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    r = await client.put(
        "/v1/tenants/acme/credentials/openai_api_key",
        json={"value": "  sk-new-key-0123456789\n"},
        headers=admin,
    )
    assert r.status_code == 200 and r.json()["openai_api_key"] == "••••6789"


async def test_checks_needing_the_database_answer_in_the_validation_shape(client, admin):
    """No 422 with a string detail: the document says 422 is a list of {loc, msg, type}."""
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    unknown = await client.put(f"/v1/lines/{NUMBER}", json=line_body("ghost"), headers=admin)
    differs = await client.put(f"/v1/lines/{NUMBER}", json=line_body(number="+14155550199"), headers=admin)
    oauth = await client.patch("/v1/tenants/acme", json={"jira_auth": "oauth2"}, headers=admin)
    for r, loc in ((unknown, "tenant_id"), (differs, "number"), (oauth, "jira_base_url")):
        assert r.status_code == 422
        assert r.json() == {
            "detail": [{"loc": ["body", loc], "msg": r.json()["detail"][0]["msg"], "type": "value_error"}]
        }


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"id": "Not A Slug"}, "id"),
        ({"jira_base_url": "ftp://x"}, "http(s) URL"),
        ({"twilio_account_sid": "XX123"}, "twilio_account_sid"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_tenant_validation(client, override, needle, admin):
    r = await client.post("/v1/tenants", json=tenant_body(**override), headers=admin)
    assert r.status_code == 422
    assert needle in r.text
    assert_no_plaintext(r.text)


async def test_line_crud(client, admin):
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    r = await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
    assert r.status_code == 201, r.text
    line = r.json()
    assert line["number"] == NUMBER
    assert line["greeting"] == "Thank you for calling support."
    assert line["voice"] == "Polly.Joanna"
    assert line["max_recording_seconds"] == 120
    assert line["sms_enabled"] is True and line["attach_recording"] is False
    assert line["sms_template"].endswith("{request_key} has been created.")
    assert (line["record_timeout_seconds"], line["record_finish_on_key"]) == (5, "#")
    assert line["sms_messaging_service_sid"] is None

    # replace: omitted fields go back to their defaults; %2B-encoded path works too
    r = await client.put(
        "/v1/lines/%2B14155550100", json=line_body(language="de", sms_enabled=False), headers=admin
    )
    assert r.status_code == 200
    assert r.json()["language"] == "de" and r.json()["sms_enabled"] is False
    assert (await client.get(f"/v1/lines/{NUMBER}", headers=admin)).json()["language"] == "de"
    assert len((await client.get("/v1/lines", headers=admin)).json()) == 1
    assert (await client.get("/v1/lines?tenant_id=other", headers=admin)).json() == []
    assert (await client.delete(f"/v1/lines/{NUMBER}", headers=admin)).status_code == 204
    assert (await client.get(f"/v1/lines/{NUMBER}", headers=admin)).status_code == 404
    assert (await client.delete(f"/v1/lines/{NUMBER}", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    ("number", "override", "needle"),
    [
        ("4155550100", {}, "E.164"),
        ("+0123456789", {}, "E.164"),
        (NUMBER, {"sms_from": "0800"}, "E.164"),
        (NUMBER, {"language_mode": "sometimes"}, "language_mode"),
        (NUMBER, {"language": "eng"}, "language"),
        (NUMBER, {"sms_template": "Hi {name}"}, "unknown placeholder"),
        (NUMBER, {"sms_template": "Thanks, we got your call: {summary}"}, "must contain {request_key}"),
        (NUMBER, {"sms_template": "{request_key}: {summary:.20}"}, "no format spec"),
        (NUMBER, {"record_timeout_seconds": 0}, "record_timeout_seconds"),
        (NUMBER, {"record_finish_on_key": "A"}, "record_finish_on_key"),
        (NUMBER, {"sms_messaging_service_sid": "+14155550100"}, "sms_messaging_service_sid"),
        (NUMBER, {"phone_field_id": "summary"}, "phone_field_id"),
        (NUMBER, {"max_recording_seconds": 0}, "max_recording_seconds"),
        (NUMBER, {"tenant_id": "ghost"}, "unknown tenant"),
        (NUMBER, {"number": "+14155550199"}, "differs"),
    ],
)
async def test_line_validation(client, number, override, needle, admin):
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    r = await client.put(f"/v1/lines/{number}", json=line_body(**override), headers=admin)
    assert r.status_code == 422, r.text
    assert needle in r.text


async def test_tenant_delete_removes_lines_and_credentials(seeded, settings, admin):
    await seeded.put("/v1/lines/+14155550101", json=line_body(), headers=admin)
    assert len((await seeded.get("/v1/lines", headers=admin)).json()) == 2
    assert (await seeded.delete("/v1/tenants/acme", headers=admin)).status_code == 200
    assert (await seeded.get("/v1/lines", headers=admin)).json() == []
    db_file = settings.database_url.split("///", 1)[1]
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM tenants").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM lines").fetchone()[0] == 0
    r = await seeded.get(f"/v1/runtime/lines/{NUMBER}", headers=auth("notifier-token-0123456789abcdef"))
    assert r.status_code == 404


async def test_twilio_line_settings_round_trip(client, admin):
    await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    body = line_body(
        record_timeout_seconds=8,
        record_finish_on_key="*#",
        sms_messaging_service_sid="MG" + "a" * 32,
        sms_template="{request_key}: {summary}",
    )
    r = await client.put(f"/v1/lines/{NUMBER}", json=body, headers=admin)
    assert r.status_code == 201, r.text
    stored = (await client.get(f"/v1/lines/{NUMBER}", headers=admin)).json()
    assert (stored["record_timeout_seconds"], stored["record_finish_on_key"]) == (8, "*#")
    assert stored["sms_messaging_service_sid"] == "MG" + "a" * 32
    assert stored["sms_template"] == "{request_key}: {summary}"
