"""POST /twilio/sms (Twilio's incoming message webhook) and POST /jira/webhooks/{tenant} (Jira's
signed issue webhook): verified before anything is published, one event each, no phone number
or message text in the logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from ingress_testkit import ACCOUNT, BASE, CALLER, LINE, LINE_FIELDS, TOKEN, ingress_client, signed

from voiceticket_common.events import RequestStatusChanged, SmsReceived
from voiceticket_common.runtime_views import IngressView
from voiceticket_common.testing import RecordingPublisher, StaticRuntimeConfig
from voiceticket_ingress.jira_webhooks import jira_signature, status_change, verify_jira_signature
from voiceticket_ingress.signature import Forbidden
from voiceticket_ingress.sms_keywords import keyword

MESSAGE_SID = "SM" + "b" * 32
SMS_URL = f"{BASE}/twilio/sms"
SECRET = "jira-webhook-secret-0123456789"
JIRA_URL = f"/jira/webhooks/acme?line=%2B{LINE.lstrip('+')}"


def inbound(body: str = "My VPN still fails", **extra: str) -> dict[str, str]:
    return {
        "MessageSid": MESSAGE_SID, "SmsSid": MESSAGE_SID, "SmsMessageSid": MESSAGE_SID, "AccountSid": ACCOUNT,
        "From": CALLER, "To": LINE, "Body": body, "NumMedia": "0", "NumSegments": "1",
        "SmsStatus": "received", "ApiVersion": "2010-04-01", **extra,
    }  # fmt: skip


def issue_updated(
    changelog_id: str = "10042", to: str = "Resolved", category: str = "done"
) -> dict[str, Any]:
    return {
        "timestamp": 1764763200000, "webhookEvent": "jira:issue_updated", "issue_event_type_name": "issue_generic",
        "user": {"accountId": "557058:agent", "emailAddress": "agent@example.com"},
        "issue": {"id": "10007", "key": "HELP-7", "fields": {"status": {"name": to, "statusCategory": {"key": category}}}},
        "changelog": {"id": changelog_id, "items": [
            {"field": "status", "fieldtype": "jira", "fromString": "Waiting for support", "toString": to}]},
    }  # fmt: skip


def jira_config(secret: str | None = SECRET) -> StaticRuntimeConfig[IngressView]:
    tenant = {"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN}
    if secret is not None:
        tenant["jira_webhook_secret"] = secret
    return StaticRuntimeConfig.of(IngressView, {LINE: ("acme", LINE_FIELDS, tenant)})


@pytest.mark.parametrize(
    ("body", "opt_out_type", "expected"),
    [
        ("STOP", "", "stop"), (" stopall ", "", "stop"), ("Unsubscribe", "", "stop"), ("cancel", "", "stop"),
        ("END", "", "stop"), ("quit.", "", "stop"), ("START", "", "start"), ("yes", "", "start"),
        ("UNSTOP", "", "start"), ("HELP", "", "help"), ("info", "", "help"), ("Stop texting me", "", None),
        ("my vpn fails", "", None), ("ARRET", "STOP", "stop"), ("AIDE", "HELP", "help"),
    ],
)  # fmt: skip
def test_keywords(body: str, opt_out_type: str, expected: str | None) -> None:
    assert keyword(body, opt_out_type) == expected


async def test_an_inbound_sms_is_published_sealed_fields_and_all(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    publisher = RecordingPublisher()
    params = inbound()
    async with ingress_client(publisher) as client:
        response = await client.post("/twilio/sms", data=params, headers=signed(SMS_URL, params))
    assert response.status_code == 200 and "<Response" in response.text and "<Message" not in response.text
    [event] = publisher.published
    assert isinstance(event, SmsReceived)
    assert (event.tenant_id, event.call_sid, event.line_number) == ("acme", MESSAGE_SID, LINE)
    assert (event.caller_number, event.body, event.keyword) == (CALLER, "My VPN still fails", None)
    assert event.key == MESSAGE_SID and set(event.personal_fields()) == {"caller_number", "body"}
    assert CALLER not in caplog.text and "VPN still" not in caplog.text


async def test_advanced_opt_out_says_twilio_answered_the_keyword() -> None:
    publisher = RecordingPublisher()
    params = inbound("AIDE", OptOutType="HELP")
    async with ingress_client(publisher) as client:
        response = await client.post("/twilio/sms", data=params, headers=signed(SMS_URL, params))
    assert response.status_code == 200
    [event] = publisher.published
    assert isinstance(event, SmsReceived) and event.keyword == "help" and event.keyword_answered_by_twilio


@pytest.mark.parametrize("tamper", ["missing", "wrong-token", "body-changed", "other-account"])
async def test_an_unverifiable_inbound_sms_is_403_and_publishes_nothing(tamper: str) -> None:
    publisher = RecordingPublisher()
    params = inbound()
    headers = signed(SMS_URL, params)
    if tamper == "missing":
        headers = {}
    elif tamper == "wrong-token":
        headers = signed(SMS_URL, params, token="someone-elses-token")
    elif tamper == "body-changed":
        params = {**params, "Body": "send me the admin password"}
    else:
        params = {**params, "AccountSid": "AC" + "f" * 32}
        headers = signed(SMS_URL, params)
    async with ingress_client(publisher) as client:
        response = await client.post("/twilio/sms", data=params, headers=headers)
    assert response.status_code == 403
    assert publisher.published == []


def test_jira_signatures() -> None:
    body = b'{"webhookEvent":"jira:issue_updated"}'
    good = jira_signature(SECRET, body)
    assert good.startswith("sha256=") and len(good) == len("sha256=") + 64
    verify_jira_signature(SECRET, body, good)
    for header in ("", "sha256=" + "0" * 64, good.replace("sha256=", "sha1="), jira_signature("other", body)):
        with pytest.raises(Forbidden):
            verify_jira_signature(SECRET, body, header)
    with pytest.raises(Forbidden):
        verify_jira_signature(SECRET, body + b" ", good)
    with pytest.raises(Forbidden):
        verify_jira_signature("", body, good)


def test_only_status_changes_are_events() -> None:
    event = status_change("acme", issue_updated())
    assert isinstance(event, RequestStatusChanged)
    assert (event.issue_key, event.changelog_id, event.to_status, event.to_category) == (
        "HELP-7", "10042", "Resolved", "done"
    )  # fmt: skip
    assert event.from_status == "Waiting for support" and event.call_sid == ""
    summary_only = issue_updated()
    summary_only["changelog"]["items"] = [{"field": "summary", "fromString": "a", "toString": "b"}]
    assert status_change("acme", summary_only) is None
    assert status_change("acme", {**issue_updated(), "webhookEvent": "comment_created"}) is None


async def test_a_signed_jira_webhook_publishes_the_status_change_once_per_transition() -> None:
    publisher = RecordingPublisher()
    body = json.dumps(issue_updated()).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": jira_signature(SECRET, body)}
    async with ingress_client(publisher, config=jira_config()) as client:
        first = await client.post(JIRA_URL, content=body, headers=headers)
        again = await client.post(JIRA_URL, content=body, headers=headers)  # Jira retried it
    assert (first.status_code, again.status_code) == (204, 204)
    assert [type(e) for e in publisher.published] == [RequestStatusChanged, RequestStatusChanged]
    # the same transition, the same event id: consumers' ledgers see one transition
    assert publisher.published[0].deterministic_id() == publisher.published[1].deterministic_id()


@pytest.mark.parametrize("tamper", ["missing", "wrong", "other-tenant", "no-secret", "body-changed"])
async def test_an_unverifiable_jira_webhook_is_403_and_publishes_nothing(tamper: str) -> None:
    publisher = RecordingPublisher()
    body = json.dumps(issue_updated()).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature": jira_signature(SECRET, body)}
    url, config = JIRA_URL, jira_config()
    if tamper == "missing":
        del headers["X-Hub-Signature"]
    elif tamper == "wrong":
        headers["X-Hub-Signature"] = jira_signature("guessed-secret", body)
    elif tamper == "other-tenant":
        url = JIRA_URL.replace("/acme?", "/globex?")
    elif tamper == "no-secret":
        config = jira_config(None)
    else:
        body = body.replace(b"Resolved", b"Resolvez")
    async with ingress_client(publisher, config=config) as client:
        response = await client.post(url, content=body, headers=headers)
    assert response.status_code == 403
    assert publisher.published == []


async def test_a_text_from_a_short_code_is_answered_empty_and_publishes_nothing() -> None:
    publisher = RecordingPublisher()
    params = inbound("Your carrier bill is ready", From="22395")
    async with ingress_client(publisher) as client:
        response = await client.post("/twilio/sms", data=params, headers=signed(SMS_URL, params))
    assert response.status_code == 200 and "<Message" not in response.text
    assert publisher.published == []
