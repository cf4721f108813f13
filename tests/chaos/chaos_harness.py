"""The chaos suite's stack and the hands that strike it.

A Kafka broker on fixed loopback ports and its own data directory (so it can be stopped, killed
and started again on the same data), Postgres, the stand-ins, config-api, ingress and two
processes of every consumer service (``Stack`` with ``replicas``). :class:`Striker` carries out
the plan's faults, each at its moment, and notes when each struck and when the stack was whole
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from chaos_plan import (
    CONSUMERS,
    JIRA_CREATE,
    JIRA_TIMEOUT_SECONDS,
    QUIET_LINE,
    REPLICAS,
    SMS_SEND,
    Fault,
    process_names,
)

from voiceticket_common.events import CallAnalyzed, CallTranscribed, Event, RecordingCompleted, TicketCreated
from voiceticket_sandbox.devstack import Stack
from voiceticket_sandbox.kafka_broker import LocalKafkaBroker
from voiceticket_sandbox.processes import free_port

PRODUCT_ENV = {
    # Shorter than the defaults (60 s leases, 30 s timeouts, 15 s index lag), in the same
    # proportions, so a crashed holder's call is taken over within a run's drain; the stand-in's
    # search has no lag, so 3 s is generous. CHAOS_PRODUCT_DEFAULTS=1 runs the defaults.
    "VOICETICKET_REQUEST_LEASE_SECONDS": "20",
    "VOICETICKET_JIRA_TIMEOUT_SECONDS": str(JIRA_TIMEOUT_SECONDS),
    "VOICETICKET_SEARCH_INDEX_LAG_SECONDS": "3",
    "VOICETICKET_SMS_LEASE_SECONDS": "20",
    "VOICETICKET_TWILIO_TIMEOUT_SECONDS": str(JIRA_TIMEOUT_SECONDS),
    # A SIGTERMed replica drains for this long, within the harness's 30 s stop.
    "VOICETICKET_DRAIN_SECONDS": "8",
}
START_TIMEOUT = 300.0
"""Seconds for the whole stack to start on a busy 2-core machine."""
RESTART_TIMEOUT = 240.0
"""Seconds one restarted process may take to be ready again (it may wait for the broker)."""
AIMED_DELAY = 5.0
"""The stand-in holds an aimed request this long, so the kill lands while it is in flight."""

INPUT_EVENTS: dict[str, type[Event]] = {
    "transcriber": RecordingCompleted,
    "analyzer": CallTranscribed,
    "jira-writer": CallAnalyzed,
    "notifier": TicketCreated,
}


def group_of(service: str) -> str:
    return f"voiceticket-{service}"


@contextlib.contextmanager
def restartable_broker(data_dir: Path) -> Iterator[LocalKafkaBroker]:
    """A broker whose ports and data survive :meth:`LocalKafkaBroker.stop` and ``start``."""
    broker = LocalKafkaBroker(port=free_port(), controller_port=free_port(), data_dir=data_dir)
    try:
        broker.start(timeout=150)
        yield broker
    finally:
        broker.stop()


FAILPOINTS = Path(__file__).parent / "failpoints"
"""On every product process's PYTHONPATH: its ``sitecustomize`` holds commits and adds the
upgraded producer's field when the harness asks (see there)."""


UPGRADE_FIELD = "chaos_upgrade"
"""The optional field an upgraded producer's events carry (as ``failpoints/sitecustomize.py`` adds it)."""


def failpoints_dir(stack: Stack) -> Path:
    return stack.workdir / "failpoints"


def chaos_stack(workdir: Path, broker: LocalKafkaBroker, postgres_dsn: str) -> Stack:
    env = {} if os.environ.get("CHAOS_PRODUCT_DEFAULTS") == "1" else dict(PRODUCT_ENV)
    (workdir / "failpoints").mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(p for p in (str(FAILPOINTS), os.environ.get("PYTHONPATH", "")) if p)
    env |= {"CHAOS_FAILPOINTS_DIR": str(workdir / "failpoints"), "PYTHONPATH": path}
    return Stack(
        workdir,
        broker.bootstrap_servers,
        postgres_dsn,
        replicas=dict.fromkeys(CONSUMERS, REPLICAS),
        extra_lines=[{"number": QUIET_LINE, "sms_enabled": False}],
        extra_env=env,
        topic_namespace=f"chaos-{secrets.token_hex(4)}",
        database_prefix=f"chaos_{secrets.token_hex(3)}_",
    )


