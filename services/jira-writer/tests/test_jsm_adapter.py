"""The real JSM adapter against the Jira stand-in, which validates every request against the spec."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import EgressDenied
from voiceticket_jira_writer.adapters import JsmServiceDesk
from voiceticket_jira_writer.ports import JiraSite, RequestDraft

CALL_SID = "CA" + "4" * 32
DESK = {"id": "4", "project_key": "HELP", "request_types": [{"id": "41", "name": "Incident", "fields": [
    {"fieldId": "summary", "name": "Summary", "required": True},
    {"fieldId": "description", "name": "Description", "required": False}]}]}  # fmt: skip


@pytest.fixture
async def desk(sandbox):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.jira}/_sandbox/servicedesks", json=DESK)).raise_for_status()
    adapter = JsmServiceDesk(["127.0.0.1"])
    yield adapter
    await adapter.aclose()


def site(sandbox, token: str | None = None) -> JiraSite:  # type: ignore[no-untyped-def]
    return JiraSite(sandbox.urls.jira, sandbox.jira_email, SecretStr(token or sandbox.jira_token))


def draft() -> RequestDraft:
    return RequestDraft(
        "4", "41", {"summary": "VPN down", "description": f"VPN down.\n\nfrom call {CALL_SID}."}
    )


async def test_request_property_comment_and_recovery_search(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    created = await desk.create_request(site(sandbox), draft())
    assert created.issue_key == "HELP-1"
    await desk.set_issue_property(site(sandbox), created.issue_key, "voiceticket.call", {"callSid": CALL_SID})
    await desk.add_internal_comment(site(sandbox), created.issue_key, "Call transcript:\n\n{quote}hi{quote}")
    assert await desk.find_request_for_call(site(sandbox), CALL_SID) == created
    assert await desk.find_request_for_call(site(sandbox), "CA" + "5" * 32) is None

    async with httpx.AsyncClient() as client:
        [issue] = (await client.get(f"{sandbox.urls.jira}/_sandbox/issues")).json()
        recorded = (await client.get(f"{sandbox.urls.jira}/_sandbox/requests")).json()
    assert issue["properties"]["voiceticket.call"] == {"callSid": CALL_SID}
    assert issue["comments"][0]["public"] is False
    assert recorded and all(r["valid"] for r in recorded), "every request satisfies the official spec"


async def test_bad_credentials_are_permanent(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermanentError, match="HTTP 401"):
        await desk.create_request(site(sandbox, token="wrong"), draft())


async def test_rate_limit_is_transient_and_carries_retry_after(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        await client.post(f"{sandbox.urls.jira}/_sandbox/faults",
                          json={"method": "POST", "path_regex": "/request$", "status": 429, "retry_after": 7, "times": 1})  # fmt: skip
    with pytest.raises(TransientError) as info:
        await desk.create_request(site(sandbox), draft())
    assert info.value.retry_after == 7.0


async def test_validation_errors_are_permanent_and_carry_jiras_message(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    bad = RequestDraft("4", "41", {"description": "no summary"})
    with pytest.raises(PermanentError, match="HTTP 400"):
        await desk.create_request(site(sandbox), bad)


async def test_hosts_outside_the_allow_list_are_refused(sandbox) -> None:  # type: ignore[no-untyped-def]
    adapter = JsmServiceDesk(["*.atlassian.net"])
    try:
        with pytest.raises(EgressDenied):
            await adapter.create_request(site(sandbox), draft())
    finally:
        await adapter.aclose()
