"""Screening the caller at ingress (issue #16.5): a call a spam-score add-on flags, on a line that
screens robocalls, is rejected unanswered (``no_request``) or recorded and marked ``robocall``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from ingress_testkit import BASE, incoming, ingress_client, recording_params, runtime_config, signed

from voiceticket_common.events import CallReceived, CallScreened, RecordingCompleted
from voiceticket_common.testing import RecordingPublisher
from voiceticket_ingress.params import flagged_as_spam
from voiceticket_ingress.signature import Webhook


def add_ons(**results: dict[str, Any]) -> str:
    return json.dumps({"status": "successful", "message": None, "code": None, "results": results})


def nomorobo(score: int, status: str = "successful") -> dict[str, Any]:
    return {"request_sid": "XR" + "1" * 32, "status": status, "message": None, "code": None,
            "result": {"status": "success", "message": "success", "score": score}}  # fmt: skip


def marchex(recommendation: str) -> dict[str, Any]:
    return {"request_sid": "XR" + "2" * 32, "status": "successful", "message": None, "code": None,
            "result": {"result": {"recommendation": recommendation, "reason": "CallPattern"}}}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "flagged"),
    [
        (add_ons(nomorobo_spamscore=nomorobo(1)), True),
        (add_ons(marchex_cleancall=marchex("BLOCK")), True),
        (add_ons(nomorobo_spamscore=nomorobo(0), marchex_cleancall=marchex("PASS")), False),
        (add_ons(nomorobo_spamscore=nomorobo(1, status="failed")), False),  # the add-on did not run
        (add_ons(), False),
        ("{not json", False),
        (json.dumps(["results"]), False),
        (None, False),
    ],
)
def test_only_a_successful_add_on_verdict_flags_a_caller(value: str | None, flagged: bool) -> None:
    params = incoming() | ({"AddOns": value} if value is not None else {})
    assert flagged_as_spam(Webhook(f"{BASE}/twilio/voice", params, "")) is flagged


async def call(
    line: dict[str, Any], params: dict[str, str]
) -> tuple[RecordingPublisher, httpx.Response, list[Any]]:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(**line)) as client:
        url = f"{BASE}/twilio/voice"
        response = await client.post(url, data=params, headers=signed(url, params))
        later: list[Any] = []
        record = ET.fromstring(response.text).find("Record") if response.status_code == 200 else None
        if record is not None:
            callback = record.get("recordingStatusCallback") or ""
            answer = await client.post(
                callback, data=recording_params(), headers=signed(callback, recording_params())
            )
            later.append(answer.status_code)
    return publisher, response, later


SPAM = add_ons(nomorobo_spamscore=nomorobo(1))


async def test_a_flagged_caller_on_a_no_request_line_is_rejected_unanswered() -> None:
    publisher, response, later = await call(
        {"screen_robocalls": True, "screening_action": "no_request"}, incoming(AddOns=SPAM)
    )
    root = ET.fromstring(response.text)
    assert response.status_code == 200 and root.find("Reject") is not None
    assert root.find("Record") is None and root.find("Say") is None and later == []
    received, screened = publisher.published
    assert isinstance(received, CallReceived) and received.screened == "robocall"
    assert isinstance(screened, CallScreened)
    assert (screened.reason, screened.by, screened.call_sid) == ("robocall", "ingress", received.call_sid)


async def test_a_flagged_caller_on_a_screened_request_line_is_recorded_and_marked() -> None:
    publisher, response, later = await call(
        {"screen_robocalls": True, "screening_action": "screened_request"}, incoming(AddOns=SPAM)
    )
    assert ET.fromstring(response.text).find("Record") is not None and later == [204]
    received, completed = publisher.published
    assert isinstance(received, CallReceived) and isinstance(completed, RecordingCompleted)
    assert received.screened == completed.screened == "robocall", "sealed into the recording callback"


async def test_a_line_that_does_not_screen_robocalls_answers_the_flagged_caller_as_any_other() -> None:
    publisher, response, later = await call({"screening_action": "no_request"}, incoming(AddOns=SPAM))
    assert ET.fromstring(response.text).find("Record") is not None and later == [204]
    assert [e.screened for e in publisher.published] == [None, None]


async def test_an_unflagged_caller_is_not_screened() -> None:
    clean = add_ons(nomorobo_spamscore=nomorobo(0))
    publisher, response, _ = await call(
        {"screen_robocalls": True, "screening_action": "no_request"}, incoming(AddOns=clean)
    )
    assert ET.fromstring(response.text).find("Record") is not None
    assert all(e.screened is None and not isinstance(e, CallScreened) for e in publisher.published)
