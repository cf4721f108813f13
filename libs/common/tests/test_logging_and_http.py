from __future__ import annotations

import json
import logging
import sys

import httpx
import pytest

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.http import (
    AllowListTransport,
    EgressDenied,
    raise_for_provider_status,
    retry_after_seconds,
)
from voiceticket_common.logging import JsonFormatter, current_call_sid
from voiceticket_common.privacy import phone_ref


def test_json_log_lines_carry_call_id_and_redact_numbers() -> None:
    record = logging.makeLogRecord(
        {"msg": "caller %s rang", "args": ("+14155550100",), "levelno": 20, "levelname": "INFO", "name": "t"}
    )
    record.__dict__["detail"] = "from +44 20 7946 0958"
    token = current_call_sid.set("CA" + "1" * 32)
    try:
        line = json.loads(JsonFormatter("ingress").format(record))
    finally:
        current_call_sid.reset(token)
    assert line["call_sid"] == "CA" + "1" * 32
    assert line["service"] == "ingress"
    assert "+1415" not in line["msg"] and "[redacted-number]" in line["msg"]
    assert "7946" not in line["detail"]


def test_an_exception_is_logged_by_type_and_place_never_by_its_text() -> None:
    def handle() -> None:
        raise AttributeError("caller +14155550100 said: my password is hunter2")

    try:
        handle()
    except AttributeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "handler failed", (), sys.exc_info())
    line = JsonFormatter("jira-writer").format(record)
    entry = json.loads(line)
    assert entry["exc_type"] == "AttributeError"
    assert entry["exc_where"][-1].startswith("test_logging_and_http.py:") and entry["exc_where"][-1].endswith(
        " handle"
    )
    assert "hunter2" not in line and "4155550100" not in line


def test_redaction_leaves_addresses_and_timings_alone() -> None:
    from voiceticket_common.privacy import redact_phone_numbers

    text = "GET /v1/runtime/lines/{number} 404 12.3ms from 127.0.0.1:8085, caller +1 (415) 555-0100"
    assert redact_phone_numbers(text) == (
        "GET /v1/runtime/lines/{number} 404 12.3ms from 127.0.0.1:8085, caller [redacted-number]"
    )


def test_phone_ref_is_stable_and_not_the_number() -> None:
    assert phone_ref("+14155550100") == phone_ref("+14155550100")
    assert "4155550100" not in phone_ref("+14155550100")


async def test_egress_outside_the_allow_list_is_refused() -> None:
    seen: list[str] = []

    class Recorder(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.url.host)
            return httpx.Response(200)

    transport = AllowListTransport(["*.atlassian.net", "http://127.0.0.1:9"], "jira", inner=Recorder())
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("https://acme.atlassian.net/rest")).status_code == 200
        assert (await client.get("http://127.0.0.1:9/x")).status_code == 200
        with pytest.raises(EgressDenied):
            await client.get("https://evil.example.com/steal")
    assert seen == ["acme.atlassian.net", "127.0.0.1"]


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, TransientError), (503, TransientError), (400, PermanentError), (401, PermanentError)],
)
def test_provider_status_classification(status: int, error: type[Exception]) -> None:
    response = httpx.Response(
        status, json={"errorMessage": "field summary is required"}, headers={"Retry-After": "7"}
    )
    with pytest.raises(error) as info:
        raise_for_provider_status(response, "jira", "create request")
    assert f"HTTP {status}" in str(info.value)
    assert "field summary is required" in str(info.value)
    if error is TransientError:
        assert info.value.retry_after == 7.0  # type: ignore[attr-defined]


def test_retry_after_accepts_http_dates() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after_seconds(httpx.Headers({})) is None
