"""A tenant's provider_concurrency: validated, stored (only what was set), audited by name, shown
with defaults filled in, and served to each service narrowed to its own provider's limit."""

from __future__ import annotations

import pytest
from config_api_testkit import NUMBER, line_body, tenant_body

from voiceticket_common.runtime_views import (
    DEFAULT_PROVIDER_CONCURRENCY,
    VIEWS,
    AnalyzerView,
    JiraWriterView,
    NotifierView,
    TranscriberView,
)
from voiceticket_config_api.db import Tenant, make_engine, make_sessionmaker

DEFAULTS = dict(DEFAULT_PROVIDER_CONCURRENCY)


async def served(client, service_headers, role):  # type: ignore[no-untyped-def]
    r = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers(role))
    assert r.status_code == 200, r.text
    return r.json()


async def test_defaults_are_shown_and_served(seeded, admin, service_headers):
    r = await seeded.get("/v1/tenants/acme", headers=admin)
    assert (
        r.json()["provider_concurrency"] == {"speech_to_text": 8, "llm": 8, "jira": 4, "sms": 4} == DEFAULTS
    )
    for role, provider in (
        ("transcriber", "speech_to_text"),
        ("analyzer", "llm"),
        ("jira-writer", "jira"),
        ("notifier", "sms"),
    ):
        assert (await served(seeded, service_headers, role))["tenant"]["provider_concurrency"] == {
            provider: DEFAULTS[provider]
        }
    assert "provider_concurrency" not in (await served(seeded, service_headers, "ingress"))["tenant"]


async def test_a_patched_limit_is_stored_audited_and_served(seeded, admin, service_headers, settings):
    r = await seeded.patch(
        "/v1/tenants/acme", json={"provider_concurrency": {"jira": 2, "llm": None}}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["provider_concurrency"] == {"speech_to_text": 8, "llm": None, "jira": 2, "sms": 4}

    jira = JiraWriterView.model_validate(await served(seeded, service_headers, "jira-writer"))
    assert jira.tenant.provider_concurrency.jira == 2
    analyzer_body = await served(seeded, service_headers, "analyzer")
    assert analyzer_body["tenant"]["provider_concurrency"] == {"llm": None}
    # null is unlimited, not "unset": the analyzer reads None, not its default of 8
    assert AnalyzerView.model_validate(analyzer_body).tenant.provider_concurrency.llm is None
    transcriber = TranscriberView.model_validate(await served(seeded, service_headers, "transcriber"))
    assert transcriber.tenant.provider_concurrency.speech_to_text == 8

    audit = (await seeded.get("/v1/audit", params={"action": "tenant.update"}, headers=admin)).json()
    [entry] = audit["items"]
    assert entry["details"] == {"fields": ["provider_concurrency"]}  # the name, never the values
    assert entry["target"] == "tenant:acme"


async def test_only_what_was_set_is_stored(seeded, admin, settings):
    await seeded.patch("/v1/tenants/acme", json={"provider_concurrency": {"sms": 1}}, headers=admin)
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            tenant = await session.get(Tenant, "acme")
            assert tenant is not None and tenant.provider_concurrency == {"sms": 1}
    finally:
        await engine.dispose()


async def test_patch_replaces_the_whole_object_and_null_restores_the_defaults(seeded, admin):
    await seeded.patch(
        "/v1/tenants/acme", json={"provider_concurrency": {"jira": 1, "sms": 1}}, headers=admin
    )
    r = await seeded.patch("/v1/tenants/acme", json={"provider_concurrency": {"jira": 3}}, headers=admin)
    assert r.json()["provider_concurrency"] == {**DEFAULTS, "jira": 3}
    r = await seeded.patch("/v1/tenants/acme", json={"provider_concurrency": None}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["provider_concurrency"] == DEFAULTS


async def test_a_tenant_is_created_with_its_limits(client, admin, service_headers):
    body = tenant_body("globex", provider_concurrency={"speech_to_text": 2, "sms": None})
    r = await client.post("/v1/tenants", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["provider_concurrency"] == {**DEFAULTS, "speech_to_text": 2, "sms": None}
    await client.put(f"/v1/lines/{NUMBER}", json=line_body("globex"), headers=admin)
    notifier = NotifierView.model_validate(await served(client, service_headers, "notifier"))
    assert notifier.tenant.provider_concurrency.sms is None
    transcriber = TranscriberView.model_validate(await served(client, service_headers, "transcriber"))
    assert transcriber.tenant.provider_concurrency.speech_to_text == 2


@pytest.mark.parametrize(
    "value",
    [
        {"jira": 0},
        {"jira": -1},
        {"llm": 1001},
        {"sms": "4"},
        {"sms": True},
        {"sms": 2.5},
        {"speech-to-text": 4},  # not a provider: refused, not ignored
        {"twilio": 4},
        [4, 4, 4, 4],
        4,
    ],
)
async def test_bad_limits_are_refused(seeded, admin, value):
    r = await seeded.patch("/v1/tenants/acme", json={"provider_concurrency": value}, headers=admin)
    assert r.status_code == 422, r.text
    r = await seeded.get("/v1/tenants/acme", headers=admin)
    assert r.json()["provider_concurrency"] == DEFAULTS
    r = await seeded.post("/v1/tenants", json=tenant_body("other", provider_concurrency=value), headers=admin)
    assert r.status_code == 422, r.text


def test_views_fall_back_to_the_defaults_when_config_api_sends_nothing():
    body = {"tenant_id": "acme", "line": {"number": NUMBER}, "tenant": {}}
    assert TranscriberView.model_validate(body).tenant.provider_concurrency.speech_to_text == 8
    assert AnalyzerView.model_validate(body).tenant.provider_concurrency.llm == 8
    # An older config-api, or a newer one sending more keys: the other keys are ignored.
    body["tenant"] = {"provider_concurrency": {"sms": 3, "jira": 99, "future": 1}}
    assert NotifierView.model_validate(body).tenant.provider_concurrency.sms == 3
    assert set(VIEWS) == {"ingress", "transcriber", "analyzer", "jira-writer", "notifier"}
