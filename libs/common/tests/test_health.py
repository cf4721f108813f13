"""Probes backed by real checks (``health.py``): the liveness and readiness decisions on fake
snapshots, the cached checks, the consumer's health app, and the figures both bus adapters'
members report (the embedded one on a real SQLite log)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import httpx

from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.bus.inflight import KeyOrderedWorkers
from voiceticket_common.bus.progress import ConsumerProgress, Pingable, ReportsProgress
from voiceticket_common.db import open_engine
from voiceticket_common.events import Event, TicketCreated
from voiceticket_common.health import (
    Cached,
    CheckResult,
    Probes,
    assignment_verdict,
    consumer_checks,
    database_check,
    stall_verdict,
    web_checks,
)
from voiceticket_common.service import health_app
from voiceticket_common.settings import ServiceSettings
from voiceticket_common.testing import cancelled, ticket_created

STALL = 120.0
NOW = 10_000.0


def progress(**fields: object) -> ConsumerProgress:
    values: dict[str, object] = {
        "settled": True,
        "partitions": 3,
        "in_flight": 0,
        "lag": 0,
        "last_poll": NOW - 0.5,
        "last_progress": NOW - 5,
    }
    values.update(fields)
    return ConsumerProgress(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- liveness


def test_an_idle_consumer_is_alive_however_long_it_idles() -> None:
    idle = progress(last_progress=NOW - 10 * STALL, last_poll=NOW - 10 * STALL)
    assert stall_verdict(idle, NOW, STALL).ok, "nothing waits: nothing is stuck"


def test_records_in_flight_with_no_completion_past_the_threshold_is_stuck() -> None:
    stuck = progress(in_flight=2, last_progress=NOW - STALL - 1)
    verdict = stall_verdict(stuck, NOW, STALL)
    assert not verdict.ok
    assert "2 records in flight" in verdict.detail
    assert stall_verdict(progress(in_flight=2, last_progress=NOW - STALL + 1), NOW, STALL).ok


def test_records_waiting_on_the_partitions_with_no_poll_past_the_threshold_is_stuck() -> None:
    assert not stall_verdict(progress(lag=7, last_poll=NOW - STALL - 1), NOW, STALL).ok
    assert stall_verdict(progress(lag=7, last_poll=NOW - 1), NOW, STALL).ok, "it polls: it will take them"


def test_a_consumer_not_running_yet_is_not_a_stuck_one() -> None:
    assert stall_verdict(None, NOW, STALL).ok


# ---------------------------------------------------------------------------- readiness


def test_a_member_is_ready_once_it_joined_its_group() -> None:
    assert not assignment_verdict(None).ok, "not consuming"
    assert not assignment_verdict(progress(settled=False, partitions=0)).ok, "joining or rebalancing"
    assert assignment_verdict(progress(partitions=3)).ok
    assert assignment_verdict(progress(partitions=None)).ok, "the embedded log has no partitions"


def test_a_standby_member_with_no_partition_is_ready() -> None:
    verdict = assignment_verdict(progress(partitions=0))
    assert verdict.ok
    assert "standby" in verdict.detail


async def test_readiness_is_false_until_startup_is_done() -> None:
    probes = Probes()

    async def fine() -> CheckResult:
        return CheckResult(True)

    probes.ready_when("thing", fine)
    assert not (await probes.readiness()).ok
    probes.started = True
    report = await probes.readiness()
    assert report.ok
    assert report.body("ready") == {"status": "ready", "checks": {"thing": {"ok": True, "detail": "ok"}}}


# ---------------------------------------------------------------------------- cached checks


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_cached_check_asks_once_per_ttl_and_concurrent_probes_share_one_run() -> None:
    calls = 0
    clock = FakeClock()

    async def slow() -> CheckResult:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return CheckResult(True)

    check = Cached(slow, ttl=5, timeout=1, clock=clock)
    results = await asyncio.gather(*(check() for _ in range(10)))
    assert all(r.ok for r in results)
    assert calls == 1, "ten probes at once: one request"
    clock.now = 4.9
    await check()
    assert calls == 1, "within the ttl the answer is reused"
    clock.now = 5.1
    await check()
    assert calls == 2


async def test_a_check_that_hangs_or_raises_fails_without_its_message() -> None:
    async def hangs() -> CheckResult:
        await asyncio.sleep(60)
        return CheckResult(True)

    async def raises() -> CheckResult:
        raise ConnectionError("postgresql://svc:s3cret@db:5432 refused")

    timed_out = await Cached(hangs, ttl=0, timeout=0.05)()
    assert not timed_out.ok and "no answer within 0.05 s" in timed_out.detail
    failed = await Cached(raises, ttl=0, timeout=1)()
    assert not failed.ok
    assert failed.detail == "failed: ConnectionError", "the message may hold credentials"


async def test_the_database_check_runs_select_1(tmp_path: Path) -> None:
    async with open_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}") as engine:
        assert (await database_check(engine)()).ok
    (tmp_path / "a-directory").mkdir()
    async with open_engine(f"sqlite+aiosqlite:///{tmp_path / 'a-directory'}") as broken:
        failed = await Cached(database_check(broken), ttl=0, timeout=2)()
        assert not failed.ok and failed.detail.startswith("failed: ")


# ---------------------------------------------------------------------------- the health app


class FakeBus:
    """A bus that reports what the test says (``ReportsProgress`` and ``Pingable``)."""

    def __init__(self) -> None:
        self.snapshot: ConsumerProgress | None = None
        self.reachable = True
        self.pings = 0

    def consumer_progress(self, group: str) -> ConsumerProgress | None:
        return self.snapshot

    async def ping(self) -> None:
        self.pings += 1
        if not self.reachable:
            raise ConnectionRefusedError("broker down")


def settings(**overrides: object) -> ServiceSettings:
    # config-api on a port nothing listens on: its check fails fast
    values: dict[str, object] = {"config_api_url": "http://127.0.0.1:9", "health_cache_seconds": 0}
    values.update(overrides)
    return ServiceSettings(**values)  # type: ignore[arg-type]


async def test_the_consumer_health_app_answers_what_the_checks_say() -> None:
    bus = FakeBus()
    assert isinstance(bus, ReportsProgress) and isinstance(bus, Pingable)
    probes = Probes()
    app = health_app(probes)
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as client,
        consumer_checks(probes, settings(liveness_stall_seconds=STALL), bus, "voiceticket-test"),
    ):
        starting = await client.get("/readyz")
        assert (starting.status_code, starting.json()) == (503, {"status": "starting"})
        probes.started = True

        bus.snapshot = progress(partitions=2)
        ready = await client.get("/readyz")
        assert ready.status_code == 503, "config-api is unreachable"
        checks = ready.json()["checks"]
        assert checks["broker"]["ok"] and checks["consumer"]["ok"]
        assert not checks["config-api"]["ok"]
        assert "database" not in checks, "these settings name no database"

        assert (await client.get("/healthz")).status_code == 200
        bus.snapshot = progress(in_flight=1, last_progress=0.0)  # monotonic time 0: long ago
        stuck = await client.get("/healthz")
        assert stuck.status_code == 503
        assert "stuck" in stuck.json()["checks"]["consumer"]["detail"]
    assert probes._readiness == {} and probes._liveness == {}, "checks removed when the service stops"


async def test_broker_answers_are_reused_within_the_cache_time() -> None:
    bus = FakeBus()
    probes = web_checks(settings(health_cache_seconds=60), bus, uses_config_api=False)
    for _ in range(5):
        assert (await probes.readiness()).ok
    assert bus.pings == 1
    bus.reachable = False
    assert (await probes.readiness()).ok, "still the cached answer"


async def test_a_web_service_without_a_broker_or_config_api_checks_nothing() -> None:
    report = await web_checks(settings(), object(), uses_config_api=False).readiness()
    assert report.ok and report.body("ready") == {"status": "ready"}


# ---------------------------------------------------------------------------- what the adapters report


async def test_key_ordered_workers_record_progress_only_when_work_arrives_idle_or_finishes() -> None:
    release = asyncio.Event()

    async def work(item: str) -> None:
        if item == "slow":
            await release.wait()

    workers: KeyOrderedWorkers[str] = KeyOrderedWorkers(work)
    assert workers.last_progress is None
    workers.submit("a", "slow")
    arrived = workers.last_progress
    assert arrived is not None
    await asyncio.sleep(0.01)
    workers.submit("b", "slow")
    assert workers.last_progress == arrived, "work arriving while busy is not progress"
    await asyncio.sleep(0.01)
    release.set()
    await workers.wait_until(lambda: workers.held == 0, 1)
    assert workers.last_progress is not None and workers.last_progress > arrived
    await workers.close(0)


async def test_the_embedded_bus_reports_a_blocked_consumer(tmp_path: Path) -> None:
    bus = EmbeddedEventBus(tmp_path / "bus.db", source="test", poll_interval=0.02)
    await bus.start()
    try:
        assert bus.consumer_progress("g") is None
        blocked = asyncio.Event()

        async def never(event: Event) -> Sequence[Event]:
            blocked.set()
            await asyncio.Event().wait()
            return []

        task = asyncio.create_task(bus.consume("g", [TicketCreated], never, drain_seconds=0))
        await bus.publish(ticket_created())
        await asyncio.wait_for(blocked.wait(), 5)
        snapshot = bus.consumer_progress("g")
        assert snapshot is not None
        assert (snapshot.settled, snapshot.partitions, snapshot.in_flight) == (True, None, 1)
        assert snapshot.last_poll is not None and snapshot.last_progress is not None
        assert not stall_verdict(snapshot, snapshot.last_progress + STALL + 1, STALL).ok
        await cancelled(task)
        assert bus.consumer_progress("g") is None
    finally:
        await bus.stop()
