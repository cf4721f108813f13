"""A keyed hash of a caller's number, under which a service remembers something about the caller
(jira-writer: the requests it created for them, for repeat callers; notifier: an opt-out and the
SMS conversations) without storing the number. A plain SHA-256 would not do: phone numbers are few
enough to hash them all, so the table would give the numbers back to whoever reads the database."""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr


class CallerHasher:
    """``purpose`` names what the hashes are for; each service passes its own, fixed for the life
    of its table: changing it changes every hash, and the rows already stored stop matching."""

    def __init__(self, key: SecretStr, purpose: bytes) -> None:
        # A key of its own, derived from the configured secret, so the hash reveals nothing about
        # (and cannot be confused with) what else that secret protects, or another purpose's hash.
        self._key = hmac.new(key.get_secret_value().encode(), purpose, hashlib.sha256).digest()

    def hash(self, tenant_id: str, number: str) -> str:
        message = f"{tenant_id}|{number.strip()}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
