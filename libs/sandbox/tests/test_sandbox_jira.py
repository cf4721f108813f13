"""The Jira/JSM stand-in over real HTTP: requests, properties, comments, JQL, attachments."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from voiceticket_sandbox.testing import PRIORITY_OPTIONS, jsm_desk, jsm_field, jsm_options, jsm_request_type

if TYPE_CHECKING:
    from conftest import Sandbox

INCIDENT_FIELDS = [
    jsm_field("summary", "Summary", required=True),
    jsm_field("description", "Description", required=False),
    jsm_field("customfield_10050", "Caller phone", required=False),
]
DESK = jsm_desk(
    "4", "help", jsm_request_type("41", "Incident", *INCIDENT_FIELDS), jsm_request_type("45", "Other")
)
CREATE = {
    "serviceDeskId": "4",
    "requestTypeId": "41",
    "requestFieldValues": {
        "summary": "Printer on fire",
        "description": "It smokes.",
        "customfield_10050": "+4930",
    },
}
CALL_PROPERTY = {"callSid": "CA" + "1" * 32, "tenant": "acme"}


@pytest.fixture
async def jira(sandbox: Sandbox, http: httpx.AsyncClient) -> Sandbox:
    (await http.post(f"{sandbox.urls.jira}/_sandbox/servicedesks", json=DESK)).raise_for_status()
    return sandbox


async def create(sb: Sandbox, http: httpx.AsyncClient, body: dict[str, Any] = CREATE) -> httpx.Response:
    return await http.post(f"{sb.urls.jira}/rest/servicedeskapi/request", json=body, auth=sb.jira_auth)


async def test_request_property_comment_and_search_round_trip(jira: Sandbox, http: httpx.AsyncClient) -> None:
    base, auth = jira.urls.jira, jira.jira_auth

    created = await create(jira, http)
    key = created.json()["issueKey"]
    put_new = await http.put(
        f"{base}/rest/api/3/issue/{key}/properties/voiceticket.call", json=CALL_PROPERTY, auth=auth
    )
    put_again = await http.put(
        f"{base}/rest/api/3/issue/{key}/properties/voiceticket.call", json=CALL_PROPERTY, auth=auth
    )
    prop = await http.get(f"{base}/rest/api/3/issue/{key}/properties/voiceticket.call", auth=auth)
    comment = await http.post(
        f"{base}/rest/servicedeskapi/request/{key}/comment",
        json={"body": "Transcript: ...", "public": False},
        auth=auth,
    )
    jql = f'issue.property[voiceticket.call].callSid = "{CALL_PROPERTY["callSid"]}"'
    found = await http.post(
        f"{base}/rest/api/3/search/jql", json={"jql": jql, "fields": ["summary", "status"]}, auth=auth
    )
    missing = await http.post(
        f"{base}/rest/api/3/search/jql",
        json={"jql": 'issue.property[voiceticket.call].callSid = "CAnope"', "fields": ["summary"]},
        auth=auth,
    )
    fetched = await http.get(f"{base}/rest/servicedeskapi/request/{key}", auth=auth)

    assert created.status_code == 201
    assert key == "HELP-1" and created.json()["serviceDeskId"] == "4"
    assert (put_new.status_code, put_again.status_code) == (201, 200)
    assert prop.json() == {"key": "voiceticket.call", "value": CALL_PROPERTY}
    assert comment.status_code == 201 and comment.json()["public"] is False
    assert found.json()["isLast"] is True
    [issue] = found.json()["issues"]
    assert (issue["key"], issue["fields"]["summary"]) == (key, "Printer on fire")
    assert missing.json()["issues"] == []
    assert fetched.json()["issueKey"] == key
    [shown] = (await http.get(f"{base}/_sandbox/issues")).json()
    assert shown["key"] == key and shown["requestTypeId"] == "41"
    assert shown["properties"] == {"voiceticket.call": CALL_PROPERTY}
    assert shown["comments"] == [{"body": "Transcript: ...", "public": False}]
    assert all(r["valid"] for r in jira.state.records_of("jira"))


async def test_issue_keys_count_up_per_project(jira: Sandbox, http: httpx.AsyncClient) -> None:
    first, second = await create(jira, http), await create(jira, http)

    assert [first.json()["issueKey"], second.json()["issueKey"]] == ["HELP-1", "HELP-2"]
    assert int(second.json()["issueId"]) == int(first.json()["issueId"]) + 1


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"serviceDeskId": "99"}, 404, "service desk 99"),
        ({"requestTypeId": "99"}, 400, "request type 99"),
        ({"requestFieldValues": {"description": "no summary"}}, 400, "summary"),
        ({"requestFieldValues": {"summary": "s", "customfield_1": "x"}}, 400, "customfield_1"),
    ],
)
async def test_create_request_errors_are_jsm_shaped(
    jira: Sandbox, http: httpx.AsyncClient, change: dict[str, Any], status: int, message: str
) -> None:
    response = await create(jira, http, {**CREATE, **change})

    assert response.status_code == status
    assert message in response.json()["errorMessage"]
    assert "i18nErrorMessage" in response.json()


async def test_spec_invalid_create_is_rejected_before_handling(
    jira: Sandbox, http: httpx.AsyncClient
) -> None:
    response = await create(jira, http, {**CREATE, "summary": "misplaced"})

    assert response.status_code == 400
    assert "'summary' was unexpected" in response.json()["errorMessage"]
    assert jira.state.jira.issues == {}


async def test_property_limits_and_unknown_issue(jira: Sandbox, http: httpx.AsyncClient) -> None:
    key = (await create(jira, http)).json()["issueKey"]
    url = f"{jira.urls.jira}/rest/api/3/issue/{key}/properties/big"

    too_big = await http.put(url, content=json.dumps("x" * 32767), auth=jira.jira_auth,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    just_fits = await http.put(url, content=json.dumps("x" * 32766), auth=jira.jira_auth,
                               headers={"Content-Type": "application/json"})  # fmt: skip
    unknown = await http.put(url.replace(key, "HELP-999"), json={"a": 1}, auth=jira.jira_auth)

    assert too_big.status_code == 400 and "32768" in too_big.json()["errorMessages"][0]
    assert just_fits.status_code == 201
    assert unknown.status_code == 404


async def test_temporary_file_then_attachment_with_comment(jira: Sandbox, http: httpx.AsyncClient) -> None:
    key = (await create(jira, http)).json()["issueKey"]
    upload_url = f"{jira.urls.jira}/rest/servicedeskapi/servicedesk/4/attachTemporaryFile"
    files = {"file": ("call.wav", b"RIFF-audio", "audio/wav")}

    refused = await http.post(upload_url, files=files, auth=jira.jira_auth)
    uploaded = await http.post(
        upload_url, files=files, auth=jira.jira_auth, headers={"X-Atlassian-Token": "no-check"}
    )
    temporary_id = uploaded.json()["temporaryAttachments"][0]["temporaryAttachmentId"]
    attached = await http.post(
        f"{jira.urls.jira}/rest/servicedeskapi/request/{key}/attachment",
        json={
            "temporaryAttachmentIds": [temporary_id],
            "public": False,
            "additionalComment": {"body": "Recording"},
        },
        auth=jira.jira_auth,
    )

    assert refused.status_code == 403
    assert uploaded.status_code == 201
    assert attached.status_code == 201
    assert attached.json()["attachments"]["values"][0]["filename"] == "call.wav"
    [issue] = (await http.get(f"{jira.urls.jira}/_sandbox/issues")).json()
    assert issue["attachments"] == [{"filename": "call.wav", "size": 10, "public": False}]
    assert issue["comments"] == [{"body": "Recording", "public": False}]


async def test_request_type_fields_and_default_fields(jira: Sandbox, http: httpx.AsyncClient) -> None:
    base = f"{jira.urls.jira}/rest/servicedeskapi/servicedesk/4/requesttype"

    incident = await http.get(f"{base}/41/field", auth=jira.jira_auth)
    other = await http.get(f"{base}/45/field", auth=jira.jira_auth)
    types = await http.get(base, auth=jira.jira_auth)

    assert [f["fieldId"] for f in incident.json()["requestTypeFields"]] == [
        "summary", "description", "customfield_10050",
    ]  # fmt: skip
    assert [(f["fieldId"], f["required"]) for f in other.json()["requestTypeFields"]] == [
        ("summary", True), ("description", False),
    ]  # fmt: skip
    assert [t["name"] for t in types.json()["values"]] == ["Incident", "Other"]


async def test_auth_basic_and_oauth_bearer_at_the_gateway(jira: Sandbox, http: httpx.AsyncClient) -> None:
    cloud, token = "3f06e1c2-aa54-4c1d-9e27-35273b54dd28", "oauth-access-token-0123"
    await http.post(f"{jira.urls.jira}/_sandbox/oauth", json={"cloud_id": cloud, "access_token": token})
    site_url = f"{jira.urls.jira}/rest/servicedeskapi/request"
    gateway_url = f"{jira.urls.jira}/ex/jira/{cloud}/rest/servicedeskapi/request"
    bearer = {"Authorization": f"Bearer {token}"}

    wrong = await http.post(site_url, json=CREATE, auth=(jira.jira_email, "nope"))
    none = await http.post(site_url, json=CREATE)
    api_token_as_bearer = await http.post(
        gateway_url, json=CREATE, headers={"Authorization": f"Bearer {jira.jira_token}"}
    )
    oauth_at_site_url = await http.post(site_url, json=CREATE, headers=bearer)
    other_cloud = await http.post(gateway_url.replace(cloud, "0" * 8), json=CREATE, headers=bearer)
    oauth = await http.post(gateway_url, json=CREATE, headers=bearer)
    basic = await http.post(site_url, json=CREATE, auth=jira.jira_auth)

    assert (wrong.status_code, none.status_code, api_token_as_bearer.status_code) == (401, 401, 401)
    assert (oauth_at_site_url.status_code, other_cloud.status_code) == (401, 404)
    assert (oauth.status_code, basic.status_code) == (201, 201)
    recorded = [r for r in jira.state.records_of("jira") if r["status"] == 201]
    assert [r["path"] for r in recorded] == ["/rest/servicedeskapi/request"] * 2
    assert all(r["valid"] for r in recorded), "the gateway prefix is stripped before the spec check"


async def test_unsupported_jql_is_400(jira: Sandbox, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{jira.urls.jira}/rest/api/3/search/jql", json={"jql": "summary ~ printer"}, auth=jira.jira_auth
    )

    assert response.status_code == 400
    assert "does not support" in response.json()["errorMessages"][0]


async def test_server_error_fault_uses_platform_error_shape(jira: Sandbox, http: httpx.AsyncClient) -> None:
    fault = {"method": "PUT", "path_regex": "/properties/", "status": 503, "retry_after": 1, "times": 2}
    await http.post(f"{jira.urls.jira}/_sandbox/faults", json=fault)
    key = (await create(jira, http)).json()["issueKey"]
    url = f"{jira.urls.jira}/rest/api/3/issue/{key}/properties/p"

    statuses = [(await http.put(url, json=1, auth=jira.jira_auth)).status_code for _ in range(3)]

    assert statuses == [503, 503, 201]
    await http.delete(f"{jira.urls.jira}/_sandbox/faults")
    assert (await http.get(f"{jira.urls.jira}/_sandbox/faults")).json() == []


PRIORITIES = jsm_options(*PRIORITY_OPTIONS, children=[])
SELECT = "com.atlassian.jira.plugin.system.customfieldtypes:select"
OSLO = ("10101", "Oslo")
FAULT_FIELDS = [
    jsm_field("summary", "Summary", required=True),
    jsm_field("priority", "Priority", validValues=PRIORITIES),
    jsm_field(
        "customfield_10070",
        "Site",
        required=True,
        validValues=jsm_options(("10100", "Berlin"), OSLO),
        defaultValues=jsm_options(OSLO),
        jiraSchema={"type": "option", "custom": SELECT},
    ),
    jsm_field("customfield_10080", "Hidden", required=True, visible=False, presetValues=["x"]),
]
CUSTOMERS = [
    {"accountId": "qm:anna", "emailAddress": "anna.berg@example.com", "displayName": "Anna Berg"},
    {"accountId": "qm:ben", "emailAddress": "ben@example.com", "displayName": "Ben Annaberg"},
]
RICH_DESK = jsm_desk(
    "7",
    "ops",
    jsm_request_type("71", "Fault", *FAULT_FIELDS),
    jsm_request_type("72", "Question", can_raise_on_behalf_of=False),
    customers=CUSTOMERS,
)


@pytest.fixture
async def rich(sandbox: Sandbox, http: httpx.AsyncClient) -> Sandbox:
    (await http.post(f"{sandbox.urls.jira}/_sandbox/servicedesks", json=RICH_DESK)).raise_for_status()
    return sandbox


async def test_request_type_fields_report_valid_default_and_preset_values(
    rich: Sandbox, http: httpx.AsyncClient
) -> None:
    base = f"{rich.urls.jira}/rest/servicedeskapi/servicedesk/7/requesttype"

    fault = (await http.get(f"{base}/71/field", auth=rich.jira_auth)).json()
    question = (await http.get(f"{base}/72/field", auth=rich.jira_auth)).json()

    fields = {f["fieldId"]: f for f in fault["requestTypeFields"]}
    assert fault["canRaiseOnBehalfOf"] is True and question["canRaiseOnBehalfOf"] is False
    assert [v["label"] for v in fields["priority"]["validValues"]][:2] == ["Highest", "High"]
    assert fields["priority"]["jiraSchema"]["type"] == "priority"
    assert fields["customfield_10070"]["defaultValues"] == [
        {"value": "10101", "label": "Oslo", "children": []}
    ]
    assert fields["customfield_10070"]["jiraSchema"]["type"] == "option"
    assert (fields["customfield_10080"]["visible"], fields["customfield_10080"]["presetValues"]) == (
        False,
        ["x"],
    )


@pytest.mark.parametrize(
    ("values", "status", "message"),
    [
        ({"summary": "s", "customfield_10070": {"id": "10101"}, "priority": {"id": "2"}}, 201, None),
        ({"summary": "s", "customfield_10070": {"value": "Berlin"}, "priority": {"name": "Low"}}, 201, None),
        ({"summary": "s", "customfield_10070": {"id": "10101"}, "priority": {"id": "9"}}, 400, "Priority"),
        ({"summary": "s", "customfield_10070": "Oslo"}, 400, "Site"),
        ({"summary": "s"}, 400, "customfield_10070"),
    ],
    ids=["by-id", "by-name", "unknown-priority", "not-an-option", "required-missing"],
)
async def test_create_checks_valid_values_and_required_fields(
    rich: Sandbox, http: httpx.AsyncClient, values: dict[str, Any], status: int, message: str | None
) -> None:
    body = {"serviceDeskId": "7", "requestTypeId": "71", "requestFieldValues": values}

    response = await create(rich, http, body)

    assert response.status_code == status
    if message:
        assert message in response.json()["errorMessage"]


async def test_customers_are_found_by_query_and_raise_on_behalf_is_checked(
    rich: Sandbox, http: httpx.AsyncClient
) -> None:
    url = f"{rich.urls.jira}/rest/servicedeskapi/servicedesk/7/customer"
    values = {"summary": "s", "customfield_10070": {"id": "10100"}}

    by_email = await http.get(url, params={"query": "anna.berg@example.com"}, auth=rich.jira_auth)
    by_name = await http.get(url, params={"query": "anna"}, auth=rich.jira_auth)
    on_behalf = await create(rich, http, {"serviceDeskId": "7", "requestTypeId": "71",
                                          "requestFieldValues": values, "raiseOnBehalfOf": "qm:anna"})  # fmt: skip
    stranger = await create(rich, http, {"serviceDeskId": "7", "requestTypeId": "71",
                                         "requestFieldValues": values, "raiseOnBehalfOf": "qm:nobody"})  # fmt: skip
    not_allowed = await create(rich, http, {"serviceDeskId": "7", "requestTypeId": "72",
                                            "requestFieldValues": {"summary": "s"}, "raiseOnBehalfOf": "qm:anna"})  # fmt: skip

    assert [c["accountId"] for c in by_email.json()["values"]] == ["qm:anna"]
    assert by_email.json()["values"][0]["emailAddress"] == "anna.berg@example.com"
    assert [c["accountId"] for c in by_name.json()["values"]] == ["qm:anna", "qm:ben"]
    assert on_behalf.status_code == 201
    assert (stranger.status_code, not_allowed.status_code) == (400, 400)
    assert "not a customer" in stranger.json()["errorMessage"]
    assert "on behalf" in not_allowed.json()["errorMessage"]
    [issue] = (await http.get(f"{rich.urls.jira}/_sandbox/issues")).json()
    assert issue["raiseOnBehalfOf"] == "qm:anna"
    assert all(r["valid"] for r in rich.state.records_of("jira"))


async def test_attachments_are_listed_and_the_size_limit_is_enforced(
    jira: Sandbox, http: httpx.AsyncClient
) -> None:
    key = (await create(jira, http)).json()["issueKey"]
    upload_url = f"{jira.urls.jira}/rest/servicedeskapi/servicedesk/4/attachTemporaryFile"
    headers = {"X-Atlassian-Token": "no-check", "X-ExperimentalApi": "opt-in"}
    await http.post(f"{jira.urls.jira}/_sandbox/attachment-settings", json={"max_bytes": 8})

    too_big = await http.post(upload_url, files={"file": ("big.wav", b"123456789", "audio/wav")},
                              auth=jira.jira_auth, headers=headers)  # fmt: skip
    small = await http.post(upload_url, files={"file": ("call.wav", b"RIFF", "audio/wav")},
                            auth=jira.jira_auth, headers=headers)  # fmt: skip
    temporary_id = small.json()["temporaryAttachments"][0]["temporaryAttachmentId"]
    before = await http.get(f"{jira.urls.jira}/rest/servicedeskapi/request/{key}/attachment",
                            params={"start": 0, "limit": 50}, auth=jira.jira_auth)  # fmt: skip
    await http.post(f"{jira.urls.jira}/rest/servicedeskapi/request/{key}/attachment",
                    json={"temporaryAttachmentIds": [temporary_id], "public": False}, auth=jira.jira_auth)  # fmt: skip
    after = await http.get(f"{jira.urls.jira}/rest/servicedeskapi/request/{key}/attachment",
                           params={"start": 0, "limit": 50}, auth=jira.jira_auth)  # fmt: skip

    assert (
        too_big.status_code == 400 and "maximum configured attachment size" in too_big.json()["errorMessage"]
    )
    assert before.json()["values"] == []
    assert [(a["filename"], a["size"]) for a in after.json()["values"]] == [("call.wav", 4)]
    assert all(r["valid"] for r in jira.state.records_of("jira"))
