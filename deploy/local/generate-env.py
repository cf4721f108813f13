#!/usr/bin/env python3
"""Write the .env docker-compose.yml needs: .env.example with fresh secrets filled in.

    python3 deploy/local/generate-env.py          # writes .env (mode 0600) next to docker-compose.yml

docker-compose.yml ships no default key, token or password: each comes from a ``VT_*`` variable
that must be set (``${VT_...:?...}``). This fills every empty secret line of .env.example with a
new value (a Fernet key for ``*_KEY``, a random token or password otherwise) and keeps the rest.
An existing .env is completed, not replaced: set values stay, empty or missing secrets are added.
Standard library only, so it runs before anything is installed.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECRET = re.compile(r"^(VT_[A-Z0-9_]*(?:KEY|TOKEN|PASSWORD))=(.*)$")


def fresh(name: str) -> str:
    if name.endswith("_KEY"):  # Fernet: urlsafe base64 of 32 random bytes
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return secrets.token_urlsafe(32)


def complete(example: str, current: str = "") -> str:
    """``example`` with each empty secret set: from ``current`` where it has a value, else fresh."""

    have = {m.group(1): m.group(2) for m in map(SECRET.match, current.splitlines()) if m and m.group(2)}
    out = []
    for line in example.splitlines():
        match = SECRET.match(line)
        if match and not match.group(2):
            line = f"{match.group(1)}={have.get(match.group(1)) or fresh(match.group(1))}"
        out.append(line)
    # Settings the operator added to an existing .env beyond the example's are kept as they are.
    names = {line.partition("=")[0] for line in out if "=" in line and not line.startswith("#")}
    extra = [
        line for line in current.splitlines()
        if "=" in line and not line.startswith("#") and line.partition("=")[0] not in names
    ]  # fmt: skip
    return "\n".join(out + extra) + "\n"


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / ".env"
    current = target.read_text() if target.exists() else ""
    text = complete((REPO / ".env.example").read_text(), current)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(target, 0o600)
    print(
        f"{'completed' if current else 'wrote'} {target} (keep it private; never commit it)", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
