"""FastAPI dependencies for the per-app state created in the lifespan.

``app.state`` is untyped (every attribute is ``Any``); these accessors are the one place that
says what ``create_app`` and its lifespan put there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .crypto import KeyRing


def app_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


def app_sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with app_sessions(request)() as session:
        yield session


def get_keyring(request: Request) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


Session = Annotated[AsyncSession, Depends(get_session)]
Keys = Annotated[KeyRing, Depends(get_keyring)]
