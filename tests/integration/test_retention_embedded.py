"""Retention on the embedded runtime: the scheduled purge runs (short interval, a clock the test
moves) and empties every store of an old call; a tenant with ``delete_after_ticket`` has its
recording deleted at the Twilio stand-in once the request and its attachment are written."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
from voiceticket.samples import SampleCall, sample_calls
from voiceticket_sandbox import run_sandboxes
from voiceticket_sandbox.caller import CallerSimulator, PlayedCall
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE, configure_sandboxes, seed
from voiceticket_sandbox.testing import invalid_provider_requests


async def play_vpn_outage(runtime: EmbeddedRuntime, twilio_url: str) -> tuple[SampleCall, PlayedCall]:
    """The vpn-outage sample, called in to the support line of ``runtime``."""
    sample = sample_calls()["vpn-outage"]
    simulator = CallerSimulator(runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, twilio_url)
    call = await simulator.play_call(
        sample.caller, SUPPORT_LINE, sample.audio, sample.transcript, sample.duration_seconds
    )
    return sample, call


class Clock:
    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_the_scheduled_purge_empties_every_store_of_an_old_call(tmp_path: Path) -> None:
    clock = Clock()
    async with run_sandboxes() as urls, httpx.AsyncClient() as client:
        await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
        (tmp_path / "seed.json").write_text(json.dumps(seed(urls.twilio, urls.openai, urls.jira)))
        options = EmbeddedOptions.against_sandboxes(
            tmp_path, urls.twilio, tmp_path / "seed.json",
            purge_interval_seconds=0.1, purge_first_delay_seconds=0.0, clock=clock,
        )  # fmt: skip
        async with EmbeddedRuntime(options) as runtime:
            sample, call = await play_vpn_outage(runtime, urls.twilio)

            async def sms_sent() -> bool:
                return bool((await client.get(f"{urls.twilio}/_sandbox/messages")).json())

            await until(sms_sent)
            await until(lambda: _true_after(0.3))  # the notification event is stored too
            assert await runtime.bus.history(call.call_sid), "fresh records stay"
            first = len(runtime.purges)
            assert first >= 1, "the purge runs shortly after start"
            assert all(sum(r.values()) == 0 for r in runtime.purges[-1]["removed"].values())

            clock.offset = timedelta(days=60)

            async def purged() -> bool:
                return any(p["removed"]["bus"]["events"] for p in runtime.purges[first:])

            await until(purged, 10)
            removed: dict[str, dict[str, int]] = {}
            for report in runtime.purges[first:]:
                for store, counts in report["removed"].items():
                    for name, count in counts.items():
                        removed.setdefault(store, {}).setdefault(name, 0)
                        removed[store][name] += count
            assert await runtime.bus.history(call.call_sid) == []
    assert removed["bus"]["events"] >= 5
    assert removed["jira-writer"]["requests"] == 1
    assert removed["notifier"]["messages"] == 1
    assert removed["transcriber"]["outcomes"] == 1 and removed["analyzer"]["outcomes"] == 1
    report_text = json.dumps(runtime.purges)
    assert sample.caller not in report_text and call.call_sid not in report_text


async def _true_after(seconds: float) -> bool:
    await asyncio.sleep(seconds)
    return True


async def test_delete_after_ticket_deletes_the_recording_at_twilio(tmp_path: Path) -> None:
    async with run_sandboxes() as urls, httpx.AsyncClient() as client:
        await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
        config = seed(urls.twilio, urls.openai, urls.jira)
        config["tenants"][0]["recording_retention"] = "delete_after_ticket"
        config["lines"][0]["attach_recording"] = True
        (tmp_path / "seed.json").write_text(json.dumps(config))
        options = EmbeddedOptions.against_sandboxes(tmp_path, urls.twilio, tmp_path / "seed.json")
        async with EmbeddedRuntime(options) as runtime:
            _, call = await play_vpn_outage(runtime, urls.twilio)

            async def deleted() -> bool:
                records = (await client.get(f"{urls.twilio}/_sandbox/requests")).json()
                return any(r["method"] == "DELETE" for r in records)

            await until(deleted)
            records = (await client.get(f"{urls.twilio}/_sandbox/requests")).json()
            issues = (await client.get(f"{urls.jira}/_sandbox/issues")).json()
            invalid = await invalid_provider_requests(client, urls.twilio, urls.openai, urls.jira)
            recording_sid = call.recording_sid
            gone = await client.get(
                f"{urls.twilio}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}.json",
                auth=(ACCOUNT_SID, AUTH_TOKEN),
            )

    deletes = [r for r in records if r["method"] == "DELETE"]
    assert [(r["path"], r["status"]) for r in deletes] == [
        (f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}.json", 204)
    ]
    fetches = [i for i, r in enumerate(records) if r["method"] == "GET" and recording_sid in r["path"]]
    assert fetches and max(fetches) < records.index(deletes[0]), "downloaded (transcript, attachment) first"
    (issue,) = issues
    assert issue["attachments"], "attached before it was deleted"
    assert gone.status_code == 404
    assert invalid == []
