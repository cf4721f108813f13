"""The config-api client under load and outage: one fetch per number in flight, stale views while
one refresh runs, bounded staleness when config-api is down, unknown numbers remembered briefly,
deleted lines forgotten. Against a real HTTP server on loopback (a config-api stand-in)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr
from starlette.types import Receive, Scope, Send

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.config_client import RuntimeConfigClient, UnknownLine
from voiceticket_common.runtime_views import IngressView
from voiceticket_sandbox.testing import eventually

NUMBER = "+15005550006"
OTHER = "+15005550009"


def view_body(greeting: str) -> dict[str, Any]:
    return {"tenant_id": "acme", "line": {"number": NUMBER, "greeting": greeting}, "tenant": {}}


class ConfigApiStandIn:
    """``GET /v1/runtime/lines/{number}`` from ``lines``; 404 for others; ``status`` overrides the
    answer; requests wait while ``gate`` is closed (a slow config-api). Counts what it got."""

    def __init__(self) -> None:
        self.lines: dict[str, dict[str, Any]] = {NUMBER: view_body("v1")}
        self.status: int | None = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.requests: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        number = scope["path"].rsplit("/", 1)[-1]
        self.requests.append(number)
        await self.gate.wait()
        status, body = self.status or 200, b"{}"
        if self.status is None:
            if number in self.lines:
                body = json.dumps(self.lines[number]).encode()
            else:
                status = 404
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def fetches(self, number: str = NUMBER) -> int:
        return self.requests.count(number)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Running:
    stand_in: ConfigApiStandIn
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """config-api goes away: its port refuses connections."""
        self.stand_in.gate.set()
        self.server.should_exit = True
        await self.task


@pytest.fixture
async def config_api() -> AsyncIterator[Running]:
    stand_in = ConfigApiStandIn()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(stand_in, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started, timeout=10, interval=0.01)
    running = Running(stand_in, f"http://127.0.0.1:{sock.getsockname()[1]}", server, task)
    try:
        yield running
    finally:
        await running.stop()


async def settled(config: RuntimeConfigClient[IngressView]) -> None:
    """Until no fetch is in flight (a background refresh has landed or failed)."""
    await eventually(lambda: not config._inflight, timeout=10, interval=0.01)


def greeting(view: IngressView) -> str | None:
    return view.line.greeting


async def test_concurrent_lookups_of_an_expired_line_fetch_once_and_get_the_stale_view(config_api) -> None:
    """The stampede: the cached view has expired and config-api is slow. Every lookup must get
    the stale view at once, and config-api must see one refresh, not one per lookup."""
    stand_in, url = config_api.stand_in, config_api.url
    config = RuntimeConfigClient(IngressView, url, SecretStr("token"), cache_seconds=0.2)
    try:
        assert greeting(await config.line(NUMBER)) == "v1"
        stand_in.lines[NUMBER] = view_body("v2")
        await asyncio.sleep(0.3)  # past the cache time
        stand_in.gate.clear()  # config-api now answers only when the test lets it

        lookups = [asyncio.create_task(config.line(NUMBER)) for _ in range(77)]
        _, waiting = await asyncio.wait(lookups, timeout=2)
        await asyncio.sleep(0.05)  # give any further fetches a chance to arrive
        fetches = stand_in.fetches()
        stand_in.gate.set()
        await asyncio.gather(*lookups, return_exceptions=True)

        assert not waiting, f"{len(waiting)} lookups waited for config-api instead of taking the stale view"
        assert {greeting(t.result()) for t in lookups} == {"v1"}, "the stale view, served while it refreshes"
        assert fetches == 2, f"one fetch to fill the cache, one refresh, not {fetches}: no stampede"
        await eventually(lambda: _greets(config, "v2"), timeout=5, interval=0.01)
        assert stand_in.fetches() == 2
    finally:
        stand_in.gate.set()
        await config.aclose()


async def _greets(config: RuntimeConfigClient[IngressView], expected: str) -> bool:
    return greeting(await config.line(NUMBER)) == expected


async def test_concurrent_lookups_of_an_uncached_line_share_one_fetch(config_api) -> None:
    stand_in, url = config_api.stand_in, config_api.url
    config = RuntimeConfigClient(IngressView, url, SecretStr("token"))
    stand_in.gate.clear()
    lookups = asyncio.gather(*(config.line(NUMBER) for _ in range(50)))
    await eventually(lambda: stand_in.fetches() == 1, timeout=5, interval=0.01)
    stand_in.gate.set()
    views = await asyncio.wait_for(lookups, timeout=5)
    assert {greeting(v) for v in views} == {"v1"}
    assert stand_in.fetches() == 1
    await config.aclose()


async def test_a_cancelled_lookup_does_not_cancel_the_fetch_others_wait_for(config_api) -> None:
    stand_in, url = config_api.stand_in, config_api.url
    config = RuntimeConfigClient(IngressView, url, SecretStr("token"))
    stand_in.gate.clear()
    impatient = asyncio.create_task(config.line(NUMBER))
    patient = asyncio.create_task(config.line(NUMBER))
    await eventually(lambda: stand_in.fetches() == 1, timeout=5, interval=0.01)
    impatient.cancel()
    stand_in.gate.set()
    assert greeting(await asyncio.wait_for(patient, timeout=5)) == "v1"
    assert impatient.cancelled() and stand_in.fetches() == 1
    await config.aclose()


async def test_config_api_down_serves_stale_up_to_max_stale_then_fails_transient(config_api) -> None:
    url = config_api.url
    clock = Clock()
    config = RuntimeConfigClient(
        IngressView, url, SecretStr("token"), cache_seconds=30, max_stale_seconds=60, clock=clock
    )
    assert greeting(await config.line(NUMBER)) == "v1"
    await config_api.stop()

    clock.now += 45  # expired, within max-stale: the stale view, while the refresh fails behind it
    assert greeting(await config.line(NUMBER)) == "v1"
    await settled(config)  # the refresh failed
    clock.now += 10
    assert greeting(await config.line(NUMBER)) == "v1", "a failed refresh keeps the stale view"
    await settled(config)

    clock.now += 40  # 95 s old: past cache_seconds + max_stale_seconds
    with pytest.raises(TransientError, match="config-api unreachable"):
        await config.line(NUMBER)
    await config.aclose()


async def test_an_erroring_config_api_is_stale_too_and_a_recovered_one_refreshes(config_api) -> None:
    stand_in, url = config_api.stand_in, config_api.url
    clock = Clock()
    config = RuntimeConfigClient(
        IngressView, url, SecretStr("token"), cache_seconds=30, max_stale_seconds=60, clock=clock
    )
    await config.line(NUMBER)
    stand_in.status = 503
    stand_in.lines[NUMBER] = view_body("v2")
    clock.now += 31
    assert greeting(await config.line(NUMBER)) == "v1"
    await settled(config)
    assert greeting(await config.line(NUMBER)) == "v1"
    assert stand_in.fetches() == 2, "after a failed refresh, the next waits a moment (no retry storm)"
    stand_in.status = None
    clock.now += 2
    await config.line(NUMBER)  # starts the next refresh, which succeeds
    await settled(config)
    assert greeting(await config.line(NUMBER)) == "v2"
    await config.aclose()


async def test_a_slow_config_api_times_out_a_lookup_in_seconds_not_the_webhook_budget(config_api) -> None:
    stand_in, url = config_api.stand_in, config_api.url
    config = RuntimeConfigClient(IngressView, url, SecretStr("token"), timeout_seconds=0.3)
    stand_in.gate.clear()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TransientError, match="config-api unreachable"):
        await config.line(NUMBER)
    assert loop.time() - started < 3
    await config.aclose()


async def test_unknown_numbers_are_remembered_briefly(config_api) -> None:
    stand_in, url = config_api.stand_in, config_api.url
    clock = Clock()
    config = RuntimeConfigClient(IngressView, url, SecretStr("token"), unknown_line_seconds=5, clock=clock)
    outcomes = await asyncio.gather(*(config.line(OTHER) for _ in range(30)), return_exceptions=True)
    assert all(isinstance(o, UnknownLine) for o in outcomes)
    for _ in range(30):
        with pytest.raises(UnknownLine):
            await config.line(OTHER)
    assert stand_in.fetches(OTHER) == 1, "a flood to an unknown number asks config-api once"

    stand_in.lines[OTHER] = view_body("new line")  # the line is added
    clock.now += 5
    assert greeting(await config.line(OTHER)) == "new line", "known once the short memory ends"
    assert stand_in.fetches(OTHER) == 2
    await config.aclose()


async def test_a_refresh_that_answers_404_evicts_a_deleted_line(config_api) -> None:
    """A deleted tenant's line (config-api answers 404) is unknown from the first refresh past the
    cache time on: stale-while-revalidate never serves a removed line on and on."""
    stand_in, url = config_api.stand_in, config_api.url
    clock = Clock()
    config = RuntimeConfigClient(
        IngressView, url, SecretStr("token"), cache_seconds=30, max_stale_seconds=300, clock=clock
    )
    await config.line(NUMBER)
    del stand_in.lines[NUMBER]  # the tenant is deleted (its lines cascade)
    clock.now += 10
    assert greeting(await config.line(NUMBER)) == "v1", "within the cache time"
    clock.now += 21
    await config.line(NUMBER)  # the stale view while the refresh runs
    await settled(config)
    for _ in range(3):
        with pytest.raises(UnknownLine):
            await config.line(NUMBER)
    assert stand_in.fetches() == 2
    await config.aclose()


async def test_a_refused_lookup_drops_the_stale_view(config_api) -> None:
    stand_in, url = config_api.stand_in, config_api.url
    clock = Clock()
    config = RuntimeConfigClient(IngressView, url, SecretStr("token"), cache_seconds=30, clock=clock)
    await config.line(NUMBER)
    stand_in.status = 403  # our token was revoked: nothing old is served on
    clock.now += 31
    await config.line(NUMBER)
    await settled(config)
    with pytest.raises(PermanentError, match="HTTP 403"):
        await config.line(NUMBER)
    await config.aclose()


async def test_a_failing_config_api_is_asked_once_a_second_not_per_lookup(config_api) -> None:
    stand_in, url = config_api.stand_in, config_api.url
    clock = Clock()
    config = RuntimeConfigClient(IngressView, url, SecretStr("token"), clock=clock)
    stand_in.status = 503
    for _ in range(20):  # a flood of calls while config-api fails and nothing is cached
        with pytest.raises(TransientError):
            await config.line(NUMBER)
    assert stand_in.fetches() == 1, "lookups right after a failed one fail at once"
    stand_in.status = None
    clock.now += 1
    assert greeting(await config.line(NUMBER)) == "v1"
    assert stand_in.fetches() == 2
    await config.aclose()
