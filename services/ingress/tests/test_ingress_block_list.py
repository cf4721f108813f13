"""Screening a blocked caller at ingress (issue #16.5): asked of config-api only for tenants with a
block list, cached, and failing open; the reason follows the line's ``screening_action``."""

from __future__ import annotations

import asyncio
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from ingress_testkit import (
    ACCOUNT,
    BASE,
    CALLBACK_KEY,
    LINE_FIELDS,
    TOKEN,
    incoming,
    recording_params,
    signed,
)
from prometheus_client import REGISTRY
from pydantic import SecretStr

from voiceticket_common.events import CallReceived, CallScreened, RecordingCompleted
from voiceticket_common.runtime_views import IngressView
from voiceticket_common.testing import CALLER, LINE, RecordingPublisher, StaticRuntimeConfig
from voiceticket_ingress.app import create_app
from voiceticket_ingress.block_list import RETRY_BACKOFF_SECONDS, BlockList, ConfigApiBlockList
from voiceticket_ingress.settings import IngressSettings

DIGITS = CALLER.removeprefix("+")
SPAM = json.dumps({"status": "successful", "results": {"nomorobo_spamscore": {
    "status": "successful", "result": {"status": "success", "score": 1}}}})  # fmt: skip


class FakeBlockList:
    """Blocks the numbers it is given; records what it was asked."""

    def __init__(self, *blocked: str) -> None:
        self.blocked = set(blocked)
        self.asked: list[tuple[str, str]] = []

    async def blocks(self, tenant_id: str, caller_number: str) -> bool:
        self.asked.append((tenant_id, caller_number))
        return caller_number in self.blocked

    async def aclose(self) -> None:
        pass


def config(blocks_callers: bool = True, **line: Any) -> StaticRuntimeConfig[IngressView]:
    tenant = {"twilio_account_sid": ACCOUNT, "twilio_auth_token": TOKEN, "blocks_callers": blocks_callers}
    return StaticRuntimeConfig.of(IngressView, {LINE: ("acme", {**LINE_FIELDS, **line}, tenant)})


@asynccontextmanager
async def client_of(
    publisher: RecordingPublisher, runtime: StaticRuntimeConfig[IngressView], block_list: BlockList
) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngressSettings(public_base_url=BASE, callback_context_key=CALLBACK_KEY)
    app = create_app(settings, publisher=publisher, config=runtime, block_list=block_list)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000), raise_app_exceptions=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield client


async def call(
    runtime: StaticRuntimeConfig[IngressView], block_list: BlockList, **params: str
) -> tuple[list[Any], ET.Element]:
    """One incoming call, and its recording callback when it was answered with ``<Record>``."""
    publisher = RecordingPublisher()
    async with client_of(publisher, runtime, block_list) as client:
        url = f"{BASE}/twilio/voice"
        form = incoming(**params)
        response = await client.post(url, data=form, headers=signed(url, form))
        assert response.status_code == 200, response.text
        root = ET.fromstring(response.text)
        record = root.find("Record")
        if record is not None:
            callback = record.get("recordingStatusCallback") or ""
            done = await client.post(
                callback, data=recording_params(), headers=signed(callback, recording_params())
            )
            assert done.status_code == 204
    return publisher.published, root


def screened_count(action: str) -> float:
    labels = {"reason": "blocked_caller", "action": action, "tenant": "acme"}
    return REGISTRY.get_sample_value("voiceticket_calls_screened_total", labels) or 0.0


async def test_a_blocked_caller_on_a_no_request_line_is_rejected_and_the_call_screened() -> None:
    blocks = FakeBlockList(CALLER)
    counted = screened_count("no_request")
    published, root = await call(config(screening_action="no_request"), blocks)
    assert screened_count("no_request") == counted + 1, "counted once, with its reason"
    assert root.find("Reject") is not None and root.find("Record") is None and root.find("Say") is None
    received, screened = published
    assert isinstance(received, CallReceived) and received.screened == "blocked_caller"
    assert isinstance(screened, CallScreened)
    assert (screened.reason, screened.by, screened.call_sid) == (
        "blocked_caller",
        "ingress",
        received.call_sid,
    )
    assert blocks.asked == [("acme", CALLER)]


@pytest.mark.parametrize("action", ["screened_request", "request"])
async def test_a_blocked_caller_on_a_line_that_still_records_is_marked_through_the_callback(
    action: str,
) -> None:
    published, root = await call(config(screening_action=action), FakeBlockList(CALLER))
    assert root.find("Record") is not None
    received, completed = published
    assert isinstance(received, CallReceived) and isinstance(completed, RecordingCompleted)
    assert received.screened == completed.screened == "blocked_caller"


async def test_the_block_list_wins_over_a_spam_score() -> None:
    published, _ = await call(
        config(screening_action="no_request", screen_robocalls=True), FakeBlockList(CALLER), AddOns=SPAM
    )
    assert [e.reason for e in published if isinstance(e, CallScreened)] == ["blocked_caller"]


