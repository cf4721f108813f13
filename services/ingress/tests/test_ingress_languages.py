"""Greeting, recording notice, goodbye and voice per language: built-in texts unless the line has its own."""

from __future__ import annotations

import pytest
from ingress_testkit import answer_and_hang_up

from voiceticket_common import texts
from voiceticket_common.runtime_views import DEFAULT_GREETING, DEFAULT_RECORDING_NOTICE


@pytest.mark.parametrize(
    ("language", "voice", "hello"),
    [("de", "Polly.Vicki", "Vielen Dank"), ("fr", "Polly.Lea", "Merci"), ("es", "Polly.Lucia", "Gracias")],
)
async def test_a_line_with_the_stored_defaults_speaks_its_language_in_a_voice_of_that_language(
    language: str, voice: str, hello: str
) -> None:
    # What config-api stores for a line created without texts: the English defaults.
    root, goodbye = await answer_and_hang_up(
        language=language, greeting=DEFAULT_GREETING, recording_notice=DEFAULT_RECORDING_NOTICE
    )
    says = root.findall("Say") + goodbye.findall("Say")
    assert [s.text for s in says] == [
        texts.GREETINGS[language],
        texts.RECORDING_NOTICES[language],
        texts.GOODBYES[language],
    ]
    assert all(s.text.startswith(hello) for s in (says[0], says[2]))
    # a Polly voice speaks one language, so <Say> names the voice of the line's language and no other
    assert {(s.get("voice"), s.get("language")) for s in says} == {(voice, None)}


async def test_a_lines_own_greeting_wins_and_the_rest_follows_its_language() -> None:
    root, goodbye = await answer_and_hang_up(
        language="de",
        greeting="Willkommen bei Acme.",
        recording_notice=DEFAULT_RECORDING_NOTICE,
        voice="alice",
    )
    says = root.findall("Say")
    assert [s.text for s in says] == ["Willkommen bei Acme.", texts.RECORDING_NOTICES["de"]]
    assert {(s.get("voice"), s.get("language")) for s in says} == {("alice", "de-DE")}
    assert goodbye.find("Say").text == texts.GOODBYES["de"]
