"""TwiML per line: language and voice on every <Say>, <Record> limits from the line's config."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from ingress_testkit import LINE, answer_and_hang_up

from voiceticket_common.runtime_views import IngressLine
from voiceticket_ingress import twiml


async def test_record_limits_come_from_the_line() -> None:
    root, _ = await answer_and_hang_up(
        max_recording_seconds=300, record_timeout_seconds=8, record_finish_on_key="*#"
    )
    record = root.find("Record")
    assert (record.get("maxLength"), record.get("timeout"), record.get("finishOnKey")) == ("300", "8", "*#")
    assert (record.get("method"), record.get("recordingStatusCallbackMethod")) == ("POST", "POST")
    assert record.get("recordingStatusCallbackEvent") == "completed absent"
    assert record.get("playBeep") == "true"


async def test_record_limits_default_when_the_line_has_none() -> None:
    root, _ = await answer_and_hang_up(max_recording_seconds=None)
    record = root.find("Record")
    assert (record.get("maxLength"), record.get("timeout"), record.get("finishOnKey")) == ("120", "5", "#")


async def test_a_german_line_greets_and_says_goodbye_in_german_with_its_voice() -> None:
    root, goodbye = await answer_and_hang_up(
        language="de", voice="Google.de-DE-Standard-A", greeting="Willkommen beim Acme-Support.",
        recording_notice="Dieser Anruf wird aufgezeichnet.",
    )  # fmt: skip
    says = root.findall("Say")
    assert [s.text for s in says] == ["Willkommen beim Acme-Support.", "Dieser Anruf wird aufgezeichnet."]
    assert {(s.get("voice"), s.get("language")) for s in says} == {("Google.de-DE-Standard-A", "de-DE")}
    [bye] = goodbye.findall("Say")
    assert bye.text.startswith("Vielen Dank") and bye.get("language") == "de-DE"
    assert goodbye.find("Hangup") is not None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ({"voice": "alice", "language": "de"}, {"voice": "alice", "language": "de-DE"}),
        ({"voice": "woman", "language": "fr"}, {"voice": "woman", "language": "fr-FR"}),
        (
            {"voice": "Google.en-GB-Standard-A", "language": "en"},
            {"voice": "Google.en-GB-Standard-A", "language": "en-GB"},
        ),
        # a Polly voice speaks one language: naming another would fail the <Say>, so none is named
        ({"voice": "Polly.Vicki", "language": "de"}, {"voice": "Polly.Vicki"}),
        ({"language": "en"}, {"voice": "Polly.Joanna"}),
        ({"voice": "alice", "language": "xx"}, {"voice": "alice"}),
    ],
)
def test_say_attributes_pair_voice_and_locale(line: dict[str, str], expected: dict[str, str]) -> None:
    assert twiml.say_attributes(IngressLine.model_validate({"number": LINE, **line})) == expected


def test_unknown_number_message_is_polite_and_hangs_up() -> None:
    root = ET.fromstring(twiml.not_in_service())
    assert [child.tag for child in root] == ["Say", "Hangup"]
