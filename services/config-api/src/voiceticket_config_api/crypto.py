"""Envelope-style secret encryption with key ids.

Stored form: ``<kid>:<fernet token>``. The first master key is the primary and encrypts;
every configured key can decrypt, chosen by the kid, so master keys rotate by putting a new
key first, restarting, and calling ``reencrypt_all`` (``POST /v1/admin/rotate-master-key``).
"""

from __future__ import annotations

import logging
import re

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

log = logging.getLogger(__name__)

_KID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
# Public, fixed key for CONFIG_API_ENV=development only. Never protects real secrets.
DEV_KID = "dev"
DEV_KEY = b"ZGV2LW9ubHktbm90LWEtc2VjcmV0LWtleS0hISEhISE="


class SecretDecryptError(Exception):
    """A stored secret cannot be decrypted (unknown kid or wrong key). Carries no secret."""


class KeyRing:
    def __init__(self, keys: list[tuple[str, bytes]]):
        if not keys:
            raise ValueError("at least one master key is required")
        self._fernets: dict[str, Fernet] = {}
        for kid, key in keys:
            if not _KID.match(kid):
                raise ValueError(f"master key id {kid!r} must match {_KID.pattern}")
            if kid in self._fernets:
                raise ValueError(f"master key id {kid!r} is given more than once")
            try:
                self._fernets[kid] = Fernet(key)
            except (ValueError, TypeError):
                raise ValueError(f"master key {kid!r} is not a urlsafe-base64 32-byte Fernet key") from None
        self.primary_kid = keys[0][0]

    @classmethod
    def parse(cls, spec: SecretStr | str) -> KeyRing:
        raw = spec.get_secret_value() if isinstance(spec, SecretStr) else spec
        keys = []
        for item in (x.strip() for x in raw.split(",")):
            if not item:
                continue
            kid, sep, key = item.partition(":")
            if not sep:
                raise ValueError("CONFIG_API_MASTER_KEYS entries must be 'kid:base64key'")
            keys.append((kid.strip(), key.strip().encode()))
        return cls(keys)

    @classmethod
    def development(cls) -> KeyRing:
        return cls([(DEV_KID, DEV_KEY)])

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._fernets)

    def encrypt(self, plaintext: str) -> str:
        token = self._fernets[self.primary_kid].encrypt(plaintext.encode())
        return f"{self.primary_kid}:{token.decode()}"

    def decrypt(self, stored: str) -> str:
        kid, _, token = stored.partition(":")
        fernet = self._fernets.get(kid)
        if fernet is None:
            raise SecretDecryptError(f"no master key with id {kid!r}")
        try:
            return fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretDecryptError(f"secret does not decrypt with key {kid!r}") from None

    @staticmethod
    def kid_of(stored: str) -> str:
        return stored.partition(":")[0]


def keyring_from_settings(master_keys: SecretStr | None, env: str) -> KeyRing:
    if master_keys is not None and master_keys.get_secret_value().strip():
        return KeyRing.parse(master_keys)
    if env == "development":
        log.warning(
            "!!! CONFIG_API_MASTER_KEYS is not set: using the PUBLIC development key. "
            "Stored credentials are NOT protected. Never do this outside development. !!!"
        )
        return KeyRing.development()
    raise RuntimeError(
        "CONFIG_API_MASTER_KEYS is required (comma-separated 'kid:base64key', first is primary; "
        "generate a key with `python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'`). Set CONFIG_API_ENV=development to use an "
        "insecure fixed key for local work."
    )
