"""The call context sealed into the callback URLs handed to Twilio.

Twilio's recording, record-action and message status callbacks do not say who called which line.
Rather than keep state, the service that builds a callback URL seals what ingress will need into
an opaque, encrypted ``ctx`` parameter: no phone number appears in URLs that proxies may log, and
Twilio signs the full URL, so the context cannot be forged either (ADR 2).

ingress seals {tenant, line, caller} into the recording callbacks and the consent ``<Gather>``
action, plus ``consent`` ("pressed") into the recording callbacks of a call whose caller pressed
the consent key, ``screened`` into those of a caller it screened, and ``ivr_choice`` into those
after the caller chose an option of the line's IVR menu; notifier seals {tenant, line,
CallSid} into each SMS's StatusCallback, because Twilio's message status callback carries no
CallSid. Both use the same key (``VOICETICKET_CALLBACK_CONTEXT_KEY``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr, ValidationError

from .events.v1 import IvrChoice

# Long enough for any real call (recordings can last up to 24 h) and for late delivery receipts.
MAX_AGE_SECONDS = 2 * 24 * 3600

DEVELOPMENT_KEY = "ZGV2ZWxvcG1lbnQtb25seS1jYWxsYmFjay1rZXktMDA="
"""The Fernet key used when none is configured; refused in production by the settings."""


@dataclass(frozen=True)
class CallContext:
    """What a callback needs to find its tenant and line; the caller only where a step needs it."""

    tenant_id: str
    line_number: str
    caller_number: str = ""
    call_sid: str = ""
    consent: str = ""
    """How the caller consented, where the callback must say it ("pressed"); empty: not sealed."""
    screened: str = ""
    """Why ingress screened the caller (blocked_caller, robocall) on a line that still records
    them; empty: not screened."""
    ivr_choice: IvrChoice | None = None
    """The option the caller chose in the line's IVR menu; None: no menu or no choice."""


class InvalidCallContext(ValueError):
    pass


class CallContextSealer:
    """Seals and opens :class:`CallContext` tokens (Fernet: AES-CBC + HMAC, with a timestamp)."""

    def __init__(self, key: SecretStr) -> None:
        self._fernet = Fernet(key.get_secret_value().encode())

    def seal(self, context: CallContext) -> str:
        data: dict[str, object] = {"t": context.tenant_id, "l": context.line_number}
        if context.caller_number:
            data["c"] = context.caller_number
        if context.call_sid:
            data["s"] = context.call_sid
        if context.consent:
            data["k"] = context.consent
        if context.screened:
            data["x"] = context.screened
        if context.ivr_choice is not None:
            data["m"] = context.ivr_choice.model_dump(mode="json", exclude_none=True)
        return self._fernet.encrypt(json.dumps(data).encode()).decode()

    def open(self, token: str) -> CallContext:
        try:
            data = json.loads(self._fernet.decrypt(token.encode(), ttl=MAX_AGE_SECONDS))
            return CallContext(
                tenant_id=str(data["t"]),
                line_number=str(data["l"]),
                caller_number=str(data.get("c", "")),
                call_sid=str(data.get("s", "")),
                consent=str(data.get("k", "")),
                screened=str(data.get("x", "")),
                ivr_choice=IvrChoice.model_validate(data["m"]) if "m" in data else None,
            )
        except (InvalidToken, ValueError, KeyError, TypeError, AttributeError, ValidationError):
            raise InvalidCallContext("call context missing, tampered or expired") from None
