"""Pytest fixtures for tests that talk to the sandboxes over real HTTP (import them in a conftest)."""

from __future__ import annotations

import asyncio
import inspect
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio

from voiceticket_sandbox import SandboxState, SandboxUrls, preload_specs, run_sandboxes


@dataclass
class Sandbox:
    """Running sandboxes with one Twilio account and one Jira user configured."""

    urls: SandboxUrls
    state: SandboxState
    account_sid: str = "AC" + "0123456789abcdef" * 2
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    jira_email: str = "bot@example.com"
    jira_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    openai_key: str = field(default_factory=lambda: "sk-" + secrets.token_urlsafe(16))

    @property
    def twilio_auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.account_sid, self.auth_token)

    @property
    def jira_auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.jira_email, self.jira_token)

    @property
    def openai_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.openai_key}"}


@pytest.fixture(scope="module")
def specs() -> Iterator[None]:
    # The OpenAI YAML takes seconds to load; the cache is per process, this pays it once up front.
    preload_specs()
    yield


@pytest_asyncio.fixture
async def sandbox(specs: None) -> AsyncIterator[Sandbox]:
    state = SandboxState()
    async with run_sandboxes(state=state) as urls:
        sb = Sandbox(urls, state)
        async with httpx.AsyncClient() as client:
            account = {"account_sid": sb.account_sid, "auth_token": sb.auth_token}
            (await client.post(f"{urls.twilio}/_sandbox/accounts", json=account)).raise_for_status()
            user = {"email": sb.jira_email, "api_token": sb.jira_token}
            (await client.post(f"{urls.jira}/_sandbox/credentials", json=user)).raise_for_status()
        yield sb


async def eventually(check: Callable[[], Any], timeout: float = 40.0, interval: float = 0.2) -> Any:  # noqa: ASYNC109
    """Poll ``check`` (sync or async) until it returns something truthy; fail after ``timeout``."""

    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def invalid_provider_requests(http: httpx.AsyncClient, *provider_urls: str) -> list[dict[str, Any]]:
    """What the stand-ins recorded that broke the official specs (should be nothing)."""

    return [
        r
        for url in provider_urls
        for r in (await http.get(f"{url}/_sandbox/requests")).json()
        if not r["valid"]
    ]
