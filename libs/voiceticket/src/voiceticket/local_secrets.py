"""Secrets an embedded installation keeps on its own disk (created once, mode 0600)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet


@dataclass(frozen=True)
class LocalSecrets:
    master_key: str
    admin_token: str
    callback_context_key: str


def load_or_create(data_dir: Path) -> LocalSecrets:
    """Read ``secrets.json`` from the data directory, creating it on first start.

    The master key encrypts provider credentials in config-api's database; keep the data
    directory's backups as private as the database itself.
    """

    path = data_dir / "secrets.json"
    if path.exists():
        data = json.loads(path.read_text())
        return LocalSecrets(data["master_key"], data["admin_token"], data["callback_context_key"])
    data_dir.mkdir(parents=True, exist_ok=True)
    created = LocalSecrets(
        master_key=f"k{secrets.token_hex(2)}:{Fernet.generate_key().decode()}",
        admin_token=secrets.token_urlsafe(32),
        callback_context_key=Fernet.generate_key().decode(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(created.__dict__, handle)
    return created
