"""Bearer-token authentication: named admin tokens, per-role service tokens.

Every token maps to an ``Identity``: its role (``admin`` or a service role) and its actor, the
name the audit log records. ``CONFIG_API_ADMIN_TOKEN`` is actor ``admin``, each of
``CONFIG_API_ADMIN_TOKENS`` (``name:token``) is actor ``name``, a service token's actor is its
role; a request without a known token is ``anonymous``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ADMIN = "admin"
ANONYMOUS = "anonymous"

_bearer = HTTPBearer(auto_error=False, description="admin token or a per-service token")


@dataclass(frozen=True)
class Identity:
    role: str
    actor: str


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


class TokenTable:
    """Known tokens, compared in constant time: every entry is compared (no early exit), and as
    SHA-256 digests, so neither the match nor a token's length shows in the timing."""

    def __init__(self, entries: Iterable[tuple[Identity, bytes]]) -> None:
        self._entries = tuple((identity, _digest(token)) for identity, token in entries)

    def identify(self, presented: str) -> Identity | None:
        candidate = _digest(presented.encode())
        found = None
        for identity, digest in self._entries:
            if hmac.compare_digest(candidate, digest):
                found = identity
        return found

    def role_for(self, presented: str) -> str | None:
        identity = self.identify(presented)
        return None if identity is None else identity.role

    def identify_header(self, authorization: str | None) -> Identity | None:
        """The identity of an ``Authorization: Bearer <token>`` header value, if known."""
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        return self.identify(presented.strip())


def app_tokens(request: Request) -> TokenTable:
    tokens: TokenTable = request.app.state.tokens
    return tokens


def request_identity(request: Request) -> Identity | None:
    """The identity ``require_role`` established for this request (None before, or without one)."""
    identity: Identity | None = getattr(request.state, "identity", None)
    return identity


def _unauthorized() -> HTTPException:
    return HTTPException(401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"})


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require_role(*allowed: str) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[str]]:
    async def dependency(request: Request, creds: Credentials) -> str:
        if creds is None or creds.scheme.lower() != "bearer":
            raise _unauthorized()
        identity = app_tokens(request).identify(creds.credentials)
        if identity is None:
            raise _unauthorized()
        request.state.identity = identity
        if identity.role not in allowed:
            raise HTTPException(403, f"role '{identity.role}' may not use this endpoint")
        return identity.role

    return dependency
