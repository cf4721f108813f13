"""The embedded runtime on the demo tenant against the spec-validating sandboxes, for the depth tests."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
from voiceticket_sandbox import SandboxUrls, run_sandboxes
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, configure_sandboxes, seed
from voiceticket_sandbox.testing import eventually, invalid_provider_requests


@dataclass
class SandboxedRuntime:
    urls: SandboxUrls
    runtime: EmbeddedRuntime
    data_dir: Path
    http: httpx.AsyncClient

    def caller(self, **kwargs: Any) -> CallerSimulator:
        return CallerSimulator(self.runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, self.urls.twilio, **kwargs)

    async def issues_of(self, call_sid: str) -> list[dict[str, Any]]:
        issues = (await self.http.get(f"{self.urls.jira}/_sandbox/issues")).json()
        return [i for i in issues if i["properties"].get("voiceticket.call", {}).get("callSid") == call_sid]


async def seeded_options(data_dir: Path, urls: SandboxUrls, config: dict[str, Any]) -> EmbeddedOptions:
    """Fresh sandboxes, ``config`` written as the seed in ``data_dir``, and the embedded options on both."""
    await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
    (data_dir / "seed.json").write_text(json.dumps(config))
    return EmbeddedOptions.against_sandboxes(data_dir, urls.twilio, data_dir / "seed.json")


R = TypeVar("R", bound=SandboxedRuntime)


@asynccontextmanager
async def sandboxed_runtime(
    kind: type[R], data_dir: Path, adapt_seed: Callable[[dict[str, Any]], None], **options: Any
) -> AsyncIterator[R]:
    """The demo tenant's seed, changed by ``adapt_seed``; on leaving, every provider request was valid."""
    async with run_sandboxes() as urls:
        await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
        config = seed(urls.twilio, urls.openai, urls.jira)
        adapt_seed(config)
        (data_dir / "seed.json").write_text(json.dumps(config))
        embedded = EmbeddedOptions.against_sandboxes(data_dir, urls.twilio, data_dir / "seed.json", **options)
        async with EmbeddedRuntime(embedded) as runtime, httpx.AsyncClient(timeout=15) as http:
            yield kind(urls, runtime, data_dir, http)
            invalid = await invalid_provider_requests(http, urls.twilio, urls.openai, urls.jira)
            assert invalid == [], "every provider request was valid per the official specs"


async def one_ticket(stack: SandboxedRuntime, call_sid: str, timeout: float = 40.0) -> dict[str, Any]:
    await eventually(lambda: stack.issues_of(call_sid), timeout)
    await asyncio.sleep(0.5)  # a duplicate would show up now
    [issue] = await stack.issues_of(call_sid)
    return issue


def new_caller() -> str:
    return "+1415555" + f"{secrets.randbelow(10_000):04d}"
