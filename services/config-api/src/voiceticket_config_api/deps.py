"""FastAPI dependencies for the per-app state created in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from .crypto import KeyRing


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


def get_keyring(request: Request) -> KeyRing:
    return request.app.state.keyring
