"""The IVR menu (issue #16, part 2): the caller's key or words → an option; the menu's TwiML; its
signed ``<Gather>`` action re-prompting politely, then going on with the choice sealed into the
recording callbacks (or, after the last attempt, without one)."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Any, TypeVar

import httpx
import pytest
from ingress_testkit import BASE, incoming, ingress_client, recording_params, runtime_config, signed

from voiceticket_common.events import CallReceived, ConsentDeclined, Event, RecordingCompleted
from voiceticket_common.events.v1 import IvrChoice
from voiceticket_common.ivr import IvrMenu
from voiceticket_common.runtime_views import IngressLine
from voiceticket_common.testing import RecordingPublisher
from voiceticket_ingress import twiml
from voiceticket_ingress.menu import INVALID_INPUT, NO_INPUT, MenuAnswer, answer, hints

MENU: dict[str, Any] = {
    "options": [
        {"digit": "1", "label": "Technical support", "phrases": ["computer", "support"], "request_type_id": "41"},
        {"digit": "2", "label": "Billing", "phrases": ["invoice", "refund"], "request_type_id": "44"},
        {"digit": "#", "label": "Deutsch", "phrases": ["German"], "language": "de"},
    ],
    "timeout_seconds": 4,
    "attempts": 2,
}  # fmt: skip
SECRET_WORDS = "my invoice number is 4242"
E = TypeVar("E", bound=Event)


def of(publisher: RecordingPublisher, kind: type[E]) -> list[E]:
    return [e for e in publisher.published if isinstance(e, kind)]


def menu(**changes: Any) -> IvrMenu:
    return IvrMenu.model_validate({**MENU, **changes})


def choice(digit: str, how: str = "dtmf") -> IvrChoice:
    option = menu().option(digit)
    assert option is not None
    return IvrChoice(
        digit=digit,
        label=option.label,
        request_type_id=option.request_type_id,
        language=option.language,
        input=how,
    )


# --- choice resolution ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "speech", "expected"),
    [
        ("2", None, MenuAnswer(choice("2"))),
        ("#", None, MenuAnswer(choice("#"))),
        ("2", "technical support", MenuAnswer(choice("2"))),  # a key wins over words
        ("7", None, MenuAnswer(None, INVALID_INPUT)),
        ("12", None, MenuAnswer(None, INVALID_INPUT)),
        (None, None, MenuAnswer(None, NO_INPUT)),
        (None, " ...", MenuAnswer(None, NO_INPUT)),
        (None, "Billing, please.", MenuAnswer(choice("2", "speech"))),
        (None, "I want a REFUND", MenuAnswer(choice("2", "speech"))),
        (None, "auf Deutsch bitte", MenuAnswer(choice("#", "speech"))),
        (None, "2.", MenuAnswer(choice("2", "speech"))),  # Twilio writes a spoken "two" as 2
        # "technical support" (17) is longer than "support" (7): option 1, not a tie
        (None, "technical support for my invoice", MenuAnswer(choice("1", "speech"))),
        (None, "support invoice", MenuAnswer(None, INVALID_INPUT)),  # a tie (7 and 7): no choice
        (None, "refunding", MenuAnswer(None, INVALID_INPUT)),  # words, not parts of words
        (None, "I have 2 printers", MenuAnswer(None, INVALID_INPUT)),  # a digit alone only
        (None, "the weather", MenuAnswer(None, INVALID_INPUT)),
    ],
)
def test_the_callers_answer_chooses_an_option(
    digits: str | None, speech: str | None, expected: MenuAnswer
) -> None:
    assert answer(menu(), digits, speech) == expected


def test_hints_are_the_labels_and_phrases_once_each() -> None:
    assert hints(menu()) == "Technical support, computer, support, Billing, invoice, refund, Deutsch, German"


# --- TwiML ---------------------------------------------------------------------------------------


def line(**fields: Any) -> IngressLine:
    return IngressLine.model_validate({"number": "+15005550006", "language": "en", **fields})


def test_the_menu_gathers_one_key_or_speech_with_hints_and_the_lines_locale() -> None:
    root = ET.fromstring(twiml.menu_gather(line(), menu(), f"{BASE}/twilio/menu?ctx=x", greeting=True))
    assert [e.tag for e in root] == ["Say", "Gather", "Redirect"]
    gather = root[1]
    assert {
        k: gather.get(k) for k in ("input", "numDigits", "finishOnKey", "timeout", "language", "method")
    } == {
        "input": "dtmf speech",
        "numDigits": "1",
        "finishOnKey": "",
        "timeout": "4",
        "language": "en-US",
        "method": "POST",
    }
    assert gather.get("hints") == hints(menu()) and gather.get("action") == root[2].text
    [prompt] = gather.findall("Say")
    assert prompt.text == (
        "For Technical support, press 1. For Billing, press 2. For Deutsch, press hash. You can also say your choice."
    )


def test_the_menu_prompt_is_the_lines_own_or_built_in_in_its_language() -> None:
    own = twiml.menu_prompt(line(), menu(prompt="Eins oder zwei?"))
    assert own == "Eins oder zwei?"
    german = twiml.menu_prompt(line(language="de", voice="Polly.Vicki"), menu())
    assert german.startswith("Für Technical support drücken Sie 1. Für Billing drücken Sie 2.")
    assert "Raute" in german


def test_a_repeat_says_why_politely_and_not_the_greeting_again() -> None:
    for reason, said in (("invalid_input", "Sorry, that is not one of the options."),
                         ("no_input", "Sorry, we did not get your choice.")):  # fmt: skip
        root = ET.fromstring(
            twiml.menu_gather(line(greeting="Hello."), menu(), "u", greeting=False, retry_reason=reason)
        )
        assert [e.text for e in root.findall("Say")] == [said]


# --- the webhooks --------------------------------------------------------------------------------


async def post_signed(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> httpx.Response:
    return await client.post(url, data=params, headers=signed(url, params))


async def gather_action(client: httpx.AsyncClient) -> str:
    response = await post_signed(client, f"{BASE}/twilio/voice", incoming())
    assert response.status_code == 200
    root = ET.fromstring(response.text)
    gather = root.find("Gather")
    assert gather is not None and root.find("Record") is None
    return gather.get("action") or ""


async def respond(client: httpx.AsyncClient, url: str, **said: str) -> ET.Element:
    response = await post_signed(client, url, incoming(CallStatus="in-progress", **said))
    assert response.status_code == 200, response.text
    return ET.fromstring(response.text)


async def test_a_line_without_a_menu_answers_as_before() -> None:
    async with ingress_client(RecordingPublisher()) as client:
        response = await post_signed(client, f"{BASE}/twilio/voice", incoming())
    root = ET.fromstring(response.text)
    assert root.find("Gather") is None and root.find("Record") is not None


async def test_a_key_goes_on_to_the_notice_and_record_with_the_choice_sealed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(ivr_menu=MENU)) as client:
        action = await gather_action(client)
        assert action.startswith(f"{BASE}/twilio/menu?ctx=")
        root = await respond(client, action, Digits="2")
        assert [e.text for e in root.findall("Say")] == ["This call is recorded."]  # no greeting again
        record = root.find("Record")
        assert record is not None
        await post_signed(client, record.get("recordingStatusCallback") or "", recording_params())
    [received] = of(publisher, CallReceived)
    [completed] = of(publisher, RecordingCompleted)
    assert received.ivr_choice is None  # the menu follows call.received
    assert completed.ivr_choice == choice("2")


async def test_words_choose_too_and_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    publisher = RecordingPublisher()
    caplog.set_level(logging.DEBUG)
    async with ingress_client(publisher, runtime_config(ivr_menu=MENU)) as client:
        action = await gather_action(client)
        root = await respond(client, action, SpeechResult=SECRET_WORDS, Confidence="0.9")
        record = root.find("Record")
        assert record is not None
        await post_signed(client, record.get("recordingStatusCallback") or "", recording_params())
    [completed] = of(publisher, RecordingCompleted)
    assert completed.ivr_choice == choice("2", "speech")
    assert SECRET_WORDS not in caplog.text and "4242" not in caplog.text


async def test_invalid_input_asks_again_then_the_last_attempt_goes_on_without_a_choice() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(ivr_menu=MENU)) as client:
        action = await gather_action(client)
        again = await respond(client, action, Digits="9")
        assert "Sorry, that is not one of the options." in [e.text for e in again.findall("Say")]
        repeat = again.find("Gather")
        assert repeat is not None and "attempt=2" in (repeat.get("action") or "")
        assert again.find("Redirect") is not None and again.find("Hangup") is None
        # the <Redirect> after the repeat: no input on the last attempt, the call goes on
        last = await respond(client, (again.find("Redirect").text or ""))  # type: ignore[union-attr]
        assert last.find("Record") is not None and last.find("Hangup") is None
        assert [e.text for e in last.findall("Say")] == ["This call is recorded."]
        await post_signed(
            client, last.find("Record").get("recordingStatusCallback") or "", recording_params()
        )  # type: ignore[union-attr]
    [completed] = of(publisher, RecordingCompleted)
    assert completed.ivr_choice is None


async def test_a_german_option_speaks_german_from_the_choice_on() -> None:
    async with ingress_client(
        RecordingPublisher(), runtime_config(ivr_menu=MENU, recording_notice="")
    ) as client:
        action = await gather_action(client)
        root = await respond(client, action, Digits="#")
        record = root.find("Record")
        assert record is not None
        [notice] = root.findall("Say")
        assert notice.get("voice") == "Polly.Vicki" and "aufgezeichnet" in (notice.text or "")
        done = {"CallSid": incoming()["CallSid"], "AccountSid": incoming()["AccountSid"], "Digits": "#"}
        goodbye = await post_signed(client, record.get("action") or "", done)
        assert goodbye.status_code == 200 and 'voice="Polly.Vicki"' in goodbye.text


async def test_after_the_menu_a_press_key_line_asks_for_consent_and_carries_the_choice() -> None:
    publisher = RecordingPublisher()
    config = runtime_config(ivr_menu=MENU, consent_mode="press_key", consent_key="1", consent_repeat=False)
    async with ingress_client(publisher, config) as client:
        action = await gather_action(client)
        consent = await respond(client, action, Digits="2")
        gather = consent.find("Gather")
        assert gather is not None and (gather.get("action") or "").startswith(f"{BASE}/twilio/consent?ctx=")
        assert consent.find("Record") is None and gather.get("input") == "dtmf"
        declined = await respond(client, gather.get("action") or "", Digits="5")
        assert declined.find("Hangup") is not None
    [event] = of(publisher, ConsentDeclined)
    assert event.ivr_choice == choice("2")


@pytest.mark.parametrize("attempt", ["1", "x", "10"])
async def test_a_forged_or_odd_attempt_is_refused(attempt: str) -> None:
    async with ingress_client(RecordingPublisher(), runtime_config(ivr_menu=MENU)) as client:
        action = await gather_action(client)
        response = await post_signed(client, f"{action}&attempt={attempt}", incoming(Digits="9"))
    assert response.status_code == 400


async def test_the_menu_action_is_signature_verified() -> None:
    publisher = RecordingPublisher()
    async with ingress_client(publisher, runtime_config(ivr_menu=MENU)) as client:
        action = await gather_action(client)
        params = incoming(Digits="2")
        forged = await client.post(action, data=params, headers=signed(action, params, token="not-the-token"))
        unsealed = await post_signed(client, f"{BASE}/twilio/menu", params)
    assert forged.status_code == 403 and unsealed.status_code == 403
    assert of(publisher, RecordingCompleted) == []
