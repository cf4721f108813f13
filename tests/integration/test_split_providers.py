"""Speech-to-text and the LLM at two different OpenAI-compatible servers (issue #15, part 3), on the
embedded runtime: each stand-in receives only its own kind of request, with its own key, and is
reached as the tenant's configured host (no egress entry names either)."""

# ruff: noqa: S105 - test credentials
from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
from voiceticket.samples import sample_calls
from voiceticket_jira_writer.jira_text import wiki_text
from voiceticket_sandbox import SandboxState, create_openai_app, run_sandboxes
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE, configure_sandboxes, seed
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.integration

STT_KEY = "sk-speech-only-0123456789"
LLM_KEY = "sk-llm-only-9876543210"


async def commented(issues: Callable[[], Awaitable[list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    return [i for i in await issues() if i.get("comments")]


async def requests_at(http: httpx.AsyncClient, origin: str) -> list[tuple[str, str, int | None]]:
    """What reached the stand-in at ``origin`` (the two sharing a state record together: by Host)."""
    records = (await http.get(f"{origin}/_sandbox/requests")).json()
    host = origin.removeprefix("http://")
    return [(r["method"], r["path"], r["status"]) for r in records if r["headers"].get("host") == host]


async def test_speech_and_analysis_go_each_to_their_own_server(tmp_path: Path) -> None:
    shared = SandboxState()  # Twilio's recordings register their transcripts with the speech stand-in
    llm_state = SandboxState()
    async with (
        run_sandboxes(state=shared) as urls,
        serve_app(create_openai_app(shared), "127.0.0.2") as stt,
        serve_app(create_openai_app(llm_state), "127.0.0.3") as llm,
        httpx.AsyncClient(timeout=15) as http,
    ):
        await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
        (await http.post(f"{stt}/_sandbox/api-keys", json={"api_key": STT_KEY})).raise_for_status()
        (await http.post(f"{llm}/_sandbox/api-keys", json={"api_key": LLM_KEY})).raise_for_status()
        config = seed(urls.twilio, urls.openai, urls.jira)
        tenant = config["tenants"][0]
        del tenant["openai_base_url"], tenant["openai_api_key"]  # nothing goes to OpenAI itself
        tenant |= {
            "speech_to_text_base_url": f"{stt}/v1",
            "speech_to_text_api_key": STT_KEY,
            "llm_base_url": f"{llm}/v1",
            "llm_api_key": LLM_KEY,
        }
        (tmp_path / "seed.json").write_text(json.dumps(config))
        # 127.0.0.1 (Twilio, Jira, config-api) by entry; the two servers only as the tenant's hosts,
        # their loopback addresses allowed by the CIDR entry
        options = EmbeddedOptions.against_sandboxes(
            tmp_path,
            urls.twilio,
            tmp_path / "seed.json",
            egress_allowed_hosts=["http://127.0.0.1:*", "127.0.0.0/8"],
        )
        sample = sample_calls()["vpn-outage"]
        async with EmbeddedRuntime(options) as runtime:
            caller = CallerSimulator(runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, urls.twilio)
            call = await caller.play_call(sample.caller, SUPPORT_LINE, sample.audio, sample.transcript,
                                          sample.duration_seconds)  # fmt: skip
            assert call.recording_status == 204

            async def ticket() -> list[dict[str, object]]:
                issues = (await http.get(f"{urls.jira}/_sandbox/issues")).json()
                return [
                    i
                    for i in issues
                    if i["properties"].get("voiceticket.call", {}).get("callSid") == call.call_sid
                ]

            # the request, then its transcript comment (added right after the create)
            await eventually(lambda: commented(ticket), 40.0)
            await asyncio.sleep(0.3)  # a duplicate would show up now
            [issue] = await ticket()
        speech = await requests_at(http, stt)
        analysis = await requests_at(http, llm)
        unused = await requests_at(http, urls.openai)

    assert wiki_text(sample.transcript) in issue["comments"][0]["body"]  # type: ignore[index]
    assert issue["requestTypeId"] == "41"  # the LLM stand-in's triage of the outage
    # each server saw only its own kind of request, and accepted the key it got: its own
    assert speech and {(m, p) for m, p, _ in speech} == {("POST", "/v1/audio/transcriptions")}
    assert analysis and {(m, p) for m, p, _ in analysis} == {("POST", "/v1/chat/completions")}
    assert all(status == 200 for _, _, status in speech + analysis), speech + analysis
    assert unused == []
