"""Fixtures for the sandbox tests: specs loaded once, sandboxes served over real HTTP per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from voiceticket_sandbox.testing import Sandbox, sandbox, specs  # noqa: F401 - fixtures


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client
