"""Jira Service Management at production depth, on the embedded runtime against the sandboxes.

Two tenants: "acme" signs in with email + API token at the site URL, "globex" with an OAuth 2.0
bearer token through the gateway URL (``/ex/jira/<cloudId>``). Every call is played through
ingress by the caller simulator and goes through all six services; the Jira stand-in validates
every request against the official JSM and platform specs.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
from voiceticket_common.events import CallAnalyzed, RecordingAbsent
from voiceticket_sandbox import SandboxUrls, make_tone_wav, preload_specs, run_sandboxes
from voiceticket_sandbox.caller import CallerSimulator, PlayedCall
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, JIRA_EMAIL, JIRA_TOKEN, OPENAI_KEY
from voiceticket_sandbox.testing import (
    PRIORITY_OPTIONS,
    eventually,
    jsm_desk,
    jsm_field,
    jsm_options,
    jsm_request_type,
)

GROUP = "voiceticket-jira-writer"
CLOUD_ID = "0b5c1d4e-7a39-4f4e-9a61-2c8d3e9f1a77"
OAUTH_TOKEN = "oauth2-access-token-for-globex-" + "4" * 12
CALLER = "+14155550123"
OAUTH_LINE, ATTACH_LINE, PLAIN_LINE = "+15005550101", "+15005550102", "+15005550103"
MISSED_ON_LINE, MISSED_OFF_LINE = "+15005550104", "+15005550105"
PRIORITIES = jsm_options(*PRIORITY_OPTIONS)
SITE_FIELD = jsm_field(
    "customfield_10070",
    "Site",
    required=True,
    validValues=jsm_options(("10100", "Berlin"), ("10101", "Oslo")),
    defaultValues=jsm_options(("10101", "Oslo")),
    jiraSchema={"type": "option"},
)
PRIORITY_SCHEMA = {"type": "priority", "system": "priority"}
FAULT_FIELDS = [
    jsm_field("summary", "Summary", required=True),
    jsm_field("description", "Description"),
    jsm_field("priority", "Priority", validValues=PRIORITIES, jiraSchema=PRIORITY_SCHEMA),
    SITE_FIELD,
    jsm_field("customfield_10050", "Caller phone"),
]
CUSTOMERS = [
    {"accountId": "qm:anna", "emailAddress": "anna.berg@example.com", "displayName": "Anna Berg"},
    {"accountId": "qm:hanna", "emailAddress": "hanna@example.com", "displayName": "Hanna Berg"},
]
DESKS = [
    jsm_desk("4", "HELP", jsm_request_type("41", "Incident")),
    jsm_desk("8", "OPS", jsm_request_type("81", "Fault", *FAULT_FIELDS), customers=CUSTOMERS),
]


def seed(urls: SandboxUrls) -> dict[str, Any]:
    common = {"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN,
              "openai_base_url": urls.openai_v1, "openai_api_key": OPENAI_KEY}  # fmt: skip
    tenants = [
        {"id": "acme", "name": "Acme", "jira_base_url": urls.jira, "jira_email": JIRA_EMAIL,
         "jira_api_token": JIRA_TOKEN, **common},
        {"id": "globex", "name": "Globex", "jira_base_url": f"{urls.jira}/ex/jira/{CLOUD_ID}",
         "jira_auth": "oauth2", "jira_oauth_token": OAUTH_TOKEN, **common},
    ]  # fmt: skip

    def line(number: str, tenant: str, desk: str, request_type: str, **extra: Any) -> dict[str, Any]:
        return {"number": number, "tenant_id": tenant, "service_desk_id": desk, "request_type_id": request_type,
                "sms_enabled": False, **extra}  # fmt: skip

    lines = [
        line(OAUTH_LINE, "globex", "8", "81", phone_field_id="customfield_10050"),
        line(ATTACH_LINE, "acme", "4", "41", attach_recording=True),
        line(PLAIN_LINE, "acme", "4", "41"),
        line(MISSED_ON_LINE, "acme", "4", "41", ticket_on_absent_recording=True),
        line(MISSED_OFF_LINE, "acme", "4", "41"),
    ]
    return {"tenants": tenants, "lines": lines}


@dataclass
class World:
    urls: SandboxUrls
    runtime: EmbeddedRuntime
    http: httpx.AsyncClient
    caller: CallerSimulator
    data_dir: Path

    async def jira(self, path: str, body: Any = None) -> Any:
        if body is None:
            response = await self.http.get(f"{self.urls.jira}/_sandbox/{path}")
        else:
            response = await self.http.post(f"{self.urls.jira}/_sandbox/{path}", json=body)
        response.raise_for_status()
        return response.json()

    async def issues_for(self, call_sid: str) -> list[dict[str, Any]]:
        return [i for i in await self.jira("issues")
                if i["properties"].get("voiceticket.call", {}).get("callSid") == call_sid]  # fmt: skip

    async def jira_records(self) -> list[dict[str, Any]]:
        return await self.jira("requests")

    async def play(self, line: str, transcript: str, frequency: float) -> PlayedCall:
        audio = make_tone_wav(seconds=1.3, frequency=frequency)
        played = await self.caller.play_call(CALLER, line, audio, transcript, 9)
        assert played.voice_status == 200 and played.recording_status == 204
        return played

    async def committed(self) -> int:
        cursor = await self.runtime.bus.db.execute(
            "SELECT position FROM bus_offsets WHERE consumer_group = ?", (GROUP,)
        )
        row = await cursor.fetchone()
        return row[0] if row else 0

    async def position(self, call_sid: str, topic: str) -> int:
        cursor = await self.runtime.bus.db.execute(
            "SELECT position FROM bus_records WHERE key = ? AND topic = ?", (call_sid.encode(), topic)
        )
        row = await cursor.fetchone()
        assert row is not None, f"no {topic} record for the call"
        return row[0]


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    preload_specs()
    async with run_sandboxes() as urls, httpx.AsyncClient(timeout=10) as http:
        for path, body in [
            (f"{urls.twilio}/_sandbox/accounts", {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN}),
            (f"{urls.openai}/_sandbox/api-keys", {"api_key": OPENAI_KEY}),
            (f"{urls.jira}/_sandbox/credentials", {"email": JIRA_EMAIL, "api_token": JIRA_TOKEN}),
            (f"{urls.jira}/_sandbox/oauth", {"cloud_id": CLOUD_ID, "access_token": OAUTH_TOKEN}),
            *[(f"{urls.jira}/_sandbox/servicedesks", desk) for desk in DESKS],
        ]:
            (await http.post(path, json=body)).raise_for_status()
        (tmp_path / "seed.json").write_text(json.dumps(seed(urls)))
        options = EmbeddedOptions.against_sandboxes(tmp_path, urls.twilio, tmp_path / "seed.json")
        async with EmbeddedRuntime(options) as runtime:
            caller = CallerSimulator(
                runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, urls.twilio, http_client=http
            )
            yield World(urls, runtime, http, caller, tmp_path)


async def test_oauth_tenant_priority_default_phone_and_raise_on_behalf(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        played = await w.play(
            OAUTH_LINE,
            "This is urgent, our whole office network is down since this morning. "
            "My email address is anna.berg@example.com, please call me back.",
            frequency=611.0,
        )

        async def commented() -> list[dict[str, Any]]:
            # The comment follows the create and the property: wait for the whole request.
            return [i for i in await w.issues_for(played.call_sid) if i["comments"]]

        [issue] = await eventually(commented)
        records = await w.jira_records()

    values = issue["requestFieldValues"]
    analysed_priority = issue["properties"]["voiceticket.call"]["priority"]
    expected_id = next(p["value"] for p in PRIORITIES if p["label"].lower() == analysed_priority)
    assert values["priority"] == {"id": expected_id}, "mapped by the names of the field's valid values"
    assert values["customfield_10070"] == {"id": "10101"}, "the required field's default"
    assert values["customfield_10050"] == CALLER
    assert issue["raiseOnBehalfOf"] == "qm:anna", "the one customer with exactly that email"
    assert issue["comments"] and issue["comments"][0]["public"] is False
    assert {r["auth"]["scheme"] for r in records} == {"bearer"}, "only the OAuth token, never basic auth"
    assert [r for r in records if not r["valid"]] == []
    fields_lookups = [r for r in records if r["path"].endswith("/requesttype/81/field")]
    assert len(fields_lookups) == 1


async def test_recording_is_attached_once_even_after_a_redelivery(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        played = await w.play(ATTACH_LINE, "Hello, the printer on floor three jams on every page.", 733.0)
        [issue] = await eventually(lambda: w.issues_for(played.call_sid))
        await eventually(lambda: _attachments(w, played.call_sid))
        analyzed_at = await w.position(played.call_sid, CallAnalyzed.topic())
        await eventually(lambda: _at_least(w.committed(), analyzed_at))

        # The crash window: Jira stored the attachment, the process died before the ledger said so,
        # and the bus delivers call.analyzed again.
        with sqlite3.connect(tmp_path / "jira-writer.db") as ledger:
            ledger.execute("UPDATE jira_writer_requests SET attachment_added = 0")
        await w.runtime.bus.db.execute(
            "UPDATE bus_offsets SET position = ? WHERE consumer_group = ?", (analyzed_at - 1, GROUP)
        )
        await eventually(lambda: _ledger_says_attached(tmp_path))
        await eventually(lambda: _at_least(w.committed(), analyzed_at))
        [issue] = await w.issues_for(played.call_sid)
        records = await w.jira_records()

    assert issue["attachments"] == [
        {"filename": f"call-{played.call_sid}.wav", "size": issue["attachments"][0]["size"], "public": False}
    ]
    assert issue["attachments"][0]["size"] > 1000
    uploads = [r for r in records if r["path"].endswith("/attachTemporaryFile")]
    listings = [r for r in records if r["method"] == "GET" and r["path"].endswith("/attachment")]
    assert len(uploads) == 1 and uploads[0]["headers"]["x-atlassian-token"] == "no-check"
    assert len(listings) == 1, "the redelivery looked for our file before attaching again"
    assert len(issue["comments"]) == 1 and [r for r in records if not r["valid"]] == []


async def test_429_with_retry_after_is_waited_out_then_one_request(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.jira("faults", {"method": "POST", "path_regex": r"/rest/servicedeskapi/request$",
                                "status": 429, "retry_after": 2, "times": 1})  # fmt: skip
        played = await w.play(PLAIN_LINE, "Good morning, I cannot log in to the billing portal.", 857.0)
        [issue] = await eventually(lambda: w.issues_for(played.call_sid))
        records = await w.jira_records()

    creates = [r for r in records if r["method"] == "POST" and r["path"] == "/rest/servicedeskapi/request"]
    assert [r["status"] for r in creates] == [429, 201]
    waited = creates[1]["time"] - creates[0]["time"]
    print(f"429 Retry-After 2 -> next create after {waited:.2f} s")
    assert waited >= 2.0, f"retried after {waited:.2f} s, before Retry-After"
    assert issue["key"] == "HELP-1"


async def test_a_validation_error_dead_letters_with_jiras_message(tmp_path: Path) -> None:
    message = "Your request could not be created. Summary: The summary is invalid because it has a newline."
    async with world(tmp_path) as w:
        await w.jira("faults", {"method": "POST", "path_regex": r"/rest/servicedeskapi/request$", "status": 400,
                                "body": {"errorMessage": message, "i18nErrorMessage": {"i18nKey": "sd.error",
                                                                                       "parameters": []}}})  # fmt: skip
        played = await w.play(PLAIN_LINE, "Hi, the heating in room twelve is broken again.", 919.0)
        [letter] = await eventually(lambda: w.runtime.bus.dead_letters(GROUP))
        issues = await w.issues_for(played.call_sid)
        creates = [r for r in await w.jira_records() if r["path"] == "/rest/servicedeskapi/request"]

    assert letter.error_type == "PermanentError" and letter.original_topic == CallAnalyzed.topic()
    assert message in letter.error and "HTTP 400" in letter.error
    assert letter.attempts == 1, "a validation error is not retried"
    assert len(creates) == 1 and issues == []


async def test_absent_recordings_make_a_missed_call_request_only_where_the_line_says_so(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        off = await w.caller.play_absent_call(CALLER, MISSED_OFF_LINE)
        on = await w.caller.play_absent_call(CALLER, MISSED_ON_LINE)
        assert off.recording_status == 204 and on.recording_status == 204
        [issue] = await eventually(lambda: w.issues_for(on.call_sid))
        off_at = await w.position(off.call_sid, RecordingAbsent.topic())
        await eventually(lambda: _at_least(w.committed(), off_at))
        history = await w.runtime.bus.history(off.call_sid)
        all_issues = await w.jira("issues")
        records = await w.jira_records()

    assert issue["requestFieldValues"]["summary"] == "Missed call: caller left no message"
    prop = issue["properties"]["voiceticket.call"]
    assert (prop["recordingStatus"], prop["twilioErrorCode"], prop["callerNumber"]) == (
        "absent",
        "16101",
        CALLER,
    )
    assert issue["comments"] == [], "no transcript, no comment"
    assert len(all_issues) == 1, "the line with the default policy got no ticket"
    assert "voiceticket.ticket.created.v1" not in [topic for topic, _ in history]
    assert [r for r in records if not r["valid"]] == []


async def _attachments(w: World, call_sid: str) -> bool:
    issues = await w.issues_for(call_sid)
    return bool(issues and issues[0]["attachments"])


async def _at_least(value: Awaitable[int], floor: int) -> bool:
    return await value >= floor


async def _ledger_says_attached(data_dir: Path) -> bool:
    with sqlite3.connect(data_dir / "jira-writer.db") as ledger:
        return ledger.execute("SELECT attachment_added FROM jira_writer_requests").fetchone()[0] == 1


pytestmark = pytest.mark.timeout(120)
