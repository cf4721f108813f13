"""Load shedding: past the in-flight limit webhooks get a fast 503 with Retry-After, health and
metrics never do, in-call callbacks have a reserve, and once the load is gone requests succeed
again. Ingress runs on uvicorn on loopback with a bus publish that blocks (a slow downstream)."""

from __future__ import annotations

import asyncio
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from ingress_testkit import (
    BASE,
    CALLBACK_KEY,
    incoming,
    ingress_client,
    recording_params,
    runtime_config,
    signed,
)
from prometheus_client import REGISTRY
from pydantic import ValidationError

from voiceticket_common.events import CallReceived, Event, RecordingCompleted
from voiceticket_common.testing import RecordingPublisher
from voiceticket_ingress.app import create_app
from voiceticket_ingress.settings import IngressSettings
from voiceticket_ingress.shedding import (
    IN_FLIGHT,
    QUEUE_TIME,
    SheddingLimits,
    WebhookAdmission,
    WebhookShedding,
)
from voiceticket_sandbox.testing import eventually


class BlockingPublisher(RecordingPublisher):
    """Publishes only while ``open`` is set: a bus that has stopped acknowledging."""

    def __init__(self) -> None:
        super().__init__()
        self.open = asyncio.Event()
        self.open.set()
        self.waiting = 0

    async def publish(self, event: Event, *, discriminator: str = "") -> None:
        self.waiting += 1
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1
        await super().publish(event, discriminator=discriminator)


@dataclass
class Ingress:
    url: str
    publisher: BlockingPublisher


@pytest.fixture
async def ingress() -> AsyncIterator[Ingress]:
    publisher = BlockingPublisher()
    settings = IngressSettings(
        public_base_url=BASE,
        callback_context_key=CALLBACK_KEY,
        webhook_max_in_flight=4,
        webhook_max_queued=4,
        webhook_queue_seconds=0.2,
        webhook_retry_after_seconds=2,
    )
    app = create_app(settings, publisher, runtime_config())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(lambda: server.started, timeout=10, interval=0.01)
    try:
        yield Ingress(f"http://127.0.0.1:{sock.getsockname()[1]}", publisher)
    finally:
        publisher.open.set()
        server.should_exit = True
        await task


def voice_call(n: int) -> tuple[dict[str, str], dict[str, str]]:
    params = incoming(CallSid=f"CA{n:032x}")
    return params, signed(f"{BASE}/twilio/voice", params)


def shed_count(route: str, reason: str) -> float:
    labels = {"route": route, "reason": reason}
    return REGISTRY.get_sample_value("voiceticket_ingress_shed_requests_total", labels) or 0.0


async def test_excess_webhooks_get_a_fast_503_health_stays_up_and_requests_recover(ingress) -> None:
    shed_before = shed_count("/twilio/voice", IN_FLIGHT) + shed_count("/twilio/voice", QUEUE_TIME)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=ingress.url, limits=limits, timeout=30) as client:
        ingress.publisher.open.clear()  # the bus stops acknowledging

        async def call(n: int) -> httpx.Response:
            params, headers = voice_call(n)
            return await client.post("/twilio/voice", data=params, headers=headers)

        flood = [asyncio.create_task(call(n)) for n in range(30)]
        try:
            await eventually(lambda: ingress.publisher.waiting >= 4, timeout=10, interval=0.01)
            await eventually(lambda: sum(t.done() for t in flood) >= 26, timeout=5, interval=0.01)
            await asyncio.sleep(0.1)
            answered, stuck = [t for t in flood if t.done()], [t for t in flood if not t.done()]

            # everything over the limit was answered while the bus was still stuck
            assert len(stuck) == 4 and len(answered) == 26
            for response in (t.result() for t in answered):
                assert response.status_code == 503
                assert response.headers["retry-after"] == "2"
            assert (
                shed_count("/twilio/voice", IN_FLIGHT) + shed_count("/twilio/voice", QUEUE_TIME)
                == shed_before + 26
            )
            for probe in ("/healthz", "/readyz", "/metrics"):
                assert (await client.get(probe)).status_code == 200, f"{probe} is never shed"
            metrics = (await client.get("/metrics")).text
            assert (
                'voiceticket_ingress_shed_requests_total{reason="in_flight",route="/twilio/voice"}' in metrics
            )

        finally:
            ingress.publisher.open.set()  # the overload ends
            await asyncio.gather(*flood, return_exceptions=True)
        assert [(await t).status_code for t in stuck] == [200] * 4
        for n in range(100, 120):
            response = await call(n)
            assert response.status_code == 200, "after the overload, webhooks are handled again"
        assert len([e for e in ingress.publisher.published if isinstance(e, CallReceived)]) == 24


