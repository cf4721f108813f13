"""A tenant's own speech-to-text and LLM servers and keys (issue #15, part 3): stored, masked,
served resolved to the one service that uses each, and both checked by the connection test when
they differ, each at its own stand-in with its own key, through the tenant-host egress rule."""

# ruff: noqa: S105 - test credentials
from __future__ import annotations

from typing import Any

import httpx
from config_api_testkit import (
    ADMIN_TOKEN,
    NUMBER,
    PLAIN,
    auth,
    line_body,
    make_settings,
    running,
    tenant_body,
)

from voiceticket_sandbox import SandboxState, create_openai_app
from voiceticket_sandbox.server import serve_app

STT_KEY = "stt-secret-key-0123456789"
LLM_KEY = "llm-secret-key-9876543210"
ADMIN = auth(ADMIN_TOKEN)


async def served(client: httpx.AsyncClient, service_headers: Any, role: str) -> dict[str, Any]:
    r = await client.get(f"/v1/runtime/lines/{NUMBER}", headers=service_headers(role))
    assert r.status_code == 200, r.text
    tenant: dict[str, Any] = r.json()["tenant"]
    return tenant


async def test_each_service_is_served_only_its_own_provider(client, admin, service_headers) -> None:  # type: ignore[no-untyped-def]
    body = tenant_body(
        speech_to_text_base_url="http://whisper.ml.svc:8000/v1/",
        speech_to_text_api_key=STT_KEY,
        llm_base_url="https://vllm.corp.example/v1",
        llm_api_key=LLM_KEY,
    )
    r = await client.post("/v1/tenants", json=body, headers=admin)
    assert r.status_code == 201, r.text
    shown = r.json()
    assert shown["speech_to_text_base_url"] == "http://whisper.ml.svc:8000/v1"
    assert (shown["speech_to_text_api_key"], shown["llm_api_key"]) == (
        "••••" + STT_KEY[-4:],
        "••••" + LLM_KEY[-4:],
    )
    assert (await client.put(f"/v1/lines/{NUMBER}", json=line_body(), headers=admin)).status_code == 201

    transcriber = await served(client, service_headers, "transcriber")
    analyzer = await served(client, service_headers, "analyzer")
    assert transcriber["speech_to_text_base_url"] == "http://whisper.ml.svc:8000/v1"
    assert transcriber["speech_to_text_api_key"] == STT_KEY
    assert (analyzer["llm_base_url"], analyzer["llm_api_key"]) == ("https://vllm.corp.example/v1", LLM_KEY)
    assert LLM_KEY not in repr(transcriber) and PLAIN["openai_api_key"] not in repr(transcriber)
    assert STT_KEY not in repr(analyzer) and PLAIN["openai_api_key"] not in repr(analyzer)
    for role in ("ingress", "jira-writer", "notifier"):
        text = repr(await served(client, service_headers, role))
        assert STT_KEY not in text and LLM_KEY not in text, role


async def test_unset_falls_back_to_the_openai_settings_and_the_key_stays_at_its_server(
    seeded, admin, service_headers
) -> None:  # type: ignore[no-untyped-def]
    shown = (await seeded.get("/v1/tenants/acme", headers=admin)).json()
    assert (shown["speech_to_text_base_url"], shown["llm_base_url"], shown["llm_api_key"]) == (
        None,
        None,
        None,
    )
    analyzer = await served(seeded, service_headers, "analyzer")
    assert (analyzer["llm_base_url"], analyzer["llm_api_key"]) == (
        "https://api.openai.com/v1",
        PLAIN["openai_api_key"],
    )

    # a server of its own, no key of its own: the OpenAI key does not follow it there
    r = await seeded.patch(
        "/v1/tenants/acme", json={"llm_base_url": "https://vllm.corp.example/v1"}, headers=admin
    )
    assert r.status_code == 200, r.text
    analyzer = await served(seeded, service_headers, "analyzer")
    assert (analyzer["llm_base_url"], analyzer["llm_api_key"]) == ("https://vllm.corp.example/v1", None)
    r = await seeded.put("/v1/tenants/acme/credentials/llm_api_key", json={"value": LLM_KEY}, headers=admin)
    assert r.status_code in (200, 204), r.text
    assert (await served(seeded, service_headers, "analyzer"))["llm_api_key"] == LLM_KEY

    r = await seeded.patch("/v1/tenants/acme", json={"llm_base_url": None}, headers=admin)
    assert r.status_code == 200 and r.json()["llm_base_url"] is None
    analyzer = await served(seeded, service_headers, "analyzer")
    assert (analyzer["llm_base_url"], analyzer["llm_api_key"]) == ("https://api.openai.com/v1", LLM_KEY)
    transcriber = await served(seeded, service_headers, "transcriber")  # untouched throughout
    assert transcriber["speech_to_text_api_key"] == PLAIN["openai_api_key"]


async def test_the_connection_test_checks_both_servers_each_with_its_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stt_state, llm_state = SandboxState(), SandboxState()
    stt_state.openai.api_keys.add(STT_KEY)
    llm_state.openai.api_keys.add(LLM_KEY)
    # CIDR only: no entry names the stand-ins, they are reached as the tenant's configured hosts
    settings = make_settings(tmp_path, egress_allowed_hosts=["127.0.0.0/8"])
    async with (
        serve_app(create_openai_app(stt_state), "127.0.0.2") as stt,
        serve_app(create_openai_app(llm_state), "127.0.0.3") as llm,
        running(settings) as client,
    ):
        body = tenant_body(
            openai_base_url=f"{llm}/v1",
            openai_api_key=LLM_KEY,
            speech_to_text_base_url=f"{stt}/v1",
            speech_to_text_api_key=STT_KEY,
        )
        assert (await client.post("/v1/tenants", json=body, headers=ADMIN)).status_code == 201
        r = await client.post("/v1/tenants/acme/connection-test", headers=ADMIN)
        assert r.status_code == 200, r.text
        results = {x["provider"]: x for x in r.json()["results"]}
        async with httpx.AsyncClient() as http:
            stt_reads = (await http.get(f"{stt}/_sandbox/requests")).json()
            llm_reads = (await http.get(f"{llm}/_sandbox/requests")).json()
    assert list(results) == ["jira", "twilio", "speech_to_text", "llm"]
    assert results["speech_to_text"]["ok"] and results["llm"]["ok"], results
    assert "transcription model gpt-4o-mini-transcribe listed" in results["speech_to_text"]["answer"]
    assert "analysis model gpt-4o-mini listed" in results["llm"]["answer"]
    assert [(x["method"], x["path"]) for x in stt_reads] == [("GET", "/v1/models")]
    assert [(x["method"], x["path"]) for x in llm_reads] == [("GET", "/v1/models")]
    assert not results["jira"]["ok"]  # acme.atlassian.net: named by no entry, and nobody's tenant host
