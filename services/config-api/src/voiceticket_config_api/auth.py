"""Bearer-token authentication: named admin tokens, per-role service tokens.

Every token maps to an ``Identity``: its role (``admin``, ``read-only`` or a service role) and its
actor, the name the audit log records. ``CONFIG_API_ADMIN_TOKEN`` is actor ``admin`` (the
bootstrap token), each of ``CONFIG_API_ADMIN_TOKENS`` (``name:token``) is actor ``name``, a
token created through ``POST /v1/admin/tokens`` (admin_tokens.py) is actor its name with its
scope as role, a service token's actor is its role; a request without a known token is
``anonymous``. A ``read-only`` token passes ``require_role(ADMIN)`` for GET and HEAD only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .admin_tokens import READ_ONLY, find_token

ADMIN = "admin"
READ_METHODS = ("GET", "HEAD")
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


async def identify_request(request: Request, presented: str) -> Identity | None:
    """The identity of a presented token: the settings' tokens (in memory), else a live token
    created through the API (admin_tokens.py, one indexed lookup)."""
    identity = app_tokens(request).identify(presented)
    if identity is not None:
        return identity
    sessions: async_sessionmaker[AsyncSession] | None = getattr(request.app.state, "sessions", None)
    if sessions is None:
        return None
    stored = await find_token(sessions, presented)
    return None if stored is None else Identity(stored.scope, stored.name)


def _unauthorized() -> HTTPException:
    return HTTPException(401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"})


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require_role(*allowed: str) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[str]]:
    async def dependency(request: Request, creds: Credentials) -> str:
        if creds is None or creds.scheme.lower() != "bearer":
            raise _unauthorized()
        identity = await identify_request(request, creds.credentials)
        if identity is None:
            raise _unauthorized()
        request.state.identity = identity
        if identity.role == READ_ONLY and ADMIN in allowed:
            if request.method in READ_METHODS:
                return identity.role
            raise HTTPException(
                403,
                f"token '{identity.actor}' is read-only: it may read the admin API but not change "
                "anything (ask for an admin-scope token)",
            )
        if identity.role not in allowed:
            raise HTTPException(403, f"role '{identity.role}' may not use this endpoint")
        return identity.role

    return dependency