async def test_a_webhook_over_the_limit_waits_for_a_slot_within_the_queue_budget(ingress) -> None:
    async with httpx.AsyncClient(base_url=ingress.url, timeout=30) as client:
        ingress.publisher.open.clear()

        async def call(n: int) -> httpx.Response:
            params, headers = voice_call(n)
            return await client.post("/twilio/voice", data=params, headers=headers)

        first = [asyncio.create_task(call(n)) for n in range(4)]
        await eventually(lambda: ingress.publisher.waiting == 4, timeout=10, interval=0.01)
        queued = asyncio.create_task(call(4))
        await asyncio.sleep(0.05)
        ingress.publisher.open.set()  # slots free up within the 0.2 s budget: the queued one gets one
        assert (await queued).status_code == 200
        assert [(await t).status_code for t in first] == [200] * 4


async def test_in_call_callbacks_are_never_shed() -> None:
    """A recording callback carries a recorded message, and Twilio does not retry a 503 unless
    the URL's overrides say so: past the limit it is still handled (before, it was shed once an
    in-call reserve was taken)."""
    publisher = BlockingPublisher()
    limits = {"webhook_max_in_flight": 1, "webhook_queue_seconds": 0}
    async with ingress_client(publisher, **limits) as client:
        params, headers = voice_call(1)
        answer = await client.post("/twilio/voice", data=params, headers=headers)
        recording_url = _recording_callback(answer.text)
        publisher.open.clear()
        blocked_call = asyncio.create_task(client.post("/twilio/voice", data=params, headers=headers))
        try:
            await eventually(lambda: publisher.waiting == 1, timeout=10, interval=0.01)
            params2, headers2 = voice_call(2)
            refused = await asyncio.wait_for(client.post("/twilio/voice", data=params2, headers=headers2), 5)
            assert refused.status_code == 503
            recording = recording_params()
            callback = asyncio.create_task(
                client.post(recording_url, data=recording, headers=signed(recording_url, recording))
            )
            await eventually(lambda: publisher.waiting == 2, timeout=10, interval=0.01)  # admitted
        finally:
            publisher.open.set()
        assert (await callback).status_code == 204
        assert (await blocked_call).status_code == 200
        assert any(isinstance(e, RecordingCompleted) for e in publisher.published)


def _recording_callback(twiml: str) -> str:
    record = ET.fromstring(twiml).find("Record")
    assert record is not None
    return str(record.get("recordingStatusCallback"))


def admission(**overrides: Any) -> WebhookAdmission:
    limits: dict[str, Any] = {
        "max_in_flight": 1,
        "max_queued": 2,
        "queue_seconds": 5.0,
        "retry_after_seconds": 1,
        **overrides,
    }
    return WebhookAdmission(SheddingLimits(**limits))


async def test_freed_slots_go_to_waiters_first_in_first_out() -> None:
    gate = admission(max_in_flight=2)
    for _ in range(2):
        assert await gate.enter(in_call=False) is None
    order: list[int] = []

    async def wait(n: int) -> None:
        assert await gate.enter(in_call=False) is None
        order.append(n)

    waiters = []
    for n in range(2):
        waiters.append(asyncio.create_task(wait(n)))
        await asyncio.sleep(0.01)
    assert await gate.enter(in_call=False) == IN_FLIGHT, "the queue is full"
    gate.leave()
    gate.leave()
    await asyncio.gather(*waiters)
    assert order == [0, 1] and gate.in_flight == 2
    gate.leave()
    gate.leave()
    assert gate.in_flight == 0


