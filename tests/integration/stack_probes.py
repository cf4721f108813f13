"""What the end-to-end tests ask of a running stack, the same on the embedded runtime and on Kafka:
a call's issues in the Jira stand-in, the SMS the Twilio stand-in accepted for a number, a call on
the calls page; and the run of a check on the Kafka stack (service logs attached to a failure,
every provider request valid against its spec)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import httpx
from sandboxed_runtime import SandboxedRuntime

from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN
from voiceticket_sandbox.devstack import Stack


def of_call(issues: list[dict[str, Any]], call_sid: str) -> list[dict[str, Any]]:
    """The issues made for the call (by the CallSid on their ``voiceticket.call`` property)."""
    return [i for i in issues if i["properties"].get("voiceticket.call", {}).get("callSid") == call_sid]


@dataclass(frozen=True)
class Probes:
    http: httpx.AsyncClient
    jira: str
    twilio: str
    config_api: str
    admin_token: str

    @classmethod
    def embedded(cls, stack: SandboxedRuntime) -> Probes:
        token = stack.runtime.admin_token.get_secret_value()
        return cls(stack.http, stack.urls.jira, stack.urls.twilio, stack.runtime.config_api_url, token)

    @classmethod
    def kafka(cls, stack: Stack, http: httpx.AsyncClient) -> Probes:
        return cls(http, stack.sandbox.jira, stack.sandbox.twilio, stack.config_api_url, stack.admin_token)

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        """A request to the config-api's admin API, as the admin."""
        return await self.http.request(
            method, f"{self.config_api}{path}", json=body, headers=self.admin_headers
        )

    async def issues(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.http.get(f"{self.jira}/_sandbox/issues")).json()
        return found

    async def issues_of(self, call_sid: str) -> list[dict[str, Any]]:
        return of_call(await self.issues(), call_sid)

    async def move_issue(self, key: str, status: str, category: str) -> None:
        """An agent moves the request (``category``: Jira's status category, e.g. ``DONE``)."""
        body = {"status": status, "category": category}
        moved = await self.http.post(f"{self.jira}/_sandbox/issues/{key}/status", json=body)
        assert moved.status_code == 200, moved.text

    async def sms_to(self, number: str) -> list[dict[str, Any]]:
        """The messages the Twilio stand-in accepted for ``number``, oldest first."""
        messages = (await self.http.get(f"{self.twilio}/_sandbox/messages")).json()
        return [m for m in messages if m["to"] == number]

    async def sms_bodies(self, number: str) -> list[str]:
        return [m["body"] for m in await self.sms_to(number)]

    async def call_view(self, call_sid: str) -> dict[str, Any] | None:
        """The call on the calls page (``GET /v1/calls/{sid}``); None while it is not there."""
        response = await self.admin("GET", f"/v1/calls/{call_sid}")
        found: dict[str, Any] | None = response.json() if response.status_code == 200 else None
        return found


def kafka_caller(stack: Stack, http: httpx.AsyncClient) -> CallerSimulator:
    """The caller simulator, calling the Kafka stack's ingress as the demo tenant's Twilio account."""
    return CallerSimulator(stack.ingress_url, ACCOUNT_SID, AUTH_TOKEN, stack.sandbox.twilio, http_client=http)


def run_on_kafka(
    stack: Stack, what: str, check: Callable[[Probes, CallerSimulator], Coroutine[Any, Any, None]]
) -> None:
    """``check`` against the Kafka stack; a failed assertion comes with every service's log tail;
    afterwards every request a service made to a provider stand-in was valid per its spec."""

    async def run() -> None:
        async with httpx.AsyncClient(timeout=15) as http:
            await check(Probes.kafka(stack, http), kafka_caller(stack, http))

    started = time.monotonic()
    try:
        asyncio.run(run())
    except AssertionError:
        logs = stack.logs()
        raise AssertionError(
            f"{what} on Kafka failed after {time.monotonic() - started:.0f} s; service logs:\n"
            + "\n".join(f"--- {name}\n{text[-2500:]}" for name, text in logs.items())
        ) from None
    invalid = [r for p in ("twilio", "openai", "jira") for r in stack.requests_to(p) if not r["valid"]]
    assert invalid == [], "every provider request must satisfy the official OpenAPI spec"
