"""The probes on a real broker: a consumer process's ``/readyz`` follows the broker (503 while it
is stopped, 200 once it is back) and its ``/healthz`` turns 503 once its handler has held a record
past the (shortened) stall threshold, while an idle consumer stays alive."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from voiceticket_common.bus.kafka import KafkaEventBus
from voiceticket_common.testing import ticket_created
from voiceticket_sandbox.kafka_broker import LocalKafkaBroker
from voiceticket_sandbox.processes import free_port

STALL_SECONDS = 3.0


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass


@pytest.fixture
def config_api() -> Iterator[str]:
    """config-api as far as the probes see it: ``/healthz`` answers 200."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def eventually(
    url: str, accept: Callable[[httpx.Response], bool], within: float, what: str
) -> httpx.Response:
    deadline = time.monotonic() + within
    last: httpx.Response | str = "no answer"
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            try:
                last = await client.get(url)
                if accept(last):
                    return last
            except httpx.TransportError as exc:
                last = repr(exc)
            await asyncio.sleep(0.25)
    shown = last if isinstance(last, str) else f"{last.status_code} {last.text}"
    raise AssertionError(f"{what} not within {within:g} s; last answer: {shown}")


def spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The consumer as its own process, its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("probe_consumer.py"))],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def status(code: int) -> Callable[[httpx.Response], bool]:
    return lambda response: response.status_code == code


async def test_readiness_follows_the_broker_and_liveness_catches_a_stuck_handler(
    tmp_path: Path, config_api: str
) -> None:
    broker = LocalKafkaBroker(port=free_port(), controller_port=free_port(), data_dir=tmp_path / "kafka")
    await asyncio.to_thread(broker.start, 150)
    namespace = f"probes-{uuid.uuid4().hex[:8]}"
    health = free_port()
    env = {
        **os.environ,
        "VOICETICKET_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "VOICETICKET_KAFKA_TOPIC_NAMESPACE": namespace,
        "VOICETICKET_KAFKA_PARTITIONS": "1",
        "VOICETICKET_CONFIG_API_URL": config_api,
        "VOICETICKET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'probe.db'}",
        "VOICETICKET_HEALTH_PORT": str(health),
        "VOICETICKET_LIVENESS_STALL_SECONDS": str(STALL_SECONDS),
        "VOICETICKET_HEALTH_CACHE_SECONDS": "0.5",
        "VOICETICKET_DRAIN_SECONDS": "0",
    }
    log = tmp_path / "probe-consumer.log"
    proc = spawn(env, log)
    ready, alive = f"http://127.0.0.1:{health}/readyz", f"http://127.0.0.1:{health}/healthz"
    try:
        answer = await eventually(ready, status(200), 60, "ready at start")
        checks = answer.json()["checks"]
        assert set(checks) == {"broker", "config-api", "database", "consumer"}
        assert all(c["ok"] for c in checks.values()), checks

        await asyncio.sleep(STALL_SECONDS + 1)
        idle = await eventually(alive, lambda r: True, 5, "a liveness answer")
        assert idle.status_code == 200, f"an idle consumer is alive: {idle.text}"

        await asyncio.to_thread(broker.stop)
        down = await eventually(ready, status(503), 20, "unready with the broker stopped")
        assert down.json()["checks"]["broker"]["ok"] is False
        assert (await eventually(alive, lambda r: True, 5, "a liveness answer")).status_code == 200, (
            "a broker outage is not a stuck consumer: restarting would not help"
        )

        await asyncio.to_thread(broker.start, 150)
        await eventually(ready, status(200), 90, "ready again once the broker is back")

        publisher = KafkaEventBus(broker.bootstrap_servers, source="test", topic_namespace=namespace)
        await publisher.start()
        try:
            await publisher.publish(ticket_created())
        finally:
            await publisher.stop()
        stuck = await eventually(
            alive, status(503), 30 + STALL_SECONDS, "liveness failing on a stuck handler"
        )
        assert "stuck: 1 records in flight" in stuck.json()["checks"]["consumer"]["detail"]
        assert proc.poll() is None, "the process itself still runs: only the probe says it is stuck"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        await asyncio.to_thread(broker.stop)
        print(log.read_text(errors="replace")[-3000:])
