"""The tenant's speech-to-text vocabulary: validated, defaulted, patched, and only the
transcriber sees it."""

from __future__ import annotations

import pytest
from config_api_testkit import NUMBER, SERVICE_TOKENS, auth, line_body, tenant_body


async def test_vocabulary_defaults_to_empty_and_can_be_set_and_patched(client, admin) -> None:  # type: ignore[no-untyped-def]
    r = await client.post("/v1/tenants", json=tenant_body(), headers=admin)
    assert r.status_code == 201 and r.json()["vocabulary"] == []
    r = await client.patch(
        "/v1/tenants/acme", json={"vocabulary": ["FlexiBill", " Acme Router X2 "]}, headers=admin
    )
    assert r.status_code == 200 and r.json()["vocabulary"] == ["FlexiBill", "Acme Router X2"]
    assert (await client.get("/v1/tenants/acme", headers=admin)).json()["vocabulary"] == [
        "FlexiBill",
        "Acme Router X2",
    ]
    r = await client.post("/v1/tenants", json=tenant_body("beta", vocabulary=["VoIP"]), headers=admin)
    assert r.json()["vocabulary"] == ["VoIP"]


@pytest.mark.parametrize(
    "vocabulary",
    [["x" * 101], [""], [f"term{i}" for i in range(201)], "FlexiBill", None],
    ids=["term-too-long", "empty-term", "too-many", "not-a-list", "null"],
)
async def test_invalid_vocabulary_is_refused(client, vocabulary, admin) -> None:  # type: ignore[no-untyped-def]
    assert (await client.post("/v1/tenants", json=tenant_body(), headers=admin)).status_code == 201
    r = await client.patch("/v1/tenants/acme", json={"vocabulary": vocabulary}, headers=admin)
    assert r.status_code == 422


async def test_only_the_transcriber_view_carries_the_vocabulary(client, admin, service_headers) -> None:  # type: ignore[no-untyped-def]
    await client.post("/v1/tenants", json=tenant_body(vocabulary=["FlexiBill"]), headers=admin)
    await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)
    for role, token in SERVICE_TOKENS.items():
        view = (await client.get(f"/v1/runtime/lines/{NUMBER}", headers=auth(token))).json()
        assert ("vocabulary" in view["tenant"]) == (role == "transcriber"), role
    transcriber = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("transcriber"))
    assert transcriber.json()["tenant"]["vocabulary"] == ["FlexiBill"]
    analyzer = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers("analyzer"))
    assert analyzer.json()["line"]["request_type_id"] == "10"
