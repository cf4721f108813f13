"""Load shedding in front of Twilio's webhooks: past a set number in flight, a webhook waits a
moment for a slot and is then answered a fast 503 with ``Retry-After``, instead of joining a
queue that makes every request late (and, past Twilio's 15 s, every answer useless).

In-call callbacks (menu choice, consent key, recording status, record action) are never shed:
they carry work already done (a recorded message) or a caller on the line (a 503 to a
``<Gather>`` action ends the call with an error), and Twilio retries a 5xx only when the URL's
connection overrides ask for it, so a refused recording callback would lose the message. They are
few (at most a handful a call, each for a call already admitted) and count toward the webhooks in
flight. An incoming text message (``/twilio/sms``) is not shed either: Twilio does not retry it,
so a 503 would lose what the caller wrote.
``/healthz``, ``/readyz`` and ``/metrics`` are never shed: only paths under ``/twilio/`` pass
through the limiter.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from voiceticket_common import metrics

WEBHOOK_PREFIX = "/twilio/"
IN_CALL_PATHS = frozenset(
    {"/twilio/menu", "/twilio/consent", "/twilio/recording", "/twilio/record-done", "/twilio/sms"}
)
NEW_WORK_PATHS = frozenset({"/twilio/voice", "/twilio/call-status", "/twilio/message-status"})

SHED_REQUESTS = Counter(
    "voiceticket_ingress_shed_requests",
    "Webhooks answered 503 without being handled, by route and reason (in_flight: the limit and "
    "the queue were full, or queueing is off; queue_time: no slot freed up within the queue budget, or the event loop "
    "ran later than the budget).",
    ["route", "reason"],
)
WEBHOOKS_IN_FLIGHT = Gauge("voiceticket_ingress_webhooks_in_flight", "Webhooks being handled now.")

IN_FLIGHT = "in_flight"
QUEUE_TIME = "queue_time"
LOOP_PROBE_SECONDS = 0.05


@dataclass(frozen=True)
class SheddingLimits:
    max_in_flight: int
    """Webhooks handled at once; more wait for a slot, up to ``max_queued`` of them."""
    max_queued: int
    """Webhooks waiting for a slot at most; beyond, shed at once."""
    queue_seconds: float
    """The longest a webhook waits for a slot before it is shed (0: shed at once)."""
    retry_after_seconds: int


class WebhookAdmission:
    """Counts the webhooks in flight and decides, per request, to admit, queue briefly or shed.

    Slots are handed to waiters first in, first out; a slot freed while someone waits goes to
    them directly, so a new arrival never overtakes the queue.
    """

    def __init__(self, limits: SheddingLimits) -> None:
        self.limits = limits
        self.in_flight = 0
        self.loop_lag = 0.0
        """How late the event loop last ran a timer: what a request that has arrived but not been
        read yet waits on top of any slot (``watch_loop`` keeps it current)."""
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def watch_loop(self, interval: float = LOOP_PROBE_SECONDS) -> None:
        """Measure ``loop_lag`` until cancelled (run for the app's lifetime).

        A saturated loop queues requests where the slot count cannot see them (in socket
        buffers, unparsed); past the queue budget, new work is shed at once, which is cheaper
        than handling it, so the hidden queue drains.
        """
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + interval
            await asyncio.sleep(interval)
            self.loop_lag = max(0.0, loop.time() - due)

    async def enter(self, *, in_call: bool) -> str | None:
        """None once admitted (call ``leave`` after), else why the request is shed."""
        limits = self.limits
        if in_call:  # never shed, never queued behind new calls
            self._admit()
            return None
        if self.loop_lag > limits.queue_seconds > 0:
            return QUEUE_TIME
        if self.in_flight < limits.max_in_flight and not self._waiting:
            self._admit()
            return None
        if limits.queue_seconds <= 0 or len(self._waiting) >= limits.max_queued:
            return IN_FLIGHT
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(slot)
        try:
            async with asyncio.timeout(limits.queue_seconds):
                await asyncio.shield(slot)
        except TimeoutError:
            if slot.done():  # granted just as the budget ran out: take it
                return None
            return QUEUE_TIME
        except asyncio.CancelledError:
            if slot.done():
                self.leave()  # granted, but the request is gone: pass the slot on
            raise
        finally:
            if not slot.done():
                slot.cancel()
                self._waiting.remove(slot)
        return None

    def _admit(self) -> None:
        self.in_flight += 1
        WEBHOOKS_IN_FLIGHT.set(self.in_flight)

    def leave(self) -> None:
        if self._waiting and self.in_flight <= self.limits.max_in_flight:
            self._waiting.popleft().set_result(None)  # the slot moves on; in_flight stays
            return
        self.in_flight -= 1
        WEBHOOKS_IN_FLIGHT.set(self.in_flight)


class WebhookShedding:
    """ASGI middleware: the ``WebhookAdmission`` in front of every ``/twilio/`` path, outermost,
    so a shed request costs no span, no body read and no config lookup."""

    def __init__(self, app: ASGIApp, admission: WebhookAdmission) -> None:
        self._app = app
        self._admission = admission
        self._retry_after = str(admission.limits.retry_after_seconds).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(WEBHOOK_PREFIX):
            await self._app(scope, receive, send)
            return
        reason = await self._admission.enter(in_call=path in IN_CALL_PATHS)
        if reason is not None:
            await self._shed(scope, send, reason)
            return
        try:
            await self._app(scope, receive, send)
        finally:
            self._admission.leave()

    async def _shed(self, scope: Scope, send: Send, reason: str) -> None:
        path = scope["path"]
        route = path if path in IN_CALL_PATHS or path in NEW_WORK_PATHS else "unmatched"
        SHED_REQUESTS.labels(route, reason).inc()
        # Counted with the other answers too, so webhook error rates and alerts include it.
        metrics.HTTP_REQUESTS.labels(route, scope["method"], "5xx").inc()
        body = b"ingress is overloaded; retry later"
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"retry-after", self._retry_after),
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
