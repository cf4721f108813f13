"""A keyed hash of a caller's number, so the ledger can recognise an opted-out caller without
storing the number. A plain SHA-256 would not do: phone numbers are few enough to hash them all."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

_PURPOSE = b"voiceticket notifier opted-out caller v1"


class CallerHasher:
    def __init__(self, key: SecretStr) -> None:
        # A key of its own, derived from the configured secret, so the hash reveals nothing about
        # (and cannot be confused with) what else that secret protects.
        self._key = hmac.new(key.get_secret_value().encode(), _PURPOSE, hashlib.sha256).digest()

    def hash(self, tenant_id: str, number: str) -> str:
        message = f"{tenant_id}|{number.strip()}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
