"""A line's IVR menu (``ivr_menu``) as the services read it: a prompt and options that the caller
chooses by key or by voice before the recording (ingress), each naming a request type and a language.

None (the default) is no menu: the call goes straight to the recording notice, as before menus.
config-api validates a menu strictly (``schemas.IvrMenuIn``); these view models parse tolerantly.
"""

from __future__ import annotations

import re
import unicodedata

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MENU_TIMEOUT_SECONDS = 5
"""Seconds the menu waits for a key or speech (``<Gather timeout>``)."""
DEFAULT_MENU_ATTEMPTS = 2
"""How many times the menu is offered before the call goes on without a choice."""
_NOT_A_WORD = re.compile(r"[\W_]+")


class IvrOption(BaseModel):
    """One choice of the menu: a key, the words that choose it, and where the request goes."""

    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)

    digit: str
    """The key (0-9, * or #)."""
    label: str
    """What the option is called; said in the built-in prompt, and a spoken choice too."""
    phrases: tuple[str, ...] = ()
    """Words or phrases a caller may say to choose it (also sent as speech hints)."""
    request_type_id: str | None = None
    """The JSM request type of the call's request, whatever the analysis' intent; None: the analysis decides."""
    language: str | None = None
    """ISO 639-1: the call's language from the choice on (prompts, speech-to-text, the request);
    None: the line's."""


class IvrMenu(BaseModel):
    """The menu said after the greeting: one ``<Gather input="dtmf speech" numDigits="1">``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    prompt: str | None = None
    """What the caller hears; None: a built-in prompt naming each option's label and key."""
    options: tuple[IvrOption, ...] = Field(min_length=1)
    timeout_seconds: int = DEFAULT_MENU_TIMEOUT_SECONDS
    attempts: int = DEFAULT_MENU_ATTEMPTS
    """Prompts in all (the first and the repeats after no input or an invalid one)."""

    def option(self, digit: str) -> IvrOption | None:
        return next((o for o in self.options if o.digit == digit), None)


def normalized_words(text: str) -> str:
    """``text`` as the words a spoken choice is compared by: case-folded, punctuation gone, single
    spaces (Twilio's ``SpeechResult`` "Billing, please." and a phrase "billing" compare as words)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NOT_A_WORD.sub(" ", folded).split())