async def test_a_waiter_past_the_queue_budget_is_shed_and_a_cancelled_one_passes_its_slot_on() -> None:
    gate = admission(max_in_flight=2, queue_seconds=0.05)
    await gate.enter(in_call=False)
    await gate.enter(in_call=False)
    assert await gate.enter(in_call=False) == QUEUE_TIME

    gate = admission(max_in_flight=1, queue_seconds=5.0)
    await gate.enter(in_call=False)
    leaving = asyncio.create_task(gate.enter(in_call=False))
    await asyncio.sleep(0.01)
    gate.leave()  # the slot is handed to the waiter...
    leaving.cancel()  # ...whose request is gone before it runs
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert gate.in_flight == 0, "the slot was passed on, not lost"
    assert await gate.enter(in_call=False) is None


def test_limits_must_be_sensible() -> None:
    with pytest.raises(ValidationError):
        IngressSettings(callback_context_key=CALLBACK_KEY, webhook_max_in_flight=0)
    with pytest.raises(ValidationError):
        IngressSettings(callback_context_key=CALLBACK_KEY, webhook_queue_seconds=-1)


async def test_a_late_running_loop_sheds_new_work_but_not_in_call_callbacks() -> None:
    gate = admission(max_in_flight=8, queue_seconds=0.1)
    watching = asyncio.create_task(gate.watch_loop(interval=0.01))
    try:
        await asyncio.sleep(0.05)
        assert gate.loop_lag < 0.1
        time.sleep(0.3)  # noqa: ASYNC251 - the point: the loop is busy and requests wait unread
        await eventually(lambda: gate.loop_lag > 0.1, timeout=1, interval=0.001)
        gate.loop_lag = 0.3  # as measured, held for the decisions below
        assert await gate.enter(in_call=False) == QUEUE_TIME
        assert await gate.enter(in_call=True) is None, "in-call callbacks still get their slots"
        gate.leave()
        await eventually(lambda: gate.loop_lag < 0.1, timeout=2, interval=0.01)  # the loop caught up
        assert await gate.enter(in_call=False) is None
    finally:
        watching.cancel()


async def test_in_call_callbacks_are_admitted_however_many_are_in_flight() -> None:
    gate = admission(max_in_flight=1, max_queued=0, queue_seconds=0)
    assert await gate.enter(in_call=False) is None  # a new call holds the one slot
    assert await gate.enter(in_call=False) == IN_FLIGHT  # the next new call is shed
    assert [await gate.enter(in_call=True) for _ in range(50)] == [None] * 50
    assert gate.in_flight == 51
    for _ in range(51):
        gate.leave()
    assert gate.in_flight == 0 and await gate.enter(in_call=False) is None


@pytest.mark.parametrize("path", ["/twilio/menu", "/twilio/sms", "/twilio/recording", "/twilio/consent"])
async def test_a_callers_menu_choice_and_text_message_are_never_shed(path: str) -> None:
    """A menu answer is a caller on the line (a 503 to a <Gather> action ends the call with an
    error); an inbound text is what a caller wrote, and Twilio does not retry it. Neither may be
    shed however full ingress is; a new incoming call still is."""
    gate = admission(max_in_flight=1, max_queued=0, queue_seconds=0)
    assert await gate.enter(in_call=False) is None  # a new call holds the one slot
    reached: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    shedding = WebhookShedding(app, gate)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=shedding), base_url="http://ingress"
    ) as client:
        assert (await client.post("/twilio/voice")).status_code == 503
        assert (await client.post(path)).status_code == 204
    assert reached == [path]
