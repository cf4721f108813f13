"""The caller's answer to a line's IVR menu: a key (``Digits``) or words (``SpeechResult``) → an option.

A key chooses the option with that digit. Words choose the option whose label or phrase they
contain as whole words (normalised: case, punctuation), the longest such phrase winning, so "technical
support" beats "support"; a tie between two options, or no match, is not a choice. The bare digit
said alone ("2", as Twilio writes a spoken "two") chooses that option too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from voiceticket_common.events.v1 import IvrChoice
from voiceticket_common.ivr import IvrMenu, IvrOption, normalized_words

NoChoice = Literal["no_input", "invalid_input"]
NO_INPUT: NoChoice = "no_input"
INVALID_INPUT: NoChoice = "invalid_input"


@dataclass(frozen=True)
class MenuAnswer:
    """The option chosen, or why there is none (``no_input``, ``invalid_input``)."""

    choice: IvrChoice | None
    reason: NoChoice | None = None


def answer(menu: IvrMenu, digits: str | None, speech: str | None) -> MenuAnswer:
    """What the caller's key or words choose (a key wins when Twilio sends both)."""
    if digits:
        option = menu.option(digits)
        return MenuAnswer(_choice(option, "dtmf")) if option else MenuAnswer(None, INVALID_INPUT)
    words = normalized_words(speech or "")
    if not words:
        return MenuAnswer(None, NO_INPUT)
    option = spoken_option(menu, words)
    return MenuAnswer(_choice(option, "speech")) if option else MenuAnswer(None, INVALID_INPUT)


def spoken_option(menu: IvrMenu, words: str) -> IvrOption | None:
    """The one option whose longest matching phrase is longer than every other option's."""
    padded = f" {words} "
    best: dict[str, int] = {}
    for option in menu.options:
        for phrase in (option.label, *option.phrases):
            said = normalized_words(phrase)
            if said and f" {said} " in padded:
                best[option.digit] = max(best.get(option.digit, 0), len(said))
        if words == option.digit:
            best[option.digit] = max(best.get(option.digit, 0), len(words))
    if not best:
        return None
    longest = max(best.values())
    winners = [digit for digit, length in best.items() if length == longest]
    return menu.option(winners[0]) if len(winners) == 1 else None


def hints(menu: IvrMenu) -> str:
    """``<Gather hints>``: every label and phrase, comma-separated (Twilio's format)."""
    phrases = dict.fromkeys(p.strip() for o in menu.options for p in (o.label, *o.phrases))
    return ", ".join(p for p in phrases if p)


def _choice(option: IvrOption, how: Literal["dtmf", "speech"]) -> IvrChoice:
    return IvrChoice(
        digit=option.digit,
        label=option.label,
        request_type_id=option.request_type_id,
        language=option.language,
        input=how,
    )
