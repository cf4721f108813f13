"""The real JSM adapter against the Jira stand-in, which validates every request against the spec."""

from __future__ import annotations

import io

import httpx
import pytest
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import EgressDenied
from voiceticket_jira_writer.adapters import JsmServiceDesk
from voiceticket_jira_writer.ports import JiraSite, RequestDraft, Upload

CALL_SID = "CA" + "4" * 32
DESK = {"id": "4", "project_key": "HELP", "request_types": [{"id": "41", "name": "Incident", "fields": [
    {"fieldId": "summary", "name": "Summary", "required": True},
    {"fieldId": "description", "name": "Description", "required": False}]}]}  # fmt: skip


@pytest.fixture
async def desk(sandbox):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.jira}/_sandbox/servicedesks", json=DESK)).raise_for_status()
    adapter = JsmServiceDesk(["http://127.0.0.1:*"])
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
    with pytest.raises(
        PermanentError, match="HTTP 400: Summary: You must specify a value for the field 'summary'"
    ):
        await desk.create_request(site(sandbox), bad)


async def test_hosts_outside_the_allow_list_are_refused(sandbox) -> None:  # type: ignore[no-untyped-def]
    adapter = JsmServiceDesk(["*.atlassian.net"])
    try:
        with pytest.raises(EgressDenied):
            await adapter.create_request(site(sandbox), draft())
    finally:
        await adapter.aclose()


CLOUD_ID = "35273b54-3f06-40d2-880f-dd28cf8daafa"
OAUTH_TOKEN = "oauth-access-token-for-the-adapter-test"
PRIORITIES = [
    {"value": str(i), "label": n} for i, n in enumerate(["Highest", "High", "Medium", "Low", "Lowest"], 1)
]
RICH = {"id": "7", "project_key": "OPS",
        "customers": [{"accountId": "qm:anna", "emailAddress": "anna@example.com", "displayName": "Anna"}],
        "request_types": [{"id": "71", "name": "Fault", "fields": [
            {"fieldId": "summary", "name": "Summary", "required": True},
            {"fieldId": "priority", "name": "Priority", "validValues": PRIORITIES},
            {"fieldId": "customfield_10070", "name": "Site", "required": True,
             "validValues": [{"value": "10101", "label": "Oslo"}], "defaultValues": [{"value": "10101", "label": "Oslo"}],
             "jiraSchema": {"type": "option"}}]}]}  # fmt: skip


async def configure(sandbox, path: str, body: object) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        (await client.post(f"{sandbox.urls.jira}/_sandbox/{path}", json=body)).raise_for_status()


