"""A tenant's block list through the whole pipeline (issue #16.5), on the embedded runtime and on
six processes over Kafka, against the spec-validating stand-ins.

Two lines of the demo tenant, as in test_call_screening.py: the support line screens into the
screened request type (``screened_request``), a second line makes no request (``no_request``). A
caller the admin blocks (config-api keeps only the keyed hash of the number)

- is rejected unanswered on the ``no_request`` line, and the calls page shows the call screened
  out as ``blocked_caller``;
- leaves a message on the ``screened_request`` line that becomes a request in the screened type,
  marked ``blocked_caller`` on its issue property, and gets no SMS;

while another caller of the same tenant gets a request and an SMS as always; and once the entry is
removed (by the number), the caller's next call is a request like any other.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import pytest
from sandboxed_runtime import SandboxedRuntime, new_caller, sandboxed_runtime
from stack_probes import Probes, run_on_kafka

from voiceticket.samples import sample_calls
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import REQUEST_TYPES, SUPPORT_LINE
from voiceticket_sandbox.devstack import Stack
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.integration

NO_REQUEST_LINE = "+15005550007"
SCREENED_TYPE = REQUEST_TYPES["complaint"]
PROPAGATION_SECONDS = 2.0
"""config.changed tells ingress that the tenant's list changed (within ~1 s on Kafka)."""


def block_list_lines(line: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the support line as screened_request, a second line as no_request), from the seed's line."""
    screened_request = line | {
        "screening_action": "screened_request",
        "screened_request_type_id": SCREENED_TYPE,
    }
    return screened_request, line | {"number": NO_REQUEST_LINE, "screening_action": "no_request"}


async def check_block_list(caller: CallerSimulator, probes: Probes) -> str:
    """The checks above; returns the blocked caller's number (for the log checks)."""
    samples = sample_calls()
    blocked_caller, other_caller = new_caller(), new_caller()
    while other_caller == blocked_caller:
        other_caller = new_caller()
    added = await probes.admin(
        "POST", "/v1/tenants/acme/blocked-callers", {"number": blocked_caller, "note": "spam"}
    )
    assert added.status_code == 201, added.text
    assert blocked_caller.removeprefix("+") not in added.text
    await asyncio.sleep(PROPAGATION_SECONDS)

    # 1. no_request line: rejected unanswered, screened out on the calls page with its reason
    rejected_sid = "CA" + secrets.token_hex(16)
    params = caller.call_params(rejected_sid, blocked_caller, NO_REQUEST_LINE)
    answered = await caller.post_signed(f"{caller.ingress_url}/twilio/voice", params)
    assert answered.status_code == 200 and "<Reject" in answered.text and "<Record" not in answered.text

    async def screened_out() -> dict[str, Any] | None:
        call = await probes.call_view(rejected_sid)
        return call if call and call["screened_out"] else None

    call = await eventually(screened_out, 60.0)
    assert call["screened"] == "blocked_caller" and call["request_key"] is None

    # 2. screened_request line: a request in the screened type, marked, and no SMS
    sample = samples["vpn-outage"]
    marked = await caller.play_call(blocked_caller, SUPPORT_LINE, sample.audio, sample.transcript,
                                    sample.duration_seconds)  # fmt: skip
    [issue] = await eventually(lambda: probes.issues_of(marked.call_sid), 60.0)
    assert issue["requestTypeId"] == SCREENED_TYPE
    assert issue["properties"]["voiceticket.call"]["screened"] == "blocked_caller"

    # 3. another caller of the same tenant, same no_request line: a request and an SMS as always
    spoken = samples["password-reset"]
    other = await caller.play_call(other_caller, NO_REQUEST_LINE, spoken.audio, spoken.transcript,
                                   spoken.duration_seconds)  # fmt: skip
    [other_issue] = await eventually(lambda: probes.issues_of(other.call_sid), 60.0)
    assert other_issue["properties"]["voiceticket.call"]["screened"] is None
    assert await eventually(lambda: probes.sms_to(other_caller), 60.0)

    # 4. removed by the number: the caller's next call on the no_request line is a request again
    removed = await probes.admin(
        "POST", "/v1/tenants/acme/blocked-callers/removals", {"number": blocked_caller}
    )
    assert removed.status_code == 200, removed.text
    assert (await probes.admin("GET", "/v1/tenants/acme/blocked-callers")).json() == []
    await asyncio.sleep(PROPAGATION_SECONDS)
    again_sample = samples["billing-account"]
    again = await caller.play_call(blocked_caller, NO_REQUEST_LINE, again_sample.audio, again_sample.transcript,
                                   again_sample.duration_seconds)  # fmt: skip
    [again_issue] = await eventually(lambda: probes.issues_of(again.call_sid), 60.0)
    assert again_issue["properties"]["voiceticket.call"]["screened"] is None
    assert await eventually(lambda: probes.sms_to(blocked_caller), 60.0)

    await asyncio.sleep(1.0)  # a late request or SMS for the screened calls would show up now
    assert await probes.issues_of(rejected_sid) == [] and len(await probes.issues_of(marked.call_sid)) == 1
    assert len(await probes.sms_to(blocked_caller)) == 1, "only the call after the removal texts the caller"
    return blocked_caller


async def test_block_list_on_the_embedded_runtime(tmp_path: Path) -> None:
    def two_lines(config: dict[str, Any]) -> None:
        config["lines"] = list(block_list_lines(config["lines"][0]))

    async with sandboxed_runtime(SandboxedRuntime, tmp_path, two_lines) as stack:
        await check_block_list(stack.caller(), Probes.embedded(stack))
        dead = [
            await stack.runtime.bus.dead_letters(g)
            for g in ("voiceticket-transcriber", "voiceticket-jira-writer")
        ]
        assert dead == [[], []]
        assert "blocked_caller" in (await stack.http.get(f"{stack.runtime.ingress_url}/metrics")).text


def test_block_list_on_kafka(stack: Stack) -> None:
    screened_request, no_request = block_list_lines(stack.seed()["lines"][0])
    numbers: list[str] = []

    async def check(probes: Probes, caller: CallerSimulator) -> None:
        for number, line in ((SUPPORT_LINE, screened_request), (NO_REQUEST_LINE, no_request)):
            put = await probes.admin("PUT", f"/v1/lines/{number}", line)
            assert put.status_code in (200, 201), put.text
        numbers.append(await check_block_list(caller, probes))

    run_on_kafka(stack, "block list", check)
    services = "\n".join(text for name, text in stack.logs().items() if name != "sandbox")
    assert numbers and numbers[0].removeprefix("+") not in services, "no service logs the caller's number"
