"""Jira's error shapes are all read; what is transient and what is permanent."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.runtime_views import JiraWriterView
from voiceticket_jira_writer.jira_errors import jira_error_text, raise_for_jira_status
from voiceticket_jira_writer.site import jira_site


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"errorMessage": "Summary: You must specify a summary.", "i18nErrorMessage": {"i18nKey": "k"}},
         "Summary: You must specify a summary."),
        ({"errorMessages": ["Issue does not exist"], "errors": {}}, "Issue does not exist"),
        ({"errorMessages": [], "errors": {"customfield_10060": "Contract number is invalid"}},
         "customfield_10060: Contract number is invalid"),
        ({"errorMessages": ["Bad request"], "errors": {"priority": "not valid"}}, "Bad request; priority: not valid"),
        ({"code": 401, "message": "Unauthorized; scope does not match"}, "Unauthorized; scope does not match"),
        ([1, 2], ""),
    ],
    ids=["jsm", "platform-messages", "platform-field-errors", "platform-both", "gateway", "not-an-object"],
)  # fmt: skip
def test_every_error_shape_is_read(body, expected) -> None:
    assert jira_error_text(body) == expected


def response(status: int, body: object = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body or {}, headers=headers or {})


@pytest.mark.parametrize(("status", "retry_after"), [(429, "7"), (503, "2"), (500, None)])
def test_rate_limits_and_outages_are_transient_with_retry_after(status, retry_after) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    with pytest.raises(TransientError) as info:
        raise_for_jira_status(response(status, headers=headers), "create request")
    assert info.value.retry_after == (float(retry_after) if retry_after else None)


def test_validation_errors_are_permanent_and_carry_jiras_message() -> None:
    body = {"errorMessages": [], "errors": {"summary": "You must specify a summary of the issue."}}
    with pytest.raises(PermanentError, match="HTTP 400: summary: You must specify a summary"):
        raise_for_jira_status(response(400, body), "create request")


def test_401_is_permanent_with_an_api_token_and_transient_with_oauth() -> None:
    with pytest.raises(PermanentError):
        raise_for_jira_status(response(401), "create request")
    with pytest.raises(TransientError, match="OAuth access token"):
        raise_for_jira_status(response(401), "create request", oauth=True)


def config(**tenant: object) -> JiraWriterView:
    line = {"number": "+15005550006", "service_desk_id": "4", "request_type_id": "40"}
    return JiraWriterView.model_validate({"tenant_id": "acme", "line": line, "tenant": tenant})


def test_site_from_basic_and_oauth_tenants() -> None:
    basic = jira_site(
        config(jira_base_url="https://acme.atlassian.net", jira_email="b@x.io", jira_api_token="t")
    )
    cloud = "https://api.atlassian.com/ex/jira/35273b54"
    oauth = jira_site(
        config(jira_base_url=cloud, jira_auth="oauth2", jira_oauth_token="o", jira_api_token="t")
    )
    assert (basic.auth, basic.email, basic.token) == ("basic", "b@x.io", SecretStr("t"))
    assert (oauth.auth, oauth.base_url, oauth.token.get_secret_value()) == ("oauth2", cloud, "o")
    with pytest.raises(PermanentError, match="jira_oauth_token"):
        jira_site(config(jira_base_url=cloud, jira_auth="oauth2"))
    with pytest.raises(PermanentError, match="jira_auth"):
        jira_site(config(jira_base_url=cloud, jira_auth="jwt"))


def test_twilio_account_only_when_both_fields_are_there() -> None:
    assert config(twilio_account_sid="AC1").recording_account() is None
    account = config(twilio_account_sid="AC1", twilio_auth_token="tok").recording_account()
    assert account is not None and account.auth_token.get_secret_value() == "tok"


def test_values_jira_echoes_are_redacted() -> None:
    body = {"errors": {"customfield_10050": "'+1 415 555 0100' is not valid for anna.berg@example.com"}}
    text = jira_error_text(body)
    assert "555" not in text and "anna.berg" not in text
    assert text.startswith("customfield_10050: '[redacted-number]' is not valid for [redacted-email]")