async def test_oauth_bearer_token_through_the_gateway(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    await configure(sandbox, "oauth", {"cloud_id": CLOUD_ID, "access_token": OAUTH_TOKEN})
    gateway = f"{sandbox.urls.jira}/ex/jira/{CLOUD_ID}"
    oauth = JiraSite(gateway, "", SecretStr(OAUTH_TOKEN), "oauth2")

    created = await desk.create_request(oauth, draft())
    await desk.set_issue_property(oauth, created.issue_key, "voiceticket.call", {"callSid": CALL_SID})
    found = await desk.find_request_for_call(oauth, CALL_SID)
    with pytest.raises(TransientError, match="OAuth access token"):
        await desk.create_request(JiraSite(gateway, "", SecretStr("expired"), "oauth2"), draft())
    with pytest.raises(TransientError, match="HTTP 401"):  # an OAuth token is no good at the site URL
        await desk.create_request(JiraSite(sandbox.urls.jira, "", SecretStr(OAUTH_TOKEN), "oauth2"), draft())

    assert created.issue_key == "HELP-1" and found == created
    ours = [r for r in sandbox.state.records_of("jira") if r["status"] in (200, 201)]
    assert {r["auth"]["scheme"] for r in ours} == {"bearer"}
    assert all(r["valid"] for r in sandbox.state.records_of("jira"))


async def test_request_type_fields_and_customers_are_read(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    await configure(sandbox, "servicedesks", RICH)

    meta = await desk.request_type_fields(site(sandbox), "7", "71")
    customers = await desk.find_customers(site(sandbox), "7", "anna@example.com")

    assert meta.can_raise_on_behalf_of is True
    priority, required = meta.get("priority"), meta.get("customfield_10070")
    assert priority is not None and [v.label for v in priority.valid_values][:2] == ["Highest", "High"]
    assert priority.schema_type == "priority"
    assert required is not None and required.required and required.default_values[0].value == "10101"
    assert required.schema_type == "option"
    assert [(c.account_id, c.email) for c in customers] == [("qm:anna", "anna@example.com")]
    [lookup] = [r for r in sandbox.state.records_of("jira") if r["path"].endswith("/customer")]
    assert lookup["query"]["query"] == "anna@example.com" and lookup["valid"]


async def test_create_with_priority_default_and_raise_on_behalf(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    await configure(sandbox, "servicedesks", RICH)
    values = {"summary": "s", "priority": {"id": "2"}, "customfield_10070": {"id": "10101"}}

    await desk.create_request(site(sandbox), RequestDraft("7", "71", values, raise_on_behalf_of="qm:anna"))

    [issue] = sandbox.state.jira.issues.values()
    assert issue.raise_on_behalf_of == "qm:anna" and issue.request_field_values["priority"] == {"id": "2"}
    assert all(r["valid"] for r in sandbox.state.records_of("jira"))


async def test_internal_attachment_through_a_temporary_file(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    created = await desk.create_request(site(sandbox), draft())
    upload = Upload("call-x.wav", "audio/x-wav", io.BytesIO(b"RIFF-some-audio"), 15)

    before = await desk.attachment_names(site(sandbox), created.issue_key)
    await desk.attach_internal(site(sandbox), "4", created.issue_key, upload)
    after = await desk.attachment_names(site(sandbox), created.issue_key)

    assert (before, after) == (set(), {"call-x.wav"})
    [issue] = sandbox.state.jira.issues.values()
    assert [(a["filename"], a["size"], a["public"]) for a in issue.attachments] == [("call-x.wav", 15, False)]
    [temporary] = [r for r in sandbox.state.records_of("jira") if r["path"].endswith("/attachTemporaryFile")]
    assert temporary["headers"]["x-atlassian-token"] == "no-check"
    assert temporary["headers"]["x-experimentalapi"] == "opt-in"
    assert temporary["body"]["files"] == [{"field": "file", "filename": "call-x.wav", "content_type": "audio/x-wav",
                                           "size": 15}]  # fmt: skip
    assert all(r["valid"] for r in sandbox.state.records_of("jira"))


async def test_a_file_over_the_sites_limit_is_a_permanent_error(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    created = await desk.create_request(site(sandbox), draft())
    await configure(sandbox, "attachment-settings", {"max_bytes": 4})
    upload = Upload("call-x.wav", "audio/x-wav", io.BytesIO(b"RIFF-too-big"), 12)
    with pytest.raises(PermanentError, match="maximum configured attachment size"):
        await desk.attach_internal(site(sandbox), "4", created.issue_key, upload)


async def test_platform_error_collections_are_read_too(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    created = await desk.create_request(site(sandbox), draft())
    body = {"errorMessages": ["Property rejected"], "errors": {"voiceticket.call": "too deep"}}
    await configure(
        sandbox, "faults", {"method": "PUT", "path_regex": "/properties/", "status": 400, "body": body}
    )
    with pytest.raises(PermanentError, match=r"HTTP 400: Property rejected; voiceticket.call: too deep"):
        await desk.set_issue_property(site(sandbox), created.issue_key, "voiceticket.call", {"a": 1})


async def test_503_with_retry_after_is_transient(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    await configure(
        sandbox, "faults", {"method": "POST", "path_regex": "/request$", "status": 503, "retry_after": 3}
    )
    with pytest.raises(TransientError) as info:
        await desk.create_request(site(sandbox), draft())
    assert info.value.retry_after == 3.0


async def test_recovery_search_misses_a_request_while_jiras_index_lags(sandbox, desk) -> None:  # type: ignore[no-untyped-def]
    index = f"{sandbox.urls.jira}/_sandbox/search-index"
    async with httpx.AsyncClient() as client:
        (await client.post(index, json={"paused": True})).raise_for_status()
        created = await desk.create_request(site(sandbox), draft())
        assert await desk.find_request_for_call(site(sandbox), CALL_SID) is None, "not indexed yet"
        (await client.post(index, json={"lag_seconds": 3600})).raise_for_status()  # resumes, indexes
        assert await desk.find_request_for_call(site(sandbox), CALL_SID) == created
        other = RequestDraft("4", "41", {"summary": "x", "description": f"from call {'CA' + '6' * 32}."})
        await desk.create_request(site(sandbox), other)
        assert await desk.find_request_for_call(site(sandbox), "CA" + "6" * 32) is None, "an hour's lag"
