"""Embedded mode: all six services in one process over the SQLite bus, the default deployment.

A call becomes one ticket and one SMS; each bundled sample call (English and German) is handled;
and killing the process mid-call (SIGKILL, at the worst moments for Jira) then starting it again
neither loses nor duplicates the request or the SMS.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sandboxed_runtime import seeded_options

from voiceticket.embedded import EmbeddedRuntime
from voiceticket.samples import sample_calls
from voiceticket_jira_writer.jira_text import wiki_text
from voiceticket_sandbox import run_sandboxes
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE, configure_sandboxes, seed
from voiceticket_sandbox.devstack import SandboxUrls, start_sandbox_process
from voiceticket_sandbox.processes import ServiceProcess, free_port
from voiceticket_sandbox.testing import invalid_provider_requests


def for_call(issues: list[dict], call_sid: str) -> list[dict]:
    return [i for i in issues if i["properties"].get("voiceticket.call", {}).get("callSid") == call_sid]


async def test_every_sample_call_becomes_one_request_and_one_sms(tmp_path: Path) -> None:
    async with run_sandboxes() as urls:
        options = await seeded_options(tmp_path, urls, seed(urls.twilio, urls.openai, urls.jira))
        async with EmbeddedRuntime(options) as runtime, httpx.AsyncClient() as client:
            simulator = CallerSimulator(runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, urls.twilio)
            played = {}
            for sample in sample_calls().values():
                call = await simulator.play_call(sample.caller, SUPPORT_LINE, sample.audio, sample.transcript,
                                                 sample.duration_seconds)  # fmt: skip
                assert call.voice_status == 200 and call.recording_status == 204
                played[sample.name] = (sample, call)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                messages = (await client.get(f"{urls.twilio}/_sandbox/messages")).json()
                if len(messages) >= len(played):
                    break
                await asyncio.sleep(0.2)
            issues = (await client.get(f"{urls.jira}/_sandbox/issues")).json()
            invalid = await invalid_provider_requests(client, urls.twilio, urls.openai, urls.jira)

    assert len(issues) == len(played) and len(messages) == len(played)
    for sample, call in played.values():
        [issue] = for_call(issues, call.call_sid)
        assert wiki_text(sample.transcript) in issue["comments"][0]["body"], "the transcript, as plain words"
        assert [m for m in messages if m["to"] == sample.caller and issue["key"] in m["body"]]
    by_name = {name: for_call(issues, call.call_sid)[0] for name, (_, call) in played.items()}
    assert by_name["vpn-outage"]["requestTypeId"] == "41"
    assert "44817723" in by_name["billing-account"]["requestFieldValues"]["description"]
    assert "*Language:* de" in by_name["drucker-de"]["requestFieldValues"]["description"]
    assert invalid == []


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[SandboxUrls]:
    proc, urls = start_sandbox_process(tmp_path, time.monotonic() + 60)
    try:
        asyncio.run(configure_sandboxes(urls.twilio, urls.openai, urls.jira))
        yield urls
    finally:
        proc.stop()


def embedded_process(data_dir: Path, urls: SandboxUrls, port: int) -> ServiceProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    seed_file = data_dir / "seed.json"
    seed_file.write_text(json.dumps(seed(urls.twilio, urls.openai, urls.jira)))
    args = ["run", "--data-dir", str(data_dir), "--port", str(port), "--config-api-port", str(free_port()),
            "--seed", str(seed_file), "--allow-host", "http://127.0.0.1:*", "--twilio-api-base-url", urls.twilio]  # fmt: skip
    # A killed process's ledger leases expire before the restarted one may take its calls over:
    # short ones here, so the restart does not wait out the one-minute default.
    env = {"VOICETICKET_REQUEST_LEASE_SECONDS": "8", "VOICETICKET_JIRA_TIMEOUT_SECONDS": "6"}
    proc = ServiceProcess(
        "embedded", "voiceticket", env, data_dir, f"http://127.0.0.1:{port}/readyz", args=args
    )
    proc.start()
    proc.wait_ready(time.monotonic() + 60)
    return proc


@pytest.mark.parametrize(
    ("method", "path_regex"),
    [("POST", r"/rest/servicedeskapi/request$"), ("PUT", r"/properties/"), ("POST", r"/comment$")],
    ids=["during-create", "after-create", "during-comment"],
)
def test_killing_the_process_mid_call_neither_loses_nor_duplicates(
    tmp_path: Path, sandbox_process: SandboxUrls, method: str, path_regex: str
) -> None:
    urls, data_dir, port = sandbox_process, tmp_path / "data", free_port()
    sample = sample_calls()["vpn-outage"]
    runtime = embedded_process(data_dir, urls, port)
    try:
        # Jira takes its time over one request; the process dies while it waits for the answer.
        httpx.post(f"{urls.jira}/_sandbox/faults", json={
            "method": method, "path_regex": path_regex, "status": None, "delay_seconds": 3, "times": 1,
        }).raise_for_status()  # fmt: skip
        simulator = CallerSimulator(f"http://127.0.0.1:{port}", ACCOUNT_SID, AUTH_TOKEN, urls.twilio)
        played = asyncio.run(
            simulator.play_call(sample.caller, SUPPORT_LINE, sample.audio, sample.transcript, 15)
        )

        def jira_saw_it() -> bool:
            recorded = httpx.get(f"{urls.jira}/_sandbox/requests").json()
            return any(
                r["method"] == method and __import__("re").search(path_regex, r["path"]) for r in recorded
            )

        wait_until(jira_saw_it, 30)
        runtime.kill()
        time.sleep(3.5)  # Jira finishes the request the dead process was waiting for
        runtime = embedded_process(data_dir, urls, port)

        def done() -> bool:
            return any(m["to"] == sample.caller for m in httpx.get(f"{urls.twilio}/_sandbox/messages").json())

        wait_until(done, 45)
        time.sleep(2)  # a duplicate would show up by now
    finally:
        runtime.stop()
    issues = for_call(httpx.get(f"{urls.jira}/_sandbox/issues").json(), played.call_sid)
    assert len(issues) == 1, f"exactly one request, got {[i['key'] for i in issues]}"
    assert len(issues[0]["comments"]) == 1
    assert issues[0]["properties"]["voiceticket.call"]["callSid"] == played.call_sid
    messages = [m for m in httpx.get(f"{urls.twilio}/_sandbox/messages").json() if m["to"] == sample.caller]
    assert len(messages) == 1 and issues[0]["key"] in messages[0]["body"]


def wait_until(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)
