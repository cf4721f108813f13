"""Keeping personal data out of logs, spans and error messages."""

from __future__ import annotations

import hashlib
import re

# International numbers as Twilio sends them (E.164, "+" first), also with spaces or dashes.
# Requiring the "+" keeps IP addresses, durations and ids readable.
_PHONE = re.compile(r"\+\d[\d \-().]{5,}\d")


def phone_ref(number: str) -> str:
    """A stable, non-reversible reference to a phone number for logs and spans."""

    digest = hashlib.sha256(number.strip().encode()).hexdigest()
    return f"ph_{digest[:12]}"


def redact_phone_numbers(text: str) -> str:
    return _PHONE.sub("[redacted-number]", text)
