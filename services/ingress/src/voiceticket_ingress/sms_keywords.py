"""The SMS keywords every carrier-facing sender must honour: opt-out, opt-in and help.

A message is a keyword only when it is one word of Twilio's standard lists, whatever its case and
surrounding spaces ("Stop texting me" is not an opt-out). Twilio's Advanced Opt-Out may configure
other words (localised ones): when it matched one, it says so in ``OptOutType``, which wins.
"""

from __future__ import annotations

from voiceticket_common.events.v1 import SMS_KEYWORD_HELP, SMS_KEYWORD_START, SMS_KEYWORD_STOP

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
_OPT_OUT_TYPES = {"STOP": SMS_KEYWORD_STOP, "START": SMS_KEYWORD_START, "HELP": SMS_KEYWORD_HELP}


def keyword(body: str, opt_out_type: str = "") -> str | None:
    """``stop``, ``start`` or ``help`` for a keyword message; None for any other text."""
    by_twilio = _OPT_OUT_TYPES.get(opt_out_type.strip().upper())
    if by_twilio is not None:
        return by_twilio
    word = body.strip().strip(".!").upper()
    if word in STOP_WORDS:
        return SMS_KEYWORD_STOP
    if word in START_WORDS:
        return SMS_KEYWORD_START
    if word in HELP_WORDS:
        return SMS_KEYWORD_HELP
    return None
