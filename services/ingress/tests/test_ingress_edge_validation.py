"""Security review #11: what ingress accepts at its edge.

1. signatures are checked against the exact public URL (no with/without-port leniency);
2. numeric parameters parse strictly (ASCII digits, bounded), never a 5xx;
4. signed but nonsensical values (numbers, SIDs, sizes, another account) are refused with a 4xx
   that quotes no value, and nothing is published; anonymous callers are kept, as ``anonymous``;
5. a URL with ``bodySHA256`` has its body hash checked whatever the content type.

The corpus tests count what got through, so the before/after figures of the review can be read
off a run: ``pytest -k corpus -rA`` prints them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingress_testkit import (
    ACCOUNT,
    BASE,
    CALL_SID,
    CALLBACK_KEY,
    CALLER,
    LINE,
    TOKEN,
    incoming,
    ingress_client,
    recording_params,
    signed,
)

from voiceticket_common.call_context import CallContext, CallContextSealer
from voiceticket_common.events import CallReceived, NotificationDelivery
from voiceticket_common.testing import RecordingPublisher

SEALER = CallContextSealer(CALLBACK_KEY)
MESSAGE_SID = "SM" + "d" * 32
OTHER_ACCOUNT = "AC" + "b" * 32


def recording_url(base: str = BASE) -> str:
    return f"{base}/twilio/recording?ctx={SEALER.seal(CallContext('acme', LINE, CALLER))}"


def message_url(base: str = BASE) -> str:
    return f"{base}/twilio/message-status?ctx={SEALER.seal(CallContext('acme', LINE, call_sid=CALL_SID))}"


def receipt(**extra: str) -> dict[str, str]:
    return {
        "MessageSid": MESSAGE_SID, "SmsSid": MESSAGE_SID, "AccountSid": ACCOUNT, "From": LINE,
        "To": CALLER, "MessageStatus": "delivered", "SmsStatus": "delivered", **extra,
    }  # fmt: skip


def call_status(**extra: str) -> dict[str, str]:
    return {
        "CallSid": CALL_SID, "AccountSid": ACCOUNT, "From": CALLER, "To": LINE,
        "CallStatus": "completed", "CallDuration": "37", **extra,
    }  # fmt: skip


# endpoint -> (url, genuine parameters, the parameters ingress reads there)
ENDPOINTS: dict[str, tuple[Callable[[], str], Callable[[], dict[str, str]], tuple[str, ...]]] = {
    "voice": (lambda: f"{BASE}/twilio/voice", incoming, ("CallSid", "AccountSid", "From", "To")),
    "recording": (
        recording_url,
        recording_params,
        ("CallSid", "AccountSid", "RecordingSid", "RecordingUrl", "RecordingDuration", "RecordingChannels"),
    ),
    "recording-absent": (
        recording_url,
        lambda: recording_params("absent"),
        ("CallSid", "AccountSid", "ErrorCode"),
    ),
    "call-status": (
        lambda: f"{BASE}/twilio/call-status",
        call_status,
        ("CallSid", "AccountSid", "To", "CallDuration"),
    ),
    "message-status": (
        message_url,
        receipt,
        ("MessageSid", "SmsSid", "AccountSid", "MessageStatus", "SmsStatus"),
    ),
}

# Values that are wrong for every parameter above (none is a valid SID, number, URL or count).
MALFORMED = [
    "²", "١٧", "９", "17\n", " 17", "-1", "1.5", "1e3", "0x1F", "Infinity", "9" * 1000, "9" * 5000,
    "x" * 10_000, "\x00", "é" * 40, "<script>alert(1)</script>", "+1 415 555 0100", "AC" + "g" * 32,
    "CA" + "c" * 33, "RE" + "e" * 31, "SM" + "d" * 31 + "\u0660",
]  # fmt: skip


class Tally:
    """How many posts were answered 5xx and how many published something."""

    def __init__(self) -> None:
        self.total = self.server_errors = self.published = 0

    def __str__(self) -> str:
        return f"{self.published}/{self.total} published, {self.server_errors}/{self.total} 5xx"


async def post(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> httpx.Response:
    return await client.post(url, data=params, headers=signed(url, params))


# --- 1. exact URL -------------------------------------------------------------------------------

PORTED = "https://voice.example.com:8443"
PORTLESS = "https://voice.example.com"


async def test_port_stripped_forgeries_corpus_is_refused() -> None:
    """Signatures for the public URL with its port removed (or a default port added)."""
    tally = Tally()
    callback = recording_url(PORTED)  # one sealed context, so only the port differs
    cases = [  # (public base, what ingress is told by a trusted proxy, URL the forgery was signed for)
        (PORTED, {}, f"{PORTLESS}/twilio/voice", "/twilio/voice", incoming()),
        (PORTED, {}, f"{PORTLESS}/twilio/call-status", "/twilio/call-status", call_status()),
        (
            "http://127.0.0.1:8080",
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "voice.example.com", "X-Forwarded-Port": "8443"},
            f"{PORTLESS}/twilio/voice", "/twilio/voice", incoming(),
        ),
        (PORTLESS, {}, f"{PORTLESS}:443/twilio/voice", "/twilio/voice", incoming()),
        (PORTED, {}, callback.replace(PORTED, PORTLESS), callback, recording_params()),
    ]  # fmt: skip
    statuses = []
    for base, forwarded, signed_for, path, params in cases:
        publisher = RecordingPublisher()
        async with ingress_client(
            publisher, peer="10.0.0.5", public_base_url=base, trusted_proxies="10.0.0.0/8"
        ) as client:
            response = await client.post(
                path, data=params, headers={**signed(signed_for, params), **forwarded}
            )
        tally.total += 1
        tally.published += bool(publisher.published)
        tally.server_errors += response.status_code >= 500
        statuses.append(response.status_code)
    print(f"port-stripped forgeries: {tally}")
    assert tally.published == 0
    assert statuses == [403] * len(cases)


async def test_signature_for_the_exact_url_with_its_port_passes() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, public_base_url=PORTED) as client:
        params = incoming()
        response = await client.post(
            "/twilio/voice", data=params, headers=signed(f"{PORTED}/twilio/voice", params)
        )
        assert response.status_code == 200
        callback = ET.fromstring(response.text).find("Record").get("recordingStatusCallback")
        assert callback.startswith(f"{PORTED}/twilio/recording?")
        recorded = await post(client, callback, recording_params())
    assert recorded.status_code == 204
    assert len(publisher.published) == 2


# --- 2. strict numbers --------------------------------------------------------------------------

NUMBERS = ["²", "١٧", "９", "9" * 1000, "9" * 5000, "-1", "1.5", " 17", "17\n", "0x10", "1e3", "99999999"]


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [("recording", "RecordingDuration"), ("recording", "RecordingChannels"), ("call-status", "CallDuration")],
)
async def test_malformed_counts_corpus_is_400_quoting_no_value(endpoint: str, field: str) -> None:
    url_of, params_of, _ = ENDPOINTS[endpoint]
    tally = Tally()
    failures: list[tuple[str, int]] = []
    for value in [*NUMBERS, "3"] if field == "RecordingChannels" else NUMBERS:
        publisher = RecordingPublisher()
        async with ingress_client(publisher) as client:
            response = await post(client, url_of(), {**params_of(), field: value})
        tally.total += 1
        tally.published += bool(publisher.published)
        tally.server_errors += response.status_code >= 500
        if response.status_code != 400 or field not in response.text or value.strip() in response.text:
            failures.append((value[:12], response.status_code))
    print(f"malformed {field}: {tally}")
    assert tally.published == 0 and tally.server_errors == 0
    assert failures == []


# --- 2 + 4. every endpoint, every parameter it reads --------------------------------------------


async def test_malformed_signed_values_corpus_at_every_endpoint() -> None:
    tally = Tally()
    failures: list[tuple[str, str, str, int]] = []
    for name, (url_of, params_of, fields) in ENDPOINTS.items():
        publisher = RecordingPublisher()
        async with ingress_client(publisher) as client:
            for field in fields:
                for value in MALFORMED:
                    before = len(publisher.published)
                    response = await post(client, url_of(), {**params_of(), field: value})
                    published = len(publisher.published) > before
                    tally.total += 1
                    tally.published += published
                    tally.server_errors += response.status_code >= 500
                    quoted = len(value) > 3 and value in response.text
                    if published or quoted or not 400 <= response.status_code < 500:
                        failures.append((name, field, value[:12], response.status_code))
    print(f"malformed signed values at every endpoint: {tally}")
    assert tally.server_errors == 0 and tally.published == 0
    assert failures == []


_VALID: dict[str, tuple[str, int]] = {  # field -> (pattern, largest value)
    "RecordingDuration": (r"[0-9]{1,6}", 86_400),
    "CallDuration": (r"[0-9]{1,6}", 86_400),
    "RecordingChannels": (r"[12]", 2),
    "ErrorCode": (r"[0-9]{1,8}", 99_999_999),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    endpoint_field=st.sampled_from(
        [
            ("recording", "RecordingDuration"),
            ("recording", "RecordingChannels"),
            ("call-status", "CallDuration"),
            ("voice", "From"),
            ("message-status", "ErrorCode"),
        ]
    ),
    value=st.one_of(st.text(min_size=1, max_size=60), st.from_regex(r"\A[0-9]{6,4500}\Z")),
)
def test_property_no_signed_value_gives_a_5xx(endpoint_field: tuple[str, str], value: str) -> None:
    endpoint, field = endpoint_field
    url_of, params_of, _ = ENDPOINTS[endpoint]

    async def run() -> tuple[int, list[object]]:
        publisher = RecordingPublisher()
        async with ingress_client(publisher) as client:
            response = await post(client, url_of(), {**params_of(), field: value})
        return response.status_code, list(publisher.published)

    status, published = asyncio.run(run())
    assert status < 500
    if status >= 400:
        assert published == []
    if field in _VALID:
        pattern, largest = _VALID[field]
        valid = re.fullmatch(pattern, value) is not None and int(value) <= largest
        assert (status == 400 and published == []) if not valid else (status == 204 and len(published) == 1)


# --- raw requests: headers, query and bodies that must not reach a 5xx --------------------------


async def test_raw_malformed_requests_never_give_a_5xx() -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    cases: list[tuple[str, dict[str, str | bytes], bytes]] = [
        ("/twilio/voice", {"X-Twilio-Signature": b"\xe9" * 28}, urlencode(incoming()).encode()),
        (
            "/twilio/call-status?bodySHA256=%C3%A9",
            {"X-Twilio-Signature": "x", "Content-Type": "application/json"},
            b"{}",
        ),
        ("/twilio/call-status?bodySHA256=a", {"Content-Type": "application/json"}, b"[" * 60_000),
        ("/twilio/call-status?bodySHA256=a", {"Content-Type": "application/json"}, deep[:60_000]),
        ("/twilio/voice", {"Content-Type": "application/x-www-form-urlencoded"}, b"To=" + b"9" * 200_000),
        ("/twilio/voice", {"Content-Type": "application/x-www-form-urlencoded"}, b"%zz=%ff&&==&To"),
        ("/twilio/voice", {"Content-Type": "text/plain"}, b"hello"),
    ]
    tally = Tally()
    statuses = []
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        for path, headers, body in cases:
            response = await client.post(path, content=body, headers=headers)
            tally.total += 1
            tally.server_errors += response.status_code >= 500
            statuses.append(response.status_code)
    print(f"raw malformed requests: {tally}")
    assert publisher.published == []
    assert all(400 <= status < 500 for status in statuses), statuses


async def test_repeated_parameter_we_read_is_refused() -> None:
    publisher = RecordingPublisher()
    params = [*incoming().items(), ("From", "+14155550199")]
    url = f"{BASE}/twilio/voice"
    async with ingress_client(publisher) as client:
        # Twilio's own rule sorts repeated values into the signature; sign it that way
        form = httpx.QueryParams(params)
        signature = _multi_signature(url, params)
        response = await client.post(
            "/twilio/voice",
            content=str(form).encode(),
            headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 400 and "From" in response.text
    assert publisher.published == []


def _multi_signature(url: str, params: list[tuple[str, str]]) -> str:
    s = url
    for name in sorted({k for k, _ in params}):
        for value in sorted({v for k, v in params if k == name}):
            s += name + value
    return base64.b64encode(hmac.new(TOKEN.encode(), s.encode(), hashlib.sha1).digest()).decode()


# --- 4. nonsensical values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "overrides", "status"),
    [
        ("voice", {"From": ""}, 400),
        ("voice", {"From": "+" + "1" * 9_999}, 400),
        ("voice", {"From": "client:" + "a" * 10_000}, 400),
        ("voice", {"AccountSid": OTHER_ACCOUNT}, 403),
        ("recording", {"AccountSid": OTHER_ACCOUNT}, 403),
        ("recording-absent", {"AccountSid": OTHER_ACCOUNT}, 403),
        ("call-status", {"AccountSid": OTHER_ACCOUNT}, 403),
        ("message-status", {"AccountSid": OTHER_ACCOUNT}, 403),
        ("recording", {"RecordingUrl": ""}, 400),
        ("recording", {"RecordingSid": ""}, 400),
        ("recording", {"RecordingUrl": "javascript:alert(1)"}, 400),
        ("recording", {"CallSid": ""}, 400),
        ("message-status", {"MessageStatus": "x" * 5000, "SmsStatus": "x" * 5000}, 400),
        ("call-status", {"CallStatus": "c" * 5000}, 400),
    ],
    ids=[
        "empty-from", "long-from", "long-client", "voice-other-account", "recording-other-account",
        "absent-other-account", "call-status-other-account", "message-other-account",
        "no-recording-url", "no-recording-sid", "non-http-recording-url", "no-call-sid",
        "long-message-status", "long-call-status",
    ],
)  # fmt: skip
async def test_nonsensical_signed_values_are_refused(
    endpoint: str, overrides: dict[str, str], status: int
) -> None:
    url_of, params_of, _ = ENDPOINTS[endpoint]
    params = {**params_of(), **overrides}
    if overrides.get("RecordingUrl") == "" or overrides.get("RecordingSid") == "":
        params = {k: v for k, v in params.items() if v != ""}  # missing altogether
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        response = await post(client, url_of(), params)
    assert response.status_code == status, response.text
    assert publisher.published == []
    for value in overrides.values():
        if len(value) > 3:
            assert value not in response.text
    assert CALLER not in response.text


@pytest.mark.parametrize("caller", ["anonymous", "Anonymous", "+266696687", "Restricted", "+86282452253"])
async def test_anonymous_callers_are_answered_and_published_as_anonymous(caller: str) -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        response = await post(client, f"{BASE}/twilio/voice", incoming(From=caller))
    assert response.status_code == 200
    assert ET.fromstring(response.text).find("Record") is not None, "the call is not lost"
    [event] = publisher.published
    assert isinstance(event, CallReceived) and event.caller_number == "anonymous"


@pytest.mark.parametrize("caller", ["client:alice", "client:support_agent-7", "sip:alice@example.com"])
async def test_client_and_sip_callers_are_kept(caller: str) -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        response = await post(client, f"{BASE}/twilio/voice", incoming(From=caller))
    assert response.status_code == 200
    [event] = publisher.published
    assert isinstance(event, CallReceived) and event.caller_number == caller


# --- 5. bodySHA256 whatever the content type -----------------------------------------------------


async def test_form_body_with_bodysha256_in_the_url_is_hash_checked() -> None:
    """A form body whose URL names another body's hash: refused even when the form signature
    (URL + parameters, the twilio library's form rule) is right."""
    tally = Tally()
    statuses = []
    params = receipt()
    cases = []
    other_hash = hashlib.sha256(b'{"MessageStatus": "delivered"}').hexdigest()
    url = f"{message_url()}&{urlencode({'bodySHA256': other_hash})}"
    cases.append((url, signed(url, params)))  # form rule: URL + parameters
    cases.append((url, signed(url, {})))  # JSON rule: URL alone
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        for sent_url, headers in cases:
            response = await client.post(sent_url, data=params, headers=headers)
            tally.total += 1
            tally.server_errors += response.status_code >= 500
            tally.published += response.status_code < 300
            statuses.append(response.status_code)
    print(f"form bodies with a foreign bodySHA256: {tally}")
    assert publisher.published == []
    assert statuses == [403, 403]


async def test_form_body_matching_its_bodysha256_verifies_on_the_url_alone() -> None:
    body = urlencode(receipt()).encode()
    url = f"{message_url()}&{urlencode({'bodySHA256': hashlib.sha256(body).hexdigest()})}"
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        response = await client.post(
            url,
            content=body,
            headers={**signed(url, {}), "Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 204, response.text
    [event] = publisher.published
    assert isinstance(event, NotificationDelivery)


async def test_json_webhook_still_verifies_and_its_values_are_validated() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        for duration, expected in ((42, 204), ("²", 400), (10**400, 400)):
            body = json.dumps({**call_status(), "CallDuration": duration}).encode()
            url = f"{BASE}/twilio/call-status?{urlencode({'bodySHA256': hashlib.sha256(body).hexdigest()})}"
            response = await client.post(
                url, content=body, headers={**signed(url, {}), "Content-Type": "application/json"}
            )
            assert response.status_code == expected
    assert len(publisher.published) == 1