class Stopped(Exception):
    """The run is over: a restart in progress gives up (nothing may start after the stack stops)."""


def restart_supervised(stack: Stack, name: str, timeout: float, stopping: threading.Event) -> int:
    """Start ``name`` again until it is ready, as Kubernetes restarts a pod whose process exits
    (a service exits at start-up while the broker is unreachable); how many starts it took.
    Runs in a worker thread; gives up as soon as ``stopping`` is set."""
    deadline = time.monotonic() + timeout
    proc = stack.processes[name]
    attempts = 0
    while True:
        if stopping.is_set():
            raise Stopped(name)
        attempts += 1
        proc.stop()
        proc.start()
        while True:
            if stopping.is_set():
                proc.stop()
                raise Stopped(name)
            try:
                proc.wait_ready(time.monotonic() + 2.0)
                return attempts
            except TimeoutError:  # not ready yet (it may wait for the broker or config-api)
                if time.monotonic() > deadline:
                    raise
            except RuntimeError:  # exited during start-up: start it again after a back-off
                if time.monotonic() > deadline:
                    raise
                stopping.wait(min(2.0 * attempts, 10.0))  # the kubelet's restart back-off
                break


@dataclass
class Strike:
    """One fault as it happened (wall-clock times, ``time.time()``, as the stand-ins record)."""

    fault: Fault
    started: float = 0.0
    """When it struck (the kill, the stop, the fault installed, the record produced)."""
    whole: float | None = None
    """When every process it stopped was ready again (None: it stopped none, or never)."""
    processes: list[str] = field(default_factory=list)
    sigkills: int = 0
    sigterms: int = 0
    restarts: int = 0
    crash_restarts: int = 0
    """Starts that exited during start-up (the broker was down) and were started again."""
    ungraceful: list[str] = field(default_factory=list)
    """Processes that did not exit within 30 s of SIGTERM."""
    note: str = ""
    error: str | None = None
    poison_keys: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "fault": self.fault.describe(),
            "kind": self.fault.kind,
            "started": self.started,
            "down_s": round(self.whole - self.started, 2) if self.whole else None,
            "processes": self.processes,
            "crash_restarts": self.crash_restarts,
            "ungraceful": self.ungraceful,
            "note": self.note,
            "error": self.error,
        }


