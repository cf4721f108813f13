"""The Twilio parameters ingress reads, parsed strictly once the signature has verified.

A signature proves Twilio (or whoever holds the tenant's Auth Token) sent the request, not that
its values make sense. Every parameter ingress reads is checked here before anything is
published: SIDs by their prefix and 32 hex digits, numbers as E.164, counts as ASCII digits in a
bounded range, words and URLs by length and alphabet. A value that fails is :class:`Malformed`
(HTTP 400), an ``AccountSid`` other than the line's tenant's is :class:`WrongAccount` (HTTP 403);
both messages name the parameter, never its value (the values may be personal data).

Callers (``From``):

* an E.164 number is kept as is;
* Twilio Client and SIP callers (``client:<identity>``, ``sip:<user>@<host>``) are kept as is;
* callers who withheld their number arrive as a word (``anonymous``, ``Restricted``, ...) or as
  one of the placeholder numbers carriers and Twilio use for them (``+266696687``, ...): the call
  is answered and recorded as any other, and published with the caller ``anonymous``. Nobody can
  be texted back there, and no placeholder passes for a real number downstream;
* anything else (empty, oversized, another shape) is malformed.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from .signature import Webhook

ANONYMOUS = "anonymous"
"""The caller published for a withheld number."""

# Words and placeholder numbers for a withheld caller ID. The numbers spell ANONYMOUS, RESTRICTED,
# UNKNOWN and UNAVAILABLE on a keypad; they look like E.164 but belong to nobody.
_ANONYMOUS_WORDS = frozenset({"anonymous", "restricted", "unknown", "unavailable", "private", "blocked"})
_ANONYMOUS_NUMBERS = frozenset({"+266696687", "+86282452253", "+7378742833", "+2562533"})

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_CLIENT = re.compile(r"client:[A-Za-z0-9_.@+-]{1,121}")
_SIP = re.compile(r"sips?:[A-Za-z0-9._~+%!*'()-]{1,64}@[A-Za-z0-9.-]{1,190}(?::[0-9]{1,5})?")
_WORD = re.compile(r"[a-z][a-z_-]{0,31}")
_ERROR_CODE = re.compile(r"[0-9]{1,8}")
_MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-fA-F]{32}")
_DIGITS = re.compile(r"[0-9]{1,6}")
_KEYS = re.compile(r"[0-9*#]{1,32}")
_URL_CHARS = re.compile(r"[\x21-\x7e]{1,2048}")

MAX_DURATION_SECONDS = 86_400
"""Twilio's longest call (and so recording) is 24 hours."""


class Malformed(Exception):
    """A parameter is missing, repeated or not of its documented form: 400, nothing published."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name} {why}")
        self.name = name


class WrongAccount(Exception):
    """The webhook names another Twilio account than the line's tenant's: 403, nothing published."""


def _one(webhook: Webhook, name: str) -> str | None:
    """The parameter's one value; None when absent or empty."""
    values = webhook.values(name)
    if len(values) > 1:
        raise Malformed(name, "is given more than once")
    return values[0] if values and values[0] != "" else None


def _required(webhook: Webhook, name: str) -> str:
    value = _one(webhook, name)
    if value is None:
        raise Malformed(name, "is missing")
    return value


def sid(webhook: Webhook, name: str, prefix: str) -> str:
    """A Twilio SID: ``prefix`` and 32 hex digits."""
    value = _required(webhook, name)
    if not re.fullmatch(prefix + r"[0-9a-fA-F]{32}", value):
        raise Malformed(name, f"is not a Twilio SID ({prefix} and 32 hex digits)")
    return value


def call_sid(webhook: Webhook) -> str:
    return sid(webhook, "CallSid", "CA")


def check_account(webhook: Webhook, tenant_account_sid: str | None) -> None:
    """When the webhook names an ``AccountSid``, it must be well formed and the tenant's (when the
    tenant names one; otherwise its Auth Token, through the signature, is the only check).

    Where ingress publishes the account (``call.received``, ``call.recording.completed``) the
    route also requires it: ``sid(webhook, "AccountSid", "AC")``.
    """
    if _one(webhook, "AccountSid") is None:
        return
    value = sid(webhook, "AccountSid", "AC")
    if tenant_account_sid and value != tenant_account_sid:
        raise WrongAccount()


def e164(webhook: Webhook, name: str) -> str:
    value = _required(webhook, name)
    if not _E164.fullmatch(value):
        raise Malformed(name, "is not an E.164 number")
    return value


def caller(webhook: Webhook, name: str = "From") -> str:
    """The caller as published: an E.164 number, a client or SIP address, or :data:`ANONYMOUS`."""
    value = _required(webhook, name)
    if len(value) > 256:
        raise Malformed(name, "is too long")
    if value.lower() in _ANONYMOUS_WORDS or value in _ANONYMOUS_NUMBERS:
        return ANONYMOUS
    if _E164.fullmatch(value) or _CLIENT.fullmatch(value) or _SIP.fullmatch(value):
        return value
    raise Malformed(name, "is not an E.164 number, a client or SIP address, or an anonymous caller")


