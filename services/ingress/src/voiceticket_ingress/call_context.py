"""The call context sealed into the callback URLs ingress hands Twilio.

Twilio's recording and status callbacks carry the CallSid but not who called which line. Rather
than keep state, ingress seals {tenant, line, caller} into an opaque, encrypted ``ctx`` parameter:
no phone number appears in URLs that proxies may log, and Twilio signs the full URL, so the
context cannot be forged either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

# Long enough for any real call; Twilio recordings can last up to 24 h.
MAX_AGE_SECONDS = 2 * 24 * 3600


@dataclass(frozen=True)
class CallContext:
    tenant_id: str
    line_number: str
    caller_number: str


class InvalidCallContext(ValueError):
    pass


class CallContextSealer:
    def __init__(self, key: SecretStr) -> None:
        self._fernet = Fernet(key.get_secret_value().encode())

    def seal(self, context: CallContext) -> str:
        raw = json.dumps({"t": context.tenant_id, "l": context.line_number, "c": context.caller_number})
        return self._fernet.encrypt(raw.encode()).decode()

    def open(self, token: str) -> CallContext:
        try:
            data = json.loads(self._fernet.decrypt(token.encode(), ttl=MAX_AGE_SECONDS))
            return CallContext(tenant_id=data["t"], line_number=data["l"], caller_number=data["c"])
        except (InvalidToken, ValueError, KeyError, TypeError):
            raise InvalidCallContext("call context missing, tampered or expired") from None
