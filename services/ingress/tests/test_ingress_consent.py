"""Consent per line (issue #10): the notice always comes before <Record>; a press_key line records
only after the caller pressed its key, through a signed <Gather> action with the sealed context."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from ingress_testkit import (
    BASE,
    CALL_SID,
    CALLER,
    LINE,
    incoming,
    ingress_client,
    recording_params,
    runtime_config,
    signed,
)

from voiceticket_common.events import CallReceived, ConsentDeclined, RecordingCompleted
from voiceticket_common.runtime_views import DEFAULT_RECORDING_NOTICE
from voiceticket_common.testing import RecordingPublisher

PRESS_KEY: dict[str, Any] = {"consent_mode": "press_key", "consent_key": "1", "consent_timeout_seconds": 7}


async def post_signed(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> httpx.Response:
    return await client.post(url, data=params, headers=signed(url, params))


async def answer(client: httpx.AsyncClient) -> ET.Element:
    response = await post_signed(client, f"{BASE}/twilio/voice", incoming())
    assert response.status_code == 200
    return ET.fromstring(response.text)


def gather_action(root: ET.Element) -> str:
    gather = root.find("Gather")
    assert gather is not None
    return gather.get("action") or ""


async def press(client: httpx.AsyncClient, url: str, digits: str | None) -> httpx.Response:
    """The <Gather> action with ``Digits`` (None: the <Redirect> after a gather without input)."""
    params = incoming(CallStatus="in-progress")
    if digits is not None:
        params["Digits"] = digits
    return await post_signed(client, url, params)


def no_record(root: ET.Element) -> bool:
    return next(root.iter("Record"), None) is None


async def test_a_press_key_line_answers_with_a_gather_around_the_notice_and_no_record() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(**PRESS_KEY)) as client:
        root = await answer(client)
    assert [e.text for e in root.findall("Say")] == ["Welcome to Acme support."]
    gather = root.find("Gather")
    assert gather is not None
    assert (
        gather.get("numDigits"),
        gather.get("finishOnKey"),
        gather.get("timeout"),
        gather.get("input"),
    ) == (
        "1",
        "",
        "7",
        "dtmf",
    )
    assert [e.text for e in gather.findall("Say")] == [
        "This call is recorded.",
        "To agree to this call being recorded, please press 1.",
    ]
    assert gather_action(root).startswith(f"{BASE}/twilio/consent?ctx=")
    assert CALLER not in gather_action(root), "no phone number in callback URLs"
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text == gather_action(root), "no key: the same action"
    assert no_record(root)
    [event] = publisher.published
    assert isinstance(event, CallReceived) and event.consent is None


async def test_the_right_key_records_and_the_recording_says_pressed() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(**PRESS_KEY)) as client:
        response = await press(client, gather_action(await answer(client)), "1")
        assert response.status_code == 200
        root = ET.fromstring(response.text)
        record = root.find("Record")
        assert record is not None
        assert [e.text for e in root.findall("Say")] == [
            "Thank you. Please leave your message after the tone."
        ]
        assert record.get("action", "").startswith(f"{BASE}/twilio/record-done?")
        callback = record.get("recordingStatusCallback", "")
        response = await post_signed(client, callback, recording_params())
        assert response.status_code == 204
    completed = publisher.published[-1]
    assert isinstance(completed, RecordingCompleted) and completed.consent == "pressed"
    assert not [e for e in publisher.published if isinstance(e, ConsentDeclined)]


async def test_a_wrong_key_is_asked_again_politely_then_declined_without_a_record() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(**PRESS_KEY)) as client:
        first = await press(client, gather_action(await answer(client)), "7")
        again = ET.fromstring(first.text)
        assert no_record(again)
        assert [e.text for e in again.findall("Say")] == ["Sorry, that was not the right key."]
        assert "attempt=2" in gather_action(again)
        assert [e.text for e in again.find("Gather").findall("Say")][0] == "This call is recorded."
        assert not [e for e in publisher.published if isinstance(e, ConsentDeclined)]
        second = await press(client, gather_action(again), "#")
    root = ET.fromstring(second.text)
    assert no_record(root) and root.find("Hangup") is not None
    assert [e.text for e in root.findall("Say")] == ["Your call has not been recorded. Goodbye."]
    declined = publisher.published[-1]
    assert isinstance(declined, ConsentDeclined)
    assert (declined.reason, declined.attempts, declined.consent) == ("invalid_key", 2, "declined")
    assert (declined.tenant_id, declined.call_sid, declined.line_number, declined.caller_number) == (
        "acme",
        CALL_SID,
        LINE,
        CALLER,
    )


async def test_no_input_twice_is_declined() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(**PRESS_KEY)) as client:
        first = ET.fromstring((await press(client, gather_action(await answer(client)), None)).text)
        assert [e.text for e in first.findall("Say")] == ["We did not receive a key."] and no_record(first)
        second = ET.fromstring((await press(client, gather_action(first), "")).text)
    assert no_record(second)
    declined = publisher.published[-1]
    assert isinstance(declined, ConsentDeclined) and (declined.reason, declined.attempts) == ("no_input", 2)


async def test_without_a_repeat_the_first_timeout_declines() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(**PRESS_KEY, consent_repeat=False)) as client:
        root = ET.fromstring((await press(client, gather_action(await answer(client)), None)).text)
    assert no_record(root) and root.find("Hangup") is not None
    declined = publisher.published[-1]
    assert isinstance(declined, ConsentDeclined) and (declined.reason, declined.attempts) == ("no_input", 1)


async def test_the_consent_key_and_prompt_follow_the_line_language_and_voice() -> None:
    line = {**PRESS_KEY, "consent_key": "#", "language": "de", "voice": "Polly.Vicki"}
    async with ingress_client(RecordingPublisher(), runtime_config(**line)) as client:
        root = await answer(client)
        gather = root.find("Gather")
        assert gather is not None
        prompt = gather.findall("Say")[1]
        assert (
            prompt.text
            == "Wenn Sie mit der Aufzeichnung einverstanden sind, drücken Sie bitte die Taste Raute."
        )
        assert prompt.get("voice") == "Polly.Vicki"
        # '#' is the consent key here: finishOnKey="" lets it reach Digits
        root = ET.fromstring((await press(client, gather_action(root), "#")).text)
        assert root.find("Record") is not None


async def test_a_line_prompt_replaces_the_built_in_one() -> None:
    config = runtime_config(**PRESS_KEY, consent_prompt="Press one to agree.")
    async with ingress_client(RecordingPublisher(), config) as client:
        gather = (await answer(client)).find("Gather")
    assert [e.text for e in gather.findall("Say")] == ["This call is recorded.", "Press one to agree."]


@pytest.mark.parametrize("forge", ["unsigned", "no-context", "tampered-context"])
async def test_the_consent_webhook_is_verified_like_every_other(forge: str) -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(**PRESS_KEY)) as client:
        url = gather_action(await answer(client))
        params = {**incoming(CallStatus="in-progress"), "Digits": "1"}
        if forge == "unsigned":
            response = await client.post(url, data=params)
        elif forge == "no-context":
            response = await post_signed(client, f"{BASE}/twilio/consent", params)
        else:
            response = await post_signed(client, url.replace("ctx=", "ctx=x"), params)
    assert response.status_code == 403
    assert "<Record" not in response.text
    assert [type(e) for e in publisher.published] == [CallReceived]


@pytest.mark.parametrize(("digits", "query"), [("12abc", ""), ("1", "&attempt=3")])
async def test_malformed_keys_or_attempts_are_400(digits: str, query: str) -> None:
    async with ingress_client(RecordingPublisher(), runtime_config(**PRESS_KEY)) as client:
        url = gather_action(await answer(client)) + query
        response = await press(client, url, digits)
    assert response.status_code == 400


async def test_a_notice_line_is_unchanged_and_says_notice() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher) as client:
        root = await answer(client)
        assert [e.text for e in root.findall("Say")] == ["Welcome to Acme support.", "This call is recorded."]
        assert root.find("Gather") is None and root.find("Record") is not None
        callback = root.find("Record").get("recordingStatusCallback")
        await post_signed(client, callback, recording_params())
    received, completed = publisher.published
    assert isinstance(received, CallReceived) and received.consent == "notice"
    assert isinstance(completed, RecordingCompleted) and completed.consent == "notice"


@pytest.mark.parametrize("notice", [None, ""])
async def test_the_notice_is_said_before_record_even_when_the_line_has_none(notice: str | None) -> None:
    async with ingress_client(RecordingPublisher(), runtime_config(recording_notice=notice)) as client:
        root = await answer(client)
    children = [child.tag for child in root]
    assert children == ["Say", "Say", "Record"]
    assert root.findall("Say")[1].text == DEFAULT_RECORDING_NOTICE
