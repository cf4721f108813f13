"""A tenant's transcription_backend: openai, local or unset; validated, stored, audited by name,
shown, and served to the transcriber alone, which resolves unset by the tenant's OpenAI key."""

from __future__ import annotations

import pytest
from config_api_testkit import NUMBER, line_body, tenant_body

from voiceticket_common.runtime_views import TranscriberView


async def served(client, service_headers, role):  # type: ignore[no-untyped-def]
    r = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers(role))
    assert r.status_code == 200, r.text
    return r.json()


async def test_unset_is_shown_as_null_and_means_openai_for_a_tenant_with_a_key(
    seeded, admin, service_headers
):
    r = await seeded.get("/v1/tenants/acme", headers=admin)
    assert r.json()["transcription_backend"] is None
    transcriber = TranscriberView.model_validate(await served(seeded, service_headers, "transcriber"))
    assert transcriber.tenant.transcription_backend is None
    assert transcriber.tenant.speech_to_text_api_key is not None  # the OpenAI key, resolved
    assert transcriber.transcription_backend() == "openai"


async def test_local_is_stored_audited_and_served_to_the_transcriber_only(seeded, admin, service_headers):
    r = await seeded.patch("/v1/tenants/acme", json={"transcription_backend": "local"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["transcription_backend"] == "local"
    transcriber = TranscriberView.model_validate(await served(seeded, service_headers, "transcriber"))
    assert transcriber.transcription_backend() == "local"  # although the tenant has a key
    for role in ("ingress", "analyzer", "jira-writer", "notifier"):
        assert "transcription_backend" not in (await served(seeded, service_headers, role))["tenant"]
    audit = (await seeded.get("/v1/audit", params={"action": "tenant.update"}, headers=admin)).json()
    assert audit["items"][0]["details"] == {"fields": ["transcription_backend"]}

    r = await seeded.patch("/v1/tenants/acme", json={"transcription_backend": None}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["transcription_backend"] is None  # null: back to the default rule


async def test_a_tenant_without_a_key_defaults_to_the_local_engine(client, admin, service_headers):
    body = tenant_body("globex")
    body.pop("openai_api_key", None)
    r = await client.post("/v1/tenants", json=body, headers=admin)
    assert r.status_code == 201, r.text
    await client.put(f"/v1/lines/{NUMBER}", json=line_body("globex"), headers=admin)
    transcriber = TranscriberView.model_validate(await served(client, service_headers, "transcriber"))
    assert transcriber.transcription_backend() == "local"


@pytest.mark.parametrize("value", ["azure", "LOCAL", "", 1, True, ["local"]])
async def test_other_values_are_refused(seeded, admin, value):  # type: ignore[no-untyped-def]
    r = await seeded.patch("/v1/tenants/acme", json={"transcription_backend": value}, headers=admin)
    assert r.status_code == 422, r.text
    r = await seeded.post(
        "/v1/tenants", json=tenant_body("other", transcription_backend=value), headers=admin
    )
    assert r.status_code == 422, r.text
    assert (await seeded.get("/v1/tenants/acme", headers=admin)).json()["transcription_backend"] is None
