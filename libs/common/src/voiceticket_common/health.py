"""Probes backed by real checks: ``/readyz`` asks what the service needs, ``/healthz`` catches a
stuck consumer.

Readiness (``Probes.readiness``): false until start-up is done (topics, the database's schema,
the adapters; ``Probes.started``), then the conjunction of the checks the service registered: the
broker answers a metadata request, config-api answers ``/healthz``, the database answers
``SELECT 1``, and the consumer has joined its group. Remote checks are bounded by a timeout and
their answers reused for a few seconds (``Cached``), so probes do not load what they check.

Assignment: a member that has not joined its group yet, or is in a rebalance, is not ready. A
member that joined and got no partition *is* ready: the assignors give every member a partition
while members are no more than partitions, so an empty assignment means the group has more
replicas than partitions, and such a standby takes over when another member leaves (marking it
unready would only stall rollouts and disruption budgets).

Liveness (``Probes.liveness``): a consumer is stuck when records wait (held in flight, or known
on its partitions and not taken) and for longer than ``stall_seconds`` none finished (in flight)
or it did not poll. An idle consumer (nothing waits) is alive however long it idles, and a broker
outage alone does not fail liveness (restarting would not bring the broker back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .bus.progress import ConsumerProgress, Pingable, ReportsProgress
from .db import create_engine
from .settings import ServiceSettings

__all__ = [
    "Cached",
    "Check",
    "CheckResult",
    "HasDatabase",
    "Probes",
    "Report",
    "assignment_verdict",
    "consumer_checks",
    "stall_verdict",
    "web_checks",
]


@dataclass(frozen=True)
class CheckResult:
    """One check's answer; ``detail`` says why, with no secret, number or URL credentials."""

    ok: bool
    detail: str = "ok"


Check = Callable[[], Awaitable[CheckResult]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class Report:
    """The answers of a probe's checks."""

    ok: bool
    checks: Mapping[str, CheckResult]

    def body(self, status: str) -> dict[str, Any]:
        """The JSON a probe answers: ``status`` when all passed, ``failing`` otherwise, and each
        check's answer (none registered: the status alone)."""
        out: dict[str, Any] = {"status": status if self.ok else "failing"}
        if self.checks:
            out["checks"] = {name: {"ok": r.ok, "detail": r.detail} for name, r in self.checks.items()}
        return out


class Cached:
    """``check`` run at most once per ``ttl`` seconds and one run at a time (concurrent probes
    share it), bounded by ``timeout``; a timeout or an exception is a failed check named by its
    type (exception messages may hold addresses or DSNs)."""

    def __init__(self, check: Check, *, ttl: float, timeout: float, clock: Clock = time.monotonic) -> None:
        self._check = check
        self._ttl = ttl
        self._timeout = timeout
        self._clock = clock
        self._last: tuple[float, CheckResult] | None = None
        self._running: asyncio.Task[CheckResult] | None = None

    async def __call__(self) -> CheckResult:
        if self._last is not None and self._clock() - self._last[0] < self._ttl:
            return self._last[1]
        if self._running is None:
            self._running = asyncio.create_task(self._run())
        return await asyncio.shield(self._running)

    async def _run(self) -> CheckResult:
        try:
            async with asyncio.timeout(self._timeout):
                result = await self._check()
        except TimeoutError:
            result = CheckResult(False, f"no answer within {self._timeout:g} s")
        except Exception as exc:  # any failure of the checked thing fails the check, never the probe
            result = CheckResult(False, f"failed: {type(exc).__name__}")
        self._last = (self._clock(), result)
        self._running = None
        return result


class Probes:
    """What ``/readyz`` and ``/healthz`` answer: the checks registered while the service starts."""

    def __init__(self) -> None:
        self.started = False
        """Start-up done (the bus started, topics provisioned, migrations and adapters opened):
        until then readiness is false whatever the checks say."""
        self._readiness: dict[str, Check] = {}
        self._liveness: dict[str, Check] = {}

    def ready_when(self, name: str, check: Check) -> None:
        self._readiness[name] = check

    def alive_when(self, name: str, check: Check) -> None:
        self._liveness[name] = check

    def forget(self, *names: str) -> None:
        for name in names:
            self._readiness.pop(name, None)
            self._liveness.pop(name, None)

    async def readiness(self) -> Report:
        if not self.started:
            return Report(False, {"startup": CheckResult(False, "starting")})
        return await _run_all(self._readiness)

    async def liveness(self) -> Report:
        return await _run_all(self._liveness)


async def _run_all(checks: Mapping[str, Check]) -> Report:
    names = sorted(checks)
    results = await asyncio.gather(*(checks[name]() for name in names))
    return Report(all(r.ok for r in results), dict(zip(names, results, strict=True)))


# ---------------------------------------------------------------------------- decisions


def assignment_verdict(progress: ConsumerProgress | None) -> CheckResult:
    """Readiness of a consumer group member (see the module docstring for the standby case)."""
    if progress is None:
        return CheckResult(False, "not consuming")
    if not progress.settled:
        return CheckResult(False, "joining its consumer group")
    if progress.partitions == 0:
        return CheckResult(True, "standby: no partition assigned (more members than partitions)")
    if progress.partitions is None:
        return CheckResult(True, "consuming")
    return CheckResult(True, f"{progress.partitions} partitions assigned")


def stall_verdict(progress: ConsumerProgress | None, now: float, stall_seconds: float) -> CheckResult:
    """Liveness of a consumer: failed when records wait and nothing moved for ``stall_seconds``."""
    if progress is None:
        return CheckResult(True, "not consuming")
    waiting = progress.in_flight + progress.lag
    if waiting == 0:
        return CheckResult(True, "idle")
    if progress.in_flight and progress.last_progress is not None:
        quiet = now - progress.last_progress
        if quiet > stall_seconds:
            return CheckResult(
                False, f"stuck: {progress.in_flight} records in flight, none finished for {quiet:.0f} s"
            )
    if progress.last_poll is not None and now - progress.last_poll > stall_seconds:
        return CheckResult(
            False, f"stuck: {waiting} records wait, no poll for {now - progress.last_poll:.0f} s"
        )
    return CheckResult(True, f"{progress.in_flight} in flight, {progress.lag} waiting")


# ---------------------------------------------------------------------------- checks


def broker_check(bus: Pingable) -> Check:
    async def check() -> CheckResult:
        await bus.ping()
        return CheckResult(True, "metadata answered")

    return check


def http_check(url: str, timeout: float) -> Check:
    """``GET url`` answers 200 (a client per run: one request every few seconds at most)."""

    async def check() -> CheckResult:
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            response = await client.get(url)
        if response.status_code != 200:
            return CheckResult(False, f"HTTP {response.status_code}")
        return CheckResult(True, "HTTP 200")

    return check


def database_check(engine: AsyncEngine) -> Check:
    async def check() -> CheckResult:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return CheckResult(True, "SELECT 1 answered")

    return check


def progress_check(
    bus: ReportsProgress,
    group: str,
    verdict: Callable[[ConsumerProgress | None], CheckResult],
) -> Check:
    async def check() -> CheckResult:
        return verdict(bus.consumer_progress(group))

    return check


def config_api_check(settings: ServiceSettings) -> Check:
    """config-api answers its ``/healthz`` (cached like every remote check)."""
    url = settings.config_api_url.rstrip("/") + "/healthz"
    return _cached(settings, http_check(url, settings.health_check_timeout_seconds))


@runtime_checkable
class HasDatabase(Protocol):
    """Settings of a service that owns a database (its ledgers)."""

    database_url: str


@asynccontextmanager
async def probe_engine(url: str) -> AsyncIterator[AsyncEngine]:
    """A one-connection engine for the database check, apart from the service's pool (a pool
    the service has exhausted under load does not make it unready)."""
    if make_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url)  # already one connection, with the service's pragmas
    else:
        engine = create_async_engine(
            url, pool_size=1, max_overflow=0, hide_parameters=True, pool_pre_ping=True
        )
    try:
        yield engine
    finally:
        await engine.dispose()


