"""Status texts (issue #16, part 4) through the whole pipeline, on the embedded runtime and on six
processes over Kafka: the Jira stand-in sends its admin webhook, signed with the tenant's secret
(``X-Hub-Signature``), to ingress when an agent moves a request.

A line that texts on ``resolved``: a move to "In progress" texts nothing; resolving the request
texts the caller exactly once, even when Jira delivers the webhook twice; a webhook signed with
another secret is refused and texts nothing.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sandboxed_runtime import SandboxedRuntime, new_caller, sandboxed_runtime
from stack_probes import Probes, run_on_kafka

from voiceticket.samples import sample_calls
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import SUPPORT_LINE
from voiceticket_sandbox.devstack import Stack
from voiceticket_sandbox.jira_webhooks import signed_headers
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.integration

SECRET = "jira-admin-webhook-secret-for-tests"
LINE_SETTINGS = {"status_texts": ["resolved"]}


def webhook_url(ingress: str) -> str:
    return f"{ingress}/jira/webhooks/acme?line={quote(SUPPORT_LINE)}"


async def check_status_texts(caller: CallerSimulator, probes: Probes) -> None:
    http, jira = probes.http, probes.jira
    registered = await http.post(f"{jira}/_sandbox/webhooks", json={"url": webhook_url(caller.ingress_url),
                                 "secret": SECRET})  # fmt: skip
    assert registered.status_code == 201
    number = new_caller()
    sample = sample_calls()["password-reset"]
    played = await caller.play_call(
        number, SUPPORT_LINE, sample.audio, sample.transcript, sample.duration_seconds
    )
    [issue] = await eventually(lambda: probes.issues_of(played.call_sid), 60.0)
    [ticket_sms] = await eventually(lambda: probes.sms_bodies(number), 60.0)
    assert issue["key"] in ticket_sms

    # a status the line does not list: no text
    await probes.move_issue(issue["key"], "In progress", "INDETERMINATE")
    await asyncio.sleep(3.0)
    assert await probes.sms_bodies(number) == [ticket_sms]

    # resolved: one text, also when Jira delivers the webhook again
    await probes.move_issue(issue["key"], "Resolved", "DONE")

    async def status_text() -> list[str]:
        return [b for b in await probes.sms_bodies(number) if b != ticket_sms]

    [text] = await eventually(status_text, 60.0)
    assert text == f"Your support request {issue['key']} is now: Resolved."
    again = await http.post(f"{jira}/_sandbox/webhooks/redeliver")
    assert again.json()["status"] == 204
    deliveries = (await http.get(f"{jira}/_sandbox/webhooks/deliveries")).json()
    assert [d["status"] for d in deliveries] == [204, 204]  # each transition delivered and accepted

    # a delivery signed with another secret is refused
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": issue["key"]},
                       "changelog": {"id": "999", "items": [{"field": "status", "toString": "Closed"}]}}).encode()  # fmt: skip
    forged = await http.post(
        webhook_url(caller.ingress_url), content=body, headers=signed_headers("guess", body)
    )
    unsigned = await http.post(webhook_url(caller.ingress_url), content=body,
                               headers={"Content-Type": "application/json"})  # fmt: skip
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    await asyncio.sleep(3.0)  # a second text (redelivery, forged webhook) would be out by now
    assert await status_text() == [text]


def status_line(line: dict[str, Any]) -> dict[str, Any]:
    return line | LINE_SETTINGS


async def test_status_texts_on_the_embedded_runtime(tmp_path: Path) -> None:
    def texts_on(config: dict[str, Any]) -> None:
        config["tenants"][0]["jira_webhook_secret"] = SECRET
        config["lines"] = [status_line(config["lines"][0])]

    async with sandboxed_runtime(SandboxedRuntime, tmp_path, texts_on) as stack:
        await check_status_texts(stack.caller(), Probes.embedded(stack))
        assert await stack.runtime.bus.dead_letters("voiceticket-notifier") == []


def test_status_texts_on_kafka(stack: Stack) -> None:
    line = status_line(stack.seed()["lines"][0])

    async def check(probes: Probes, caller: CallerSimulator) -> None:
        put = await probes.admin("PUT", f"/v1/lines/{SUPPORT_LINE}", line)
        assert put.status_code == 200, put.text
        secret = await probes.admin(
            "PUT", "/v1/tenants/acme/credentials/jira_webhook_secret", {"value": SECRET}
        )
        assert secret.status_code == 200, secret.text
        await asyncio.sleep(2.0)  # config.changed drops the cached views
        await check_status_texts(caller, probes)

    run_on_kafka(stack, "status texts", check)
