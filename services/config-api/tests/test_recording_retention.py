"""A tenant's recording_retention: stored, validated, served to jira-writer with the Twilio
account it needs to delete recordings (and only then, unless the line attaches them)."""

from __future__ import annotations

import pytest
from config_api_testkit import NUMBER, PLAIN


async def jira_view(client, service_headers):  # type: ignore[no-untyped-def]
    r = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("jira-writer"))
    assert r.status_code == 200, r.text
    return r.json()["tenant"]


@pytest.mark.parametrize("value", ["delete_after_ticket", 30])
async def test_deleting_tenants_serve_jira_writer_the_twilio_account(seeded, admin, service_headers, value):
    assert (await jira_view(seeded, service_headers))["recording_retention"] == "keep"
    assert "twilio_auth_token" not in await jira_view(seeded, service_headers)
    r = await seeded.patch("/v1/tenants/acme", json={"recording_retention": value}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["recording_retention"] == value
    view = await jira_view(seeded, service_headers)
    assert view["recording_retention"] == str(value)
    assert view["twilio_auth_token"] == PLAIN["twilio_auth_token"]


@pytest.mark.parametrize("value", ["forever", 0, -3, None, 3651])
async def test_bad_recording_retention_is_refused(seeded, admin, value):
    r = await seeded.patch("/v1/tenants/acme", json={"recording_retention": value}, headers=admin)
    assert r.status_code == 422, r.text