def _cached(settings: ServiceSettings, check: Check) -> Check:
    return Cached(check, ttl=settings.health_cache_seconds, timeout=settings.health_check_timeout_seconds)


@asynccontextmanager
async def consumer_checks(
    probes: Probes, settings: ServiceSettings, bus: ReportsProgress, group: str
) -> AsyncIterator[None]:
    """Register a consumer service's checks for as long as the context is open: the broker (when
    the bus has one), config-api, the database (when the settings name one), the group
    assignment (readiness) and the stall check (liveness)."""

    async with contextlib.AsyncExitStack() as stack:
        if isinstance(bus, Pingable):
            probes.ready_when("broker", _cached(settings, broker_check(bus)))
        probes.ready_when("config-api", config_api_check(settings))
        if isinstance(settings, HasDatabase):
            engine = await stack.enter_async_context(probe_engine(settings.database_url))
            probes.ready_when("database", _cached(settings, database_check(engine)))
        probes.ready_when("consumer", progress_check(bus, group, assignment_verdict))
        stall = settings.liveness_stall_seconds
        probes.alive_when(
            "consumer", progress_check(bus, group, lambda p: stall_verdict(p, time.monotonic(), stall))
        )
        try:
            yield
        finally:
            probes.forget("broker", "config-api", "database", "consumer")


def web_checks(settings: ServiceSettings, publisher: object, *, uses_config_api: bool) -> Probes:
    """The readiness checks of a web service (ingress): the broker behind its publisher (when it
    has one) and config-api (when it looks lines up there). Its start-up is its app's lifespan
    (the app answers "starting" until then), so these probes count as started."""

    probes = Probes()
    probes.started = True
    if isinstance(publisher, Pingable):
        probes.ready_when("broker", _cached(settings, broker_check(publisher)))
    if uses_config_api:
        probes.ready_when("config-api", config_api_check(settings))
    return probes
