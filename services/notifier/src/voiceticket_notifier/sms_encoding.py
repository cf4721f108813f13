"""How a text travels as SMS: GSM-7 or UCS-2, and how many segments that takes.

GSM 03.38 (3GPP TS 23.038) packs 160 septets into one SMS. Its basic alphabet covers English and
most Western European letters (German umlauts and ß included); ``^ { } \\ [ ~ ] |`` and ``€``
come from the extension table at two septets each (escape + character). A text with any other
character goes as UCS-2 (UTF-16): 70 code units per SMS, and characters outside the BMP (most
emoji) take two units. A longer text is split into concatenated segments whose user-data header
leaves 153 septets or 67 units each; a two-septet or two-unit character is never split across
segments, so a segment may carry one fewer.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_SINGLE = {"GSM-7": 160, "UCS-2": 70}
_MULTI = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SmsSize:
    encoding: str  # "GSM-7" | "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _widths(text: str, encoding: str) -> list[int]:
    if encoding == "GSM-7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def measure(text: str) -> SmsSize:
    """Encoding, total units and segment count of ``text`` as an SMS (0 segments when empty)."""
    encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    widths = _widths(text, encoding)
    units = sum(widths)
    if units == 0:
        return SmsSize(encoding, 0, 0)
    if units <= _SINGLE[encoding]:
        return SmsSize(encoding, units, 1)
    per_segment, segments, used = _MULTI[encoding], 1, 0
    for width in widths:
        if used + width > per_segment:
            segments, used = segments + 1, 0
        used += width
    return SmsSize(encoding, units, segments)
