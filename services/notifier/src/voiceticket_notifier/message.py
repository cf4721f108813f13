"""The SMS text: the line's template filled in, kept within a budget of segments.

The request key is what the caller needs, so it is never shortened; the summary is, first (at a
word boundary where one is near, with "..."), and dropped if even that does not fit. When the
template's own text is too long, the default template with the key alone is sent.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from voiceticket_common.runtime_views import DEFAULT_SMS_TEMPLATE
from voiceticket_common.sms_template import check_template

from .sms_encoding import measure

DEFAULT_TEMPLATE = DEFAULT_SMS_TEMPLATE
ELLIPSIS = "..."  # GSM-7; "…" would turn an otherwise GSM-7 message into UCS-2
MAX_BODY_CHARS = 1600  # Twilio's limit for Body
_WORD_BOUNDARY_SLACK = 20  # give up at most this many characters to end on a whole word


def compose_sms(template: str, request_key: str, summary: str, max_segments: int) -> str:
    """The SMS body for a ticket, within ``max_segments`` whenever the key alone fits."""
    try:
        template = check_template(template)
    except ValueError:
        template = DEFAULT_TEMPLATE
    summary = " ".join(summary.split())

    def render(text: str) -> str:
        return template.format(request_key=request_key, summary=text)

    def fits(body: str) -> bool:
        return measure(body).segments <= max_segments and len(body) <= MAX_BODY_CHARS

    body = render(summary)
    if fits(body) or "{summary}" not in template:
        return body if fits(body) else _key_only(request_key, body, fits)
    # Fewer characters never need more segments, so the longest prefix that fits is found by
    # bisection (shortening can also turn a UCS-2 message into GSM-7, which only helps).
    low, high = 0, len(summary)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(render(_shortened(summary, middle))):
            low = middle
        else:
            high = middle - 1
    if low == 0:
        return _key_only(request_key, render(""), fits)
    return render(_at_word_boundary(summary, low))


def _shortened(summary: str, length: int) -> str:
    return summary if length >= len(summary) else _trim(summary[:length]) + ELLIPSIS


def _at_word_boundary(summary: str, length: int) -> str:
    if length >= len(summary):
        return summary
    cut = summary[:length]
    space = cut.rfind(" ")
    if space > 0 and length - space <= _WORD_BOUNDARY_SLACK:
        cut = cut[:space]
    return _trim(cut) + ELLIPSIS


def _trim(text: str) -> str:
    """No dangling joiner, variation selector, combining mark or punctuation at the cut."""
    while text and (
        unicodedata.category(text[-1]) in ("Mn", "Me", "Cf", "Sk")
        or text[-1] in " ,;:-"
        or 0xFE00 <= ord(text[-1]) <= 0xFE0F
    ):
        text = text[:-1]
    return text


def _key_only(request_key: str, body: str, fits: Callable[[str], bool]) -> str:
    fallback = DEFAULT_TEMPLATE.format(request_key=request_key)
    return body if fits(body) or not fits(fallback) else fallback
