"""Cached config dropped on ``config.changed``: the client's invalidation API (numbers, a tenant's
lines, everything; remembered unknown numbers; fetches in flight), what each kind of change
drops, and the follower on the embedded bus (no group: every follower sees every change)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from pydantic import SecretStr

from voiceticket_common.bus import envelope as wire
from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.bus.port import FollowHandler
from voiceticket_common.config_changes import ConfigChangeFollower, drop_changed, invalidating
from voiceticket_common.config_client import RuntimeConfigClient, UnknownLine
from voiceticket_common.events import ConfigChanged, ConfigChangeKind, Event
from voiceticket_common.events.asyncapi import document_path
from voiceticket_common.runtime_views import IngressView
from voiceticket_sandbox.testing import eventually

NUMBER = "+15005550006"
SECOND = "+15005550007"
ELSEWHERE = "+15005550009"
TENANT_OF = {NUMBER: "acme", SECOND: "acme", ELSEWHERE: "globex"}


class ConfigApi:
    """``GET /v1/runtime/lines/{number}``: the greeting in ``greetings`` (404 without one);
    while ``gate`` is clear, answers wait for it. Counts the fetches per number."""

    def __init__(self) -> None:
        self.greetings: dict[str, str] = {NUMBER: "v1", SECOND: "v1", ELSEWHERE: "v1"}
        self.fetches: dict[str, int] = {}
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        number = request.url.path.rsplit("/", 1)[-1]
        self.fetches[number] = self.fetches.get(number, 0) + 1
        greeting = self.greetings.get(number)  # read before waiting: the answer as it was then
        await self.gate.wait()
        if greeting is None:
            return httpx.Response(404, json={"detail": "unknown line"})
        line = {"number": number, "greeting": greeting}
        return httpx.Response(200, json={"tenant_id": TENANT_OF[number], "line": line, "tenant": {}})


def client(api: ConfigApi) -> RuntimeConfigClient[IngressView]:
    # Cached for five minutes: only an invalidation explains a new value within the test.
    return RuntimeConfigClient(
        IngressView,
        "http://config-api",
        SecretStr("token"),
        cache_seconds=300,
        client=httpx.AsyncClient(transport=httpx.MockTransport(api)),
    )


async def greeting(config: RuntimeConfigClient[IngressView], number: str = NUMBER) -> str | None:
    return (await config.line(number)).line.greeting


def change(kind: ConfigChangeKind, tenant_id: str, numbers: Sequence[str], version: int = 1) -> ConfigChanged:
    return ConfigChanged.of(tenant_id, kind, numbers, version)


async def test_invalidating_a_number_makes_the_next_lookup_fetch_it() -> None:
    api = ConfigApi()
    config = client(api)
    assert await greeting(config) == "v1"
    api.greetings[NUMBER] = "v2"
    assert await greeting(config) == "v1"  # cached
    assert config.invalidate([NUMBER]) == 1
    assert await greeting(config) == "v2"
    assert api.fetches[NUMBER] == 2
    await config.aclose()


async def test_invalidating_a_tenant_drops_its_lines_only() -> None:
    api = ConfigApi()
    config = client(api)
    for number in (NUMBER, SECOND, ELSEWHERE):
        await greeting(config, number)
    assert config.invalidate(tenant_id="acme") == 2
    for number in (NUMBER, SECOND, ELSEWHERE):
        await greeting(config, number)
    assert api.fetches == {NUMBER: 2, SECOND: 2, ELSEWHERE: 1}
    assert config.invalidate_all() == 3
    await greeting(config, ELSEWHERE)
    assert api.fetches[ELSEWHERE] == 2
    await config.aclose()


async def test_a_line_created_for_a_remembered_unknown_number_is_seen_at_once() -> None:
    api = ConfigApi()
    del api.greetings[NUMBER]
    config = client(api)
    try:
        await greeting(config)
        raise AssertionError("the number is no line yet")
    except UnknownLine:
        pass
    api.greetings[NUMBER] = "new line"
    config.invalidate([NUMBER])
    assert await greeting(config) == "new line"  # not the remembered 404 (unknown_line_seconds)
    await config.aclose()


async def test_a_fetch_answered_before_a_change_is_not_kept() -> None:
    """A lookup in flight when the change arrives may bring the old view back: its caller gets
    it, but the cache does not keep it, and the next lookup fetches again."""
    api = ConfigApi()
    config = client(api)
    api.gate.clear()
    in_flight = asyncio.create_task(greeting(config))
    await eventually(lambda: api.fetches.get(NUMBER) == 1, timeout=5, interval=0.01)
    api.greetings[NUMBER] = "v2"
    config.invalidate([NUMBER])
    api.gate.set()
    assert await in_flight == "v1"
    assert await greeting(config) == "v2"
    assert api.fetches[NUMBER] == 2
    await config.aclose()


class Dropped:
    """A cache that records what it was told to drop."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []
        self.everything = 0

    def invalidate(self, numbers: Any = (), *, tenant_id: str | None = None) -> int:
        self.calls.append((sorted(numbers), tenant_id))
        return 0

    def invalidate_all(self) -> int:
        self.everything += 1
        return 0


