"""Pytest fixtures for tests that talk to the sandboxes over real HTTP (import them in a conftest)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

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
