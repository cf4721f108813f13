"""Bearer-token authentication: one admin token, per-role service tokens."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

ADMIN = "admin"

_bearer = HTTPBearer(auto_error=False, description="admin token or a per-service token")


@dataclass(frozen=True)
class TokenTable:
    entries: tuple[tuple[str, bytes], ...]  # (role, token)

    def role_for(self, presented: str) -> str | None:
        candidate = presented.encode()
        found = None
        for role, token in self.entries:  # no early exit: time depends only on the table size
            if hmac.compare_digest(candidate, token):
                found = role
        return found


def app_tokens(request: Request) -> TokenTable:
    tokens: TokenTable = request.app.state.tokens
    return tokens


def _unauthorized() -> HTTPException:
    return HTTPException(401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"})


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def require_role(*allowed: str) -> Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[str]]:
    async def dependency(request: Request, creds: Credentials) -> str:
        if creds is None or creds.scheme.lower() != "bearer":
            raise _unauthorized()
        role = app_tokens(request).role_for(creds.credentials)
        if role is None:
            raise _unauthorized()
        if role not in allowed:
            raise HTTPException(403, f"role '{role}' may not use this endpoint")
        return role

    return dependency