def test_a_line_change_drops_the_line_and_a_tenant_change_all_its_lines() -> None:
    cache = Dropped()
    drop_changed(cache, change(ConfigChangeKind.LINE, "acme", [NUMBER]))
    assert cache.calls == [([NUMBER], None)]
    for kind in (ConfigChangeKind.TENANT, ConfigChangeKind.CREDENTIAL, ConfigChangeKind.TENANT_REMOVED):
        drop_changed(cache, change(kind, "acme", [NUMBER, SECOND]))
        assert cache.calls[-1] == ([NUMBER, SECOND], "acme")


async def test_every_follower_on_the_embedded_bus_drops_the_changed_line(tmp_path: Path) -> None:
    """Two replicas' caches (two followers, no group between them): both drop the line."""
    bus = EmbeddedEventBus(tmp_path / "bus.db", source="test", poll_interval=30)
    await bus.start()
    api = ConfigApi()
    replicas = [client(api), client(api)]
    try:
        for config in replicas:
            assert await greeting(config) == "v1"
        async with (
            invalidating(bus, replicas[0], "ingress") as first,
            invalidating(bus, replicas[1], "notifier"),
        ):
            assert first is not None
            await asyncio.sleep(0.1)  # both followers reading
            api.greetings[NUMBER] = "v2"
            loop = asyncio.get_running_loop()
            started = loop.time()
            await bus.publish(change(ConfigChangeKind.LINE, "acme", [NUMBER], version=4))
            for config in replicas:
                await eventually(lambda c=config: NUMBER not in c._cache, timeout=1, interval=0.005)
            assert loop.time() - started < 1  # woken by the write, not by the 30 s poll
            assert [await greeting(config) for config in replicas] == ["v2", "v2"]
            assert (first.seen, first.latest_version) == (1, 4)
    finally:
        for config in replicas:
            await config.aclose()
        await bus.stop()


async def test_a_follower_sees_a_change_published_just_before_it_started(tmp_path: Path) -> None:
    bus = EmbeddedEventBus(tmp_path / "bus.db", source="test", poll_interval=0.05)
    await bus.start()
    cache = Dropped()
    try:
        await bus.publish(change(ConfigChangeKind.LINE, "acme", [NUMBER]))
        async with invalidating(bus, cache, "analyzer"):
            await eventually(lambda: cache.calls, timeout=2, interval=0.01)
        assert cache.calls == [([NUMBER], None)]
    finally:
        await bus.stop()


async def test_an_unreadable_record_is_skipped_and_the_next_change_still_drops(tmp_path: Path) -> None:
    bus = EmbeddedEventBus(tmp_path / "bus.db", source="test", poll_interval=0.05)
    await bus.start()
    cache = Dropped()
    try:
        async with invalidating(bus, cache, "jira-writer"):
            await asyncio.sleep(0.1)
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_type", ConfigChanged.ce_type().encode()),
                ("content-type", b"application/json"),
            ]
            await bus._write([(ConfigChanged.topic(), b"acme", b'{"kind": "nonsense"}', headers)])
            await bus.publish(change(ConfigChangeKind.LINE, "acme", [SECOND], version=2))
            await eventually(lambda: cache.calls, timeout=2, interval=0.01)
        assert cache.calls == [([SECOND], None)]
    finally:
        await bus.stop()


class FlakyFollower:
    """A bus whose first follow fails (the broker away), the second one delivers ``event``."""

    def __init__(self, event: Event) -> None:
        self.event = event
        self.follows = 0

    async def follow(self, event_types: Sequence[type[Event]], handler: FollowHandler) -> None:
        self.follows += 1
        if self.follows == 1:
            raise ConnectionError("broker unreachable")
        await handler(self.event)
        await asyncio.Event().wait()


async def test_a_failed_follower_follows_again_and_drops_everything_first() -> None:
    bus = FlakyFollower(change(ConfigChangeKind.TENANT, "acme", [NUMBER]))
    cache = Dropped()
    async with invalidating(bus, cache, "transcriber") as follower:
        assert isinstance(follower, ConfigChangeFollower)
        await eventually(lambda: cache.calls, timeout=5, interval=0.01)
    assert bus.follows == 2
    assert cache.everything == 1  # changes may have gone by while it was down
    assert cache.calls == [([NUMBER], "acme")]


async def test_a_bus_that_cannot_be_followed_leaves_the_cache_to_expire() -> None:
    class Publisher:
        async def publish(self, event: Event, *, discriminator: str = "") -> None: ...

    async with invalidating(Publisher(), Dropped(), "ingress") as follower:
        assert follower is None


def test_a_config_changed_record_matches_its_message() -> None:
    """Key and ce_subject are the tenant (no CallSid); the payload has no call_sid."""
    event = change(ConfigChangeKind.LINE, "acme", [NUMBER], version=9)
    key, value, headers = wire.encode(wire.envelope_for(event, "config-api"))
    assert key == b"acme" and wire.header_map(headers)["ce_subject"] == "acme"
    assert "call_sid" not in json.loads(value)
    assert wire.decode(value, headers).event == event
    committed = json.loads(document_path().read_text())
    message = f"#/components/messages/{event.schema_name()}"
    for instance, where in (
        (wire.header_map(headers), "headers"),
        (json.loads(value), "payload"),
        (key.decode(), "bindings/kafka/key"),
    ):
        root = {"components": committed["components"], "$ref": f"{message}/{where}"}
        jsonschema.Draft202012Validator(root).validate(instance)
