"""Requests are checked against the vendored OpenAPI specs: valid ones pass, wrong ones fail."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources

import httpx
import pytest

from voiceticket_sandbox.contracts import SPEC_FILES, validate_request

pytestmark = pytest.mark.usefixtures("specs")

ACCOUNT = "AC" + "a" * 32
RECORDING = "RE" + "b" * 32
BASIC = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:token".encode()).decode()}
BEARER = {"Authorization": "Bearer sk-test"}
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


def multipart(files: dict, data: dict) -> tuple[str, bytes]:
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    request.read()
    return request.headers["content-type"], request.content


def chat(role: str = "user") -> bytes:
    return json.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": "Extract."}, {"role": role, "content": "hi"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "call",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "properties": {"summary": {"type": "string"}},
                        "required": ["summary"],
                        "additionalProperties": False,
                    },
                },
            },
        }
    ).encode()


def jsm_request(**extra: object) -> bytes:
    body = {"serviceDeskId": "10", "requestTypeId": "25", "requestFieldValues": {"summary": "s"}}
    return json.dumps({**body, **extra}).encode()


def test_vendored_specs_match_their_recorded_checksums() -> None:
    folder = resources.files("voiceticket_sandbox").joinpath("contracts")
    recorded = folder.joinpath("SOURCES.md").read_text()
    for name in SPEC_FILES.values():
        digest = hashlib.sha256(folder.joinpath(name).read_bytes()).hexdigest()
        section = recorded[recorded.index(f"## {name}") :]
        assert re.search(rf"sha256: `{digest}`", section.split("\n## ")[0]), name


@pytest.mark.parametrize(
    ("spec", "method", "path", "headers", "content_type", "body"),
    [
        ("twilio", "POST", MESSAGES, BASIC, FORM, b"To=%2B15551234567&From=%2B15557654321&Body=hi"),
        (
            "twilio",
            "POST",
            MESSAGES,
            BASIC,
            FORM,
            b"To=%2B15551234567&MessagingServiceSid=MG" + b"a" * 32 + b"&Body=hi&StatusCallback=https://h/cb",
        ),
        ("twilio", "GET", f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}.json", BASIC, None, b""),
        ("twilio", "GET", f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}.wav", BASIC, None, b""),
        ("twilio", "GET", f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}", BASIC, None, b""),
        ("openai", "POST", "/v1/chat/completions", BEARER, JSON, chat()),
        ("jira", "POST", "/rest/servicedeskapi/request", BASIC, JSON, jsm_request()),
        (
            "jira",
            "POST",
            "/rest/servicedeskapi/request/SUP-1/comment",
            BASIC,
            JSON,
            b'{"body":"x","public":false}',
        ),
        (
            "jira",
            "PUT",
            "/rest/api/3/issue/SUP-1/properties/voiceticket.call",
            BASIC,
            JSON,
            b'{"callSid":"CA1"}',
        ),
        ("jira", "GET", "/rest/api/3/issue/SUP-1/properties/voiceticket.call", BASIC, None, b""),
        (
            "jira",
            "POST",
            "/rest/api/3/search/jql",
            BASIC,
            JSON,
            b'{"jql":"key = SUP-1","fields":["summary"]}',
        ),
        ("jira", "GET", "/rest/servicedeskapi/servicedesk/10/requesttype/25/field", BASIC, None, b""),
    ],
)
def test_valid_requests_pass(spec, method, path, headers, content_type, body) -> None:
    assert validate_request(spec, method, path, None, headers, content_type, body) == []


def test_transcription_multipart_passes_with_text_parts_decoded_and_cast() -> None:
    content_type, body = multipart(
        {"file": ("call.wav", b"RIFF\x00\xff\r\n\x00data", "audio/wav")},
        {"model": "whisper-1", "language": "de", "response_format": "json", "temperature": "0"},
    )
    assert (
        validate_request("openai", "POST", "/v1/audio/transcriptions", None, BEARER, content_type, body) == []
    )


def test_transcription_with_a_wrong_response_format_fails() -> None:
    content_type, body = multipart(
        {"file": ("a.wav", b"RIFF", "audio/wav")}, {"model": "whisper-1", "response_format": "xml"}
    )
    errors = validate_request("openai", "POST", "/v1/audio/transcriptions", None, BEARER, content_type, body)
    assert any("response_format" in e for e in errors)


def test_jsm_temporary_file_needs_a_file_part() -> None:
    path = "/rest/servicedeskapi/servicedesk/10/attachTemporaryFile"
    headers = {**BASIC, "X-Atlassian-Token": "no-check"}
    good_type, good = multipart({"file": ("a.wav", b"RIFF", "audio/wav")}, {})
    bad_type, bad = multipart({"upload": ("a.wav", b"RIFF", "audio/wav")}, {})
    assert validate_request("jira", "POST", path, None, headers, good_type, good) == []
    assert validate_request("jira", "POST", path, None, headers, bad_type, bad) != []


def test_unknown_field_on_jsm_create_request_fails() -> None:
    errors = validate_request(
        "jira", "POST", "/rest/servicedeskapi/request", None, BASIC, JSON, jsm_request(bogus=1)
    )
    assert errors and "bogus" in errors[0]


def test_bad_chat_role_fails_and_names_the_allowed_roles() -> None:
    errors = validate_request(
        "openai", "POST", "/v1/chat/completions", None, BEARER, JSON, chat(role="wizard")
    )
    assert errors and "'user'" in errors[0] and "role" in errors[0]


def test_messages_post_without_to_fails() -> None:
    errors = validate_request("twilio", "POST", MESSAGES, None, BASIC, FORM, b"From=%2B15557654321&Body=hi")
    assert errors == ["body: 'To' is a required property"]


def test_messages_post_with_an_unknown_parameter_fails() -> None:
    body = b"To=%2B15551234567&From=%2B15557654321&Body=hi&Boddy=typo"
    assert validate_request("twilio", "POST", MESSAGES, None, BASIC, FORM, body) == [
        "body: unknown form field 'Boddy'"
    ]


def test_missing_credentials_are_security_errors() -> None:
    body = b"To=%2B15551234567&From=%2B15557654321&Body=hi"
    media = f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}.wav"
    for errors in (
        validate_request("twilio", "POST", MESSAGES, None, {}, FORM, body),
        validate_request("twilio", "GET", media, None, {}, None, b""),
        validate_request("openai", "POST", "/v1/chat/completions", None, {}, JSON, chat()),
        validate_request("jira", "POST", "/rest/servicedeskapi/request", None, {}, JSON, jsm_request()),
    ):
        assert errors and errors[0].startswith("security: ")


def test_paths_outside_the_spec_are_reported() -> None:
    errors = validate_request("openai", "POST", "/v1/chat/complete", None, BEARER, JSON, chat())
    assert errors and errors[0].startswith("not in the spec")


def test_bad_query_parameter_type_fails() -> None:
    path = f"/2010-04-01/Accounts/{ACCOUNT}/Recordings/{RECORDING}.json"
    errors = validate_request("twilio", "GET", path, {"IncludeSoftDeleted": "maybe"}, BASIC, None, b"")
    assert errors and "IncludeSoftDeleted" in errors[0]