async def test_an_unblocked_caller_of_a_tenant_with_a_list_is_answered_as_any_other() -> None:
    blocks = FakeBlockList("+14155550999")
    published, root = await call(config(screening_action="no_request"), blocks)
    assert root.find("Record") is not None and [e.screened for e in published] == [None, None]
    assert blocks.asked == [("acme", CALLER)]


async def test_a_tenant_without_a_list_costs_no_lookup() -> None:
    blocks = FakeBlockList(CALLER)
    published, root = await call(config(blocks_callers=False, screening_action="no_request"), blocks)
    assert root.find("Record") is not None and blocks.asked == []
    assert [e.screened for e in published] == [None, None]


@pytest.mark.parametrize("caller", ["anonymous", "client:alice", "sip:alice@example.com"])
async def test_a_caller_without_a_number_is_on_no_list(caller: str) -> None:
    blocks = FakeBlockList(caller)
    published, _ = await call(config(screening_action="no_request"), blocks, From=caller)
    assert blocks.asked == [] and not any(isinstance(e, CallScreened) for e in published)


# --- the config-api client --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_for(handler: Any, clock: Clock | None = None) -> ConfigApiBlockList:
    return ConfigApiBlockList(
        "http://config-api",
        SecretStr("ingress-token"),
        CALLBACK_KEY,
        cache_seconds=30.0,
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        clock=clock or Clock(),
    )


async def test_the_number_goes_in_the_body_and_the_answer_is_cached_per_tenant_until_a_change() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        return httpx.Response(200, json={"blocked": body["caller_number"] == CALLER})

    clock = Clock()
    blocks = client_for(handler, clock)
    try:
        assert await blocks.blocks("acme", CALLER) and await blocks.blocks("acme", CALLER)
        assert not await blocks.blocks("acme", "+14155550999")
        assert len(seen) == 2, "the second lookup of a caller is answered from the cache"
        first = seen[0]
        assert first.method == "POST" and first.url.path == "/v1/runtime/blocked-callers/check"
        assert DIGITS not in str(first.url) and first.headers["authorization"] == "Bearer ingress-token"
        assert json.loads(first.content) == {"tenant_id": "acme", "caller_number": CALLER}
        assert all(DIGITS not in "".join(key) for key in blocks._cache), "the cache holds a keyed hash"

        assert blocks.invalidate([LINE]) == 0  # a line's change names no caller
        assert blocks.invalidate(tenant_id="globex") == 0
        assert await blocks.blocks("acme", CALLER) and len(seen) == 2
        assert blocks.invalidate(tenant_id="acme") == 2
        assert await blocks.blocks("acme", CALLER) and len(seen) == 3
        clock.now += 31  # expired
        assert await blocks.blocks("acme", CALLER) and len(seen) == 4
    finally:
        await blocks.aclose()


async def test_concurrent_lookups_of_one_caller_share_one_request() -> None:
    seen: list[httpx.Request] = []
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        await release.wait()
        return httpx.Response(200, json={"blocked": True})

    blocks = client_for(handler)
    try:
        waiting = [asyncio.create_task(blocks.blocks("acme", CALLER)) for _ in range(20)]
        await asyncio.sleep(0.05)
        release.set()
        assert await asyncio.gather(*waiting) == [True] * 20 and len(seen) == 1
    finally:
        await blocks.aclose()


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.Response(500, json={"detail": "boom"}),
        httpx.Response(404, json={"detail": "Not Found"}),  # a config-api from before the block list
        httpx.Response(200, text="not json"),
    ],
)
async def test_an_unanswered_lookup_fails_open_backs_off_and_logs_no_number(
    failure: Exception | httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if isinstance(failure, Exception):
            raise failure
        return failure

    caplog.set_level(logging.INFO)
    clock = Clock()
    blocks = client_for(handler, clock)
    try:
        assert await blocks.blocks("acme", CALLER) is False
        assert await blocks.blocks("acme", CALLER) is False and calls == 1, "backing off, not asking again"
        clock.now += RETRY_BACKOFF_SECONDS + 0.1
        assert await blocks.blocks("acme", CALLER) is False and calls == 2, "not cached: asked again"
    finally:
        await blocks.aclose()
    warnings = [r for r in caplog.records if r.name == "voiceticket_ingress.block_list"]
    assert warnings and all(r.levelno == logging.WARNING for r in warnings)
    assert all(DIGITS not in json.dumps(r.__dict__, default=str) for r in caplog.records)


async def test_a_call_is_taken_when_config_api_cannot_say_whether_the_caller_is_blocked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("config-api is down")

    caplog.set_level(logging.INFO)
    blocks = client_for(unreachable)
    published, root = await call(config(screening_action="no_request"), blocks)
    assert root.find("Record") is not None and root.find("Reject") is None
    assert [type(e) for e in published] == [CallReceived, RecordingCompleted]
    assert all(e.screened is None for e in published)
    assert any("block list unavailable" in r.getMessage() for r in caplog.records)
    assert all(DIGITS not in json.dumps(r.__dict__, default=str) for r in caplog.records)