class Striker:
    """Carries out a plan's faults on a running stack (call :meth:`run` inside the event loop)."""

    def __init__(self, stack: Stack, broker: LocalKafkaBroker, log: Any) -> None:
        self.stack = stack
        self.broker = broker
        self.log = log
        self.strikes: list[Strike] = []
        self.unplanned_exits: list[dict[str, Any]] = []
        """Processes that exited although no fault stopped them (the supervisor restarted them)."""
        self._locks: dict[str, asyncio.Lock] = {}
        self._http = httpx.AsyncClient(timeout=10.0)
        self.stopping = threading.Event()
        # Its own threads: restarts block for up to minutes each, and asyncio's default pool
        # (cores + 4) would queue a restart behind others (config-api behind its own dependants).
        self._pool = ThreadPoolExecutor(max_workers=48, thread_name_prefix="chaos-striker")

    async def close(self) -> None:
        """Stop every restart in progress (they end within seconds) and wait for them."""
        self.stopping.set()
        await asyncio.to_thread(self._pool.shutdown, wait=True)
        await self._http.aclose()

    async def _blocking(self, call: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call, *args)

    async def _restart_one(self, name: str) -> int:
        attempts: int = await self._blocking(
            restart_supervised, self.stack, name, RESTART_TIMEOUT, self.stopping
        )
        return attempts

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def _holding(self, *names: str) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as held:
            for name in sorted(names):  # one order for every taker: no deadlock
                await held.enter_async_context(self._lock(name))
            yield

    async def run(self, faults: tuple[Fault, ...], start: float) -> None:
        """Strike each fault at ``start`` (loop time) + its moment; return when all are done."""
        loop = asyncio.get_running_loop()
        tasks = []
        for fault in faults:
            await asyncio.sleep(max(0.0, start + fault.at - loop.time()))
            tasks.append(asyncio.create_task(self.strike(fault)))
        await asyncio.gather(*tasks)

    async def supervise(self) -> None:
        """Restart a process that exited on its own, as Kubernetes would, and note it; runs
        until cancelled. A process a fault holds is the fault's to restart."""
        while True:
            await asyncio.sleep(1.0)  # the supervisor's probe period
            for name in process_names():
                lock = self._lock(name)
                if lock.locked() or self.stack.is_running(name):
                    continue
                async with lock:
                    process = self.stack.processes[name].process
                    code = process.returncode if process is not None else None
                    exit_ = {"process": name, "at": time.time(), "returncode": code}
                    self.unplanned_exits.append(exit_)
                    self.log(f"{name} exited on its own (rc {code}): restarting it")
                    try:
                        exit_["starts"] = await self._restart_one(name)
                    except Exception as exc:  # noted; the supervisor tries again next period
                        exit_["error"] = f"{type(exc).__name__}: {exc}"

    async def strike(self, fault: Fault) -> Strike:
        strike = Strike(fault)
        self.strikes.append(strike)
        action = {
            "kill": self._kill,
            "kill-in-jira-create": self._kill_in_flight,
            "kill-in-sms-send": self._kill_in_flight,
            "sigterm": self._sigterm,
            "broker-restart": self._broker_restart,
            "config-api-restart": self._sigterm,
            "rolling-restart": self._rolling_restart,
            "kill-before-commit": self._kill_before_commit,
            "rolling-upgrade": self._rolling_upgrade,
            "provider": self._provider_fault,
            "poison": self._poison,
        }[fault.kind]
        try:
            await action(strike)
        except Exception as exc:  # noted and reported: the verdict fails on a fault not carried out
            lines = str(exc).splitlines() or [""]
            cause = f" ... {lines[-1][:300]}" if len(lines) > 1 else ""
            strike.error = f"{type(exc).__name__}: {lines[0][:300]}{cause}"
        self.log(f"fault done: {fault.describe()} {strike.note} {strike.error or ''}".rstrip())
        return strike

    # -- processes ---------------------------------------------------------------------------------
    async def _restart(self, strike: Strike, *names: str) -> None:
        attempts = await asyncio.gather(*(self._restart_one(name) for name in names))
        strike.restarts += sum(attempts)
        strike.crash_restarts += sum(attempts) - len(names)
        strike.whole = time.time()

    async def _kill(self, strike: Strike) -> None:
        name = strike.fault.target
        async with self._holding(name):
            strike.started, strike.processes = time.time(), [name]
            await self._blocking(self.stack.kill, name)
            strike.sigkills += 1
            await asyncio.sleep(strike.fault.pause)
            await self._restart(strike, name)

    async def _terminate(self, strike: Strike, name: str) -> None:
        """SIGTERM and wait: a graceful stop ends within the drain and shutdown, well inside
        30 s; one that had to be SIGKILLed is noted (the verdict fails on it)."""
        await self._blocking(self.stack.terminate, name, 30.0)
        strike.sigterms += 1
        process = self.stack.processes[name].process
        code = process.returncode if process is not None else None
        if code == -signal.SIGKILL:
            strike.ungraceful.append(name)

    async def _sigterm(self, strike: Strike) -> None:
        name = strike.fault.target
        async with self._holding(name):
            strike.started, strike.processes = time.time(), [name]
            await self._terminate(strike, name)
            await asyncio.sleep(strike.fault.pause)
            await self._restart(strike, name)

    async def _kill_in_flight(self, strike: Strike) -> None:
        """SIGKILL every replica of the service while the stand-in holds one of its requests."""
        jira = strike.fault.kind == "kill-in-jira-create"
        provider, path = ("jira", JIRA_CREATE) if jira else ("twilio", SMS_SEND)
        origin = getattr(self.stack.sandbox, provider)
        tag = f"aimed-{secrets.token_hex(4)}"
        spec = {"method": "POST", "path_regex": f"{path}(?#{tag})", "status": None,
                "delay_seconds": AIMED_DELAY, "times": 6}  # fmt: skip
        (await self._http.post(f"{origin}/_sandbox/faults", json=spec)).raise_for_status()
        in_flight = await self._wait_in_flight(origin, tag, timeout=60.0)
        names = self.stack.replicas_of(strike.fault.target)
        async with self._holding(*names):
            strike.started, strike.processes = time.time(), names
            await asyncio.gather(*(self._blocking(self.stack.kill, n) for n in names))
            strike.sigkills += len(names)
            strike.note = f"{in_flight} request(s) in flight at the kill"
            await asyncio.sleep(strike.fault.pause)
            await self._restart(strike, *names)

    async def _wait_in_flight(self, origin: str, tag: str, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            faults = (await self._http.get(f"{origin}/_sandbox/faults")).json()
            mine = [f for f in faults if tag in f["path_regex"]]
            if mine and mine[0]["in_flight"] > 0:
                return int(mine[0]["in_flight"])
            if time.monotonic() > deadline:
                return 0
            await asyncio.sleep(0.1)

    async def _kill_before_commit(self, strike: Strike) -> None:
        """SIGKILL a replica of the service between a handler's success (its outcome published)
        and the commit of the record's offset: the failpoint holds the replicas' commits until
        one has a commit to make, and that one is killed. Its record is delivered again."""
        names = self.stack.replicas_of(strike.fault.target)
        folder = failpoints_dir(self.stack)
        async with self._holding(*names):
            pids = {name: self._pid(name) for name in names}
            holds = [folder / f"hold-commit.{pid}" for pid in pids.values()]
            for hold in holds:
                hold.touch()
            try:
                deadline = time.monotonic() + 90.0
                victims: list[str] = []
                while not victims and time.monotonic() < deadline:
                    victims = [n for n, pid in pids.items() if (folder / f"holding.{pid}").exists()]
                    await asyncio.sleep(0.05)
                if not victims:
                    raise RuntimeError(f"no {strike.fault.target} replica completed a record within 90 s")
                strike.started, strike.processes = time.time(), victims
                await asyncio.gather(*(self._blocking(self.stack.kill, n) for n in victims))
                strike.sigkills += len(victims)
                strike.note = "killed with a completed record's commit held"
            finally:
                for hold in holds:
                    hold.unlink(missing_ok=True)
            await asyncio.sleep(strike.fault.pause)
            await self._restart(strike, *victims)

    def _pid(self, name: str) -> int:
        process = self.stack.processes[name].process
        assert process is not None, name
        return process.pid

    async def _rolling_upgrade(self, strike: Strike) -> None:
        """Every process in turn (producers first, as a deployment rolls them): SIGTERM, start
        as the new version, whose events carry an optional field, while the others still run
        the old one."""
        strike.started = time.time()
        for name in process_names():
            async with self._holding(name):
                await self._terminate(strike, name)
                self.stack.processes[name].env["CHAOS_UPGRADED"] = "1"
                attempts = await self._restart_one(name)
                strike.restarts += attempts
                strike.crash_restarts += attempts - 1
                strike.processes.append(name)
        strike.whole = time.time()

    async def _rolling_restart(self, strike: Strike) -> None:
        strike.started = time.time()
        for name in process_names():
            async with self._holding(name):
                await self._terminate(strike, name)
                attempts = await self._restart_one(name)
                strike.restarts += attempts
                strike.crash_restarts += attempts - 1
                strike.processes.append(name)
        strike.whole = time.time()

    # -- the broker --------------------------------------------------------------------------------
    async def _broker_restart(self, strike: Strike) -> None:
        async with self._holding("kafka"):
            strike.started, strike.processes = time.time(), ["kafka"]
            if strike.fault.hard and self.broker.pid is not None:
                os.killpg(self.broker.pid, signal.SIGKILL)
                strike.sigkills += 1
            else:
                strike.sigterms += 1
            await self._blocking(self.broker.stop, 60)
            await asyncio.sleep(strike.fault.pause)
            await self._blocking(self.broker.start, 180)
            strike.restarts += 1
            strike.whole = time.time()

    # -- the outside world -------------------------------------------------------------------------
    async def _provider_fault(self, strike: Strike) -> None:
        fault = strike.fault.provider
        assert fault is not None
        origin = getattr(self.stack.sandbox, fault.provider)
        strike.started = time.time()
        spec = fault.spec(f"chaos-{secrets.token_hex(4)}")
        (await self._http.post(f"{origin}/_sandbox/faults", json=spec)).raise_for_status()
        strike.note = fault.label

    async def _poison(self, strike: Strike) -> None:
        """A record no consumer can read, keyed like a call: its group must dead-letter it."""
        service = strike.fault.target
        topic = self.stack.topic(INPUT_EVENTS[service].topic())
        key = "CA" + "deadbeef" + secrets.token_hex(12)
        strike.poison_keys.append(key)
        strike.note = f"{group_of(service)} <- {key}"
        deadline = time.monotonic() + 180
        while True:
            producer = AIOKafkaProducer(bootstrap_servers=self.stack.bootstrap_servers, acks="all")
            try:
                await producer.start()
                await producer.send_and_wait(topic, b"\x00chaos poison: not an event", key=key.encode())
                strike.started = time.time()
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
            finally:
                await producer.stop()
            await asyncio.sleep(2.0)  # the broker is restarting: try again