def count(
    webhook: Webhook, name: str, *, minimum: int = 0, maximum: int = MAX_DURATION_SECONDS
) -> int | None:
    """A whole number in ASCII digits within [minimum, maximum]; None when absent."""
    value = _one(webhook, name)
    if value is None:
        return None
    if not _DIGITS.fullmatch(value) or not minimum <= int(value) <= maximum:
        raise Malformed(name, f"is not a whole number from {minimum} to {maximum}")
    return int(value)


def word(webhook: Webhook, *names: str) -> str:
    """A status word (lower-case letters, ``-`` and ``_``, at most 32). With several names (say
    ``MessageStatus`` and its legacy alias ``SmsStatus``) the first present counts, and the others,
    when present, must agree with it."""
    return _agreeing(webhook, names, _WORD, "is not a status word")


def message_sid(webhook: Webhook) -> str:
    """``MessageSid`` (or its legacy alias ``SmsSid``): SM or MM and 32 hex digits."""
    return _agreeing(
        webhook, ("MessageSid", "SmsSid"), _MESSAGE_SID, "is not a message SID (SM or MM and 32 hex digits)"
    )


def _agreeing(webhook: Webhook, names: tuple[str, ...], pattern: re.Pattern[str], why: str) -> str:
    found: str | None = None
    for name in names:
        value = _one(webhook, name)
        if value is None:
            continue
        if not pattern.fullmatch(value):
            raise Malformed(name, why)
        if found is not None and value != found:
            raise Malformed(name, f"disagrees with {names[0]}")
        found = value
    if found is None:
        raise Malformed(names[0], "is missing")
    return found


def keys(webhook: Webhook) -> str | None:
    """``Digits`` of a ``<Gather>`` action: the keys pressed (0-9, ``*``, ``#``); None when the
    caller pressed none (absent or empty: the timeout, or the ``<Redirect>`` after the gather)."""
    value = _one(webhook, "Digits")
    if value is not None and not _KEYS.fullmatch(value):
        raise Malformed("Digits", "is not keypad keys (0-9, * and #, at most 32)")
    return value


def speech(webhook: Webhook) -> str | None:
    """``SpeechResult`` of a ``<Gather input="speech">`` action: what the caller said, personal
    data (never logged or published); None when absent or empty. At most 1000 characters."""
    value = _one(webhook, "SpeechResult")
    if value is not None and len(value) > 1000:
        raise Malformed("SpeechResult", "is longer than 1000 characters")
    return value


def error_code(webhook: Webhook) -> str | None:
    """Twilio's ``ErrorCode`` (digits); None when absent."""
    value = _one(webhook, "ErrorCode")
    if value is not None and not _ERROR_CODE.fullmatch(value):
        raise Malformed("ErrorCode", "is not a Twilio error code")
    return value


def media_url(webhook: Webhook, name: str = "RecordingUrl") -> str:
    """An absolute http(s) URL of printable ASCII, at most 2048 characters."""
    value = _required(webhook, name)
    if not _URL_CHARS.fullmatch(value):
        raise Malformed(name, "is not a URL of at most 2048 printable characters")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise Malformed(name, "is not an absolute http(s) URL")
    return value


MAX_ADD_ONS_CHARS = 64_000


def flagged_as_spam(webhook: Webhook) -> bool:
    """Whether a spam-score add-on installed for incoming calls flags the caller (Twilio sends
    their results as the JSON ``AddOns`` parameter): Nomorobo Spam Score ``score`` 1, or Marchex
    Clean Call ``recommendation`` ``BLOCK``. Anything else, an add-on that failed, or an
    unreadable ``AddOns`` is not a flag: screening never refuses a caller on a guess."""
    raw = _one(webhook, "AddOns")
    if raw is None or len(raw) > MAX_ADD_ONS_CHARS:
        return False
    try:
        add_ons = json.loads(raw)
    except ValueError:
        return False
    results = add_ons.get("results") if isinstance(add_ons, dict) else None
    if not isinstance(results, dict):
        return False
    nomorobo = _result(results, "nomorobo_spamscore")
    marchex = _result(results, "marchex_cleancall")
    verdict = marchex.get("result")
    blocked = isinstance(verdict, dict) and verdict.get("recommendation") == "BLOCK"
    return nomorobo.get("score") == 1 or blocked


def _result(results: dict[str, object], name: str) -> dict[str, object]:
    """One add-on's ``result``, when the add-on ran (``status`` successful)."""
    entry = results.get(name)
    if not isinstance(entry, dict) or entry.get("status") != "successful":
        return {}
    result = entry.get("result")
    return result if isinstance(result, dict) else {}
