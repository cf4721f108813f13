"""Pytest fixtures for tests that talk to the sandboxes over real HTTP (import them in a conftest)."""

from __future__ import annotations

import asyncio
import base64
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

    def recording_url(self, recording_sid: str) -> str:
        """The account's media URL of a recording, without extension."""
        return f"{self.urls.twilio}/2010-04-01/Accounts/{self.account_sid}/Recordings/{recording_sid}"

    async def register_recording(self, recording_sid: str, audio: bytes, **fields: object) -> dict[str, Any]:
        """Give the Twilio stand-in a recording of the account; ``fields``: content_type, transcript,
        call_sid, duration. The stand-in's answer."""
        body = {
            "account_sid": self.account_sid,
            "recording_sid": recording_sid,
            "audio_base64": base64.b64encode(audio).decode(),
            **fields,
        }
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{self.urls.twilio}/_sandbox/recordings", json=body)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


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


# Service desks for ``POST /_sandbox/servicedesks`` of the Jira stand-in.

PRIORITY_OPTIONS = tuple(
    (str(i), label) for i, label in enumerate(("Highest", "High", "Medium", "Low", "Lowest"), 1)
)
"""(value, label) of the five standard priorities, for ``jsm_options``."""


def jsm_desk(
    desk_id: str, project_key: str, *request_types: dict[str, Any], **attributes: Any
) -> dict[str, Any]:
    """A service desk with its request types; ``attributes``: ``customers`` (JSM ``UserDTO`` objects)."""
    return {"id": desk_id, "project_key": project_key, "request_types": list(request_types), **attributes}


def jsm_request_type(type_id: str, name: str, *fields: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    """A request type, with its fields if any; ``attributes``: ``can_raise_on_behalf_of``."""
    request_type: dict[str, Any] = {"id": type_id, "name": name, **attributes}
    if fields:
        request_type["fields"] = list(fields)
    return request_type


def jsm_field(field_id: str, name: str, **attributes: Any) -> dict[str, Any]:
    """A request type field; ``attributes`` as JSM spells them (``required``, ``validValues``, ``jiraSchema``)."""
    return {"fieldId": field_id, "name": name, **attributes}


def jsm_options(*labels: tuple[str, str], **attributes: Any) -> list[dict[str, Any]]:
    """A field's values from (value, label) pairs, each with ``attributes`` (e.g. ``children``)."""
    return [{"value": value, "label": label, **attributes} for value, label in labels]


def strict_object(**properties: object) -> dict[str, object]:
    """A JSON-schema object as strict structured outputs want it: every property required, no others."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


class InFlight:
    """ASGI middleware in front of a stand-in: holds each provider request ``delay`` seconds and
    counts the requests received and not yet answered (the answer's start ends one)."""

    def __init__(self, app: Any, delay: float) -> None:
        self.app, self.delay = app, delay
        self.now = self.peak = self.total = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox/"):
            await self.app(scope, receive, send)
            return
        self.now += 1
        self.total += 1
        self.peak = max(self.peak, self.now)
        answered = False

        async def answer(message: Any) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                self.now -= 1
            await send(message)

        try:
            await asyncio.sleep(self.delay)
            await self.app(scope, receive, answer)
        finally:
            if not answered:
                self.now -= 1
