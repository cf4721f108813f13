"""The caller simulator's <Gather> (issue #16, part 2): it refuses what Twilio would refuse, and a
spoken answer reaches only a <Gather> that listens for speech."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from voiceticket_sandbox.caller import InvalidTwiml, Said, _heard, check_gather


def gather(attributes: str, body: str = "<Say>Press 1.</Say>") -> ET.Element:
    return ET.fromstring(f"<Gather {attributes}>{body}</Gather>")


def test_a_documented_gather_passes() -> None:
    check_gather(gather('input="dtmf speech" numDigits="1" finishOnKey="" timeout="5" language="de-DE" '
                        'hints="billing, technical support" action="/twilio/menu" method="POST"'))  # fmt: skip


@pytest.mark.parametrize(
    ("attributes", "body"),
    [
        ('input="voice"', ""),
        ('numDigits="0"', ""),
        ('timeout="soon"', ""),
        ('finishOnKey="a"', ""),
        ('method="PUT"', ""),
        ('speechTimeout="later"', ""),
        ('digits="1"', ""),  # not an attribute of <Gather>
        (f'hints="{"x" * 101}"', ""),
        ("", "<Record/>"),
    ],
)
def test_what_twilio_would_refuse_is_refused(attributes: str, body: str) -> None:
    with pytest.raises(InvalidTwiml):
        check_gather(gather(attributes, body))


def test_words_reach_only_a_gather_listening_for_speech() -> None:
    assert _heard(gather('input="dtmf speech"'), Said("billing", 0.5)) == {
        "SpeechResult": "billing",
        "Confidence": "0.50000000",
    }
    assert _heard(gather('input="dtmf"'), Said("billing")) == {}
    assert _heard(gather(""), "2") == {"Digits": "2"}
    assert _heard(gather(""), None) == {}
