"""Overload recovery of the embedded ingress: a steady rate, a flood above saturation, the steady
rate again; does webhook latency come back, and how fast?

The product (``voiceticket run``'s embedded runtime: ingress, config-api, the SQLite bus and the
consumers in one process) runs in a child process; this process is the load generator. Load is
open-loop: request *i* is due at ``start + i / rate`` whether or not earlier ones were answered,
and its latency counts from when it was due, so a queue in front of the product shows up as
latency instead of slowing the generator down (no coordinated omission). Each request is a signed
``POST /twilio/voice`` for a new CallSid on the demo line, sent on a pool of keep-alive
connections by a minimal HTTP/1.1 client (httpx would cost more CPU than the product on 2 cores).
A separate connection probes ``/healthz`` four times a second.

    uv run --frozen python bench/overload_recovery.py --overload-rate 500 --json /tmp/after.json
    # the same load against another checkout's code (e.g. a clean worktree of HEAD):
    uv run --frozen python bench/overload_recovery.py --src-root /tmp/base --json /tmp/before.json

The line's config cache is set short (``--config-cache-seconds``, 5 s) so that it expires during
the flood, as the 30 s default eventually does. Printed: one row per second (sent, answers by
status, timeouts, p50/p99 latency of the answered ones, slowest health probe), then the recovery
time: seconds from the end of the flood to the first of 5 consecutive seconds whose requests all
got 200 with p99 under ``--target-p99-ms`` (25 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from twilio.request_validator import RequestValidator

from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE

SRC_DIRS = (
    "libs/common/src",
    "libs/sandbox/src",
    "libs/voiceticket/src",
    *(
        f"services/{s}/src"
        for s in ("ingress", "transcriber", "analyzer", "jira-writer", "notifier", "config-api")
    ),
)
REQUEST_TIMEOUT = 15.0  # Twilio waits at most 15 s for a webhook (connection overrides, tt)
RECOVERED_SECONDS = 5


# -- the product ------------------------------------------------------------------------------
async def serve(data_dir: Path, ready_file: Path) -> None:
    """All services in this process on the demo tenant; the provider stand-ins are not needed
    (nothing consumes ``call.received``), so their URLs point nowhere."""

    from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
    from voiceticket_sandbox.demo_tenant import seed

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    nowhere = "http://127.0.0.1:9"
    (data_dir / "seed.json").write_text(json.dumps(seed(nowhere, nowhere, nowhere)))
    options = EmbeddedOptions.against_sandboxes(data_dir, nowhere, data_dir / "seed.json", log_level="ERROR")
    async with EmbeddedRuntime(options) as runtime:
        partial = ready_file.with_name(ready_file.name + ".partial")
        partial.write_text(json.dumps({"ingress": runtime.ingress_url}))
        partial.replace(ready_file)
        await stop.wait()


def start_product(
    src_root: Path | None, env_overrides: dict[str, str], work: Path
) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, **env_overrides}
    if src_root is not None:
        # ahead of the venv's editable paths, so the other checkout's packages are imported
        env["PYTHONPATH"] = os.pathsep.join(str(src_root / d) for d in SRC_DIRS)
    ready = work / "ready.json"
    command = [
        sys.executable,
        __file__,
        "--serve",
        "--data-dir",
        str(work / "data"),
        "--ready-file",
        str(ready),
    ]
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 60
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the product did not start")
        time.sleep(0.1)
    return process, json.loads(ready.read_text())["ingress"]


# -- a minimal keep-alive HTTP/1.1 client ----------------------------------------------------
class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> tuple[int, dict[str, str]]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers

    def close(self) -> None:
        self.writer.close()


@dataclass
class Pool:
    host: str
    port: int
    limit: int
    idle: list[Connection] = field(default_factory=list)
    opened: int = 0
    waiters: asyncio.Queue[Connection] = field(default_factory=asyncio.Queue)

    async def take(self) -> Connection:
        if self.idle:
            return self.idle.pop()
        if self.opened < self.limit:
            return await self.fresh()
        return await self.waiters.get()

    async def fresh(self) -> Connection:
        self.opened += 1
        try:
            return Connection(*await asyncio.open_connection(self.host, self.port))
        except OSError:
            self.opened -= 1
            raise

    def give(self, connection: Connection) -> None:
        if self.waiters._getters:  # type: ignore[attr-defined]  # someone is waiting: hand it over
            self.waiters.put_nowait(connection)
        else:
            self.idle.append(connection)

    def drop(self, connection: Connection) -> None:
        connection.close()
        self.opened -= 1


# -- the load ---------------------------------------------------------------------------------
@dataclass
class Second:
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    timeouts: int = 0
    errors: int = 0
    latencies: list[float] = field(default_factory=list)
    health: list[float] = field(default_factory=list)
    retry_after: set[str] = field(default_factory=set)
    send_lag: float = 0.0
    error_types: set[str] = field(default_factory=set)
    cpu: dict[str, float] = field(default_factory=dict)


def webhook_request(base: str, n: int, host_header: str) -> bytes:
    url = f"{base}/twilio/voice"
    params = {
        "CallSid": f"CA{n:032x}",
        "AccountSid": ACCOUNT_SID,
        "From": "+14155550100",
        "To": SUPPORT_LINE,
        "CallStatus": "ringing",
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
    }
    body = urlencode(params).encode()
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    return (
        f"POST /twilio/voice HTTP/1.1\r\nHost: {host_header}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def offer(pool: Pool, raw: bytes, due: float, bucket: Second) -> None:
    connection: Connection | None = None
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            connection = await pool.take()
            try:
                status, headers = await connection.request(raw)
            except (ConnectionError, asyncio.IncompleteReadError):
                # the server closed an idle keep-alive connection: once more on a new one, as
                # HTTP clients do
                pool.drop(connection)
                connection = None
                connection = await pool.fresh()
                status, headers = await connection.request(raw)
    except TimeoutError:
        bucket.timeouts += 1
        if connection is not None:
            pool.drop(connection)
        return
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        bucket.errors += 1
        bucket.error_types.add(type(exc).__name__)
        if connection is not None:
            pool.drop(connection)
        return
    bucket.statuses[status] += 1
    if status == 200:
        bucket.latencies.append(time.monotonic() - due)
    if "retry-after" in headers:
        bucket.retry_after.add(headers["retry-after"])
    pool.give(connection)


async def probe_health(
    host: str, port: int, seconds: dict[int, Second], start: float, stop: asyncio.Event
) -> None:
    """``GET /healthz`` four times a second on a connection of its own; a probe that fails or
    takes longer than Twilio would wait counts as infinitely slow."""
    raw = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    connection: Connection | None = None
    while not stop.is_set():
        sent = time.monotonic()
        status = 0
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                if connection is None:
                    connection = Connection(*await asyncio.open_connection(host, port))
                status, _ = await connection.request(raw)
        except (OSError, asyncio.IncompleteReadError):  # TimeoutError is an OSError
            if connection is not None:
                connection.close()
            connection = None
        took = time.monotonic() - sent
        seconds[int(sent - start)].health.append(took if status == 200 else float("inf"))
        await asyncio.sleep(max(0.0, 0.25 - took))
    if connection is not None:
        connection.close()


def cpu_seconds(pid: int | str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def sample_cpu(product: int, seconds: dict[int, Second], start: float, stop: asyncio.Event) -> None:
    """Each second's CPU use of the product and of this generator, in % of one core."""

    loop = asyncio.get_running_loop()
    last = {"product": cpu_seconds(product), "generator": cpu_seconds("self")}
    then = loop.time()
    while not stop.is_set():
        await asyncio.sleep(1.0)
        now = {"product": cpu_seconds(product), "generator": cpu_seconds("self")}
        elapsed = loop.time() - then
        bucket = seconds[int(then - start)] if then >= start else Second()
        bucket.cpu = {k: round(100 * (now[k] - last[k]) / elapsed) for k in now}
        last, then = now, loop.time()


async def drive(
    base: str, phases: list[tuple[str, float, float]], connections: int, product: int
) -> tuple[dict[int, Second], list[tuple[str, int, int]]]:
    """Offer each phase's rate for its duration; returns per-second buckets and phase bounds."""

    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pool = Pool(host, port, connections)
    seconds: dict[int, Second] = defaultdict(Second)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5
    stop = asyncio.Event()
    health = asyncio.create_task(probe_health(host, port, seconds, start, stop))
    cpu = asyncio.create_task(sample_cpu(product, seconds, start, stop))
    tasks: set[asyncio.Task[None]] = set()
    bounds: list[tuple[str, int, int]] = []
    at, n = start, 0
    for name, rate, duration in phases:
        bounds.append((name, int(at - start), int(at - start + duration)))
        end = at + duration
        while at < end:
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            bucket = seconds[int(at - start)]
            bucket.sent += 1
            bucket.send_lag = max(bucket.send_lag, loop.time() - at)
            task = asyncio.create_task(offer(pool, webhook_request(base, n, parts.netloc), at, bucket))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            n += 1
            at += 1.0 / rate
    if tasks:
        await asyncio.wait(tasks)
    stop.set()
    await health
    await cpu
    return seconds, bounds


# -- the report -------------------------------------------------------------------------------
def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def healthy(second: Second, target: float) -> bool:
    ok = second.statuses.get(200, 0)
    return second.sent > 0 and ok == second.sent and quantile(second.latencies, 0.99) < target


def summarize(
    seconds: dict[int, Second], bounds: list[tuple[str, int, int]], target_ms: float
) -> dict[str, object]:
    rows = []
    for t in range(0, max(seconds) + 1):
        s = seconds[t]
        phase = next((name for name, lo, hi in bounds if lo <= t < hi), "drain")
        rows.append(
            {
                "t": t,
                "phase": phase,
                "sent": s.sent,
                "statuses": dict(s.statuses),
                "timeouts": s.timeouts,
                "errors": s.errors,
                "p50_ms": round(quantile(s.latencies, 0.5) * 1000, 1),
                "p99_ms": round(quantile(s.latencies, 0.99) * 1000, 1),
                "health_max_ms": round(max(s.health, default=float("nan")) * 1000, 1),
                "retry_after": sorted(s.retry_after),
                "send_lag_ms": round(s.send_lag * 1000, 1),
                "error_types": sorted(s.error_types),
                "cpu_percent": s.cpu,
            }
        )

    def phase_stats(name: str) -> dict[str, object]:
        lo, hi = next((lo, hi) for n, lo, hi in bounds if n == name)
        picked = [seconds[t] for t in range(lo, hi)]
        statuses: dict[int, int] = defaultdict(int)
        for s in picked:
            for code, count in s.statuses.items():
                statuses[code] += count
        latencies = [x for s in picked for x in s.latencies]
        health = [x for s in picked for x in s.health]
        return {
            "sent": sum(s.sent for s in picked),
            "statuses": dict(statuses),
            "timeouts": sum(s.timeouts for s in picked),
            "errors": sum(s.errors for s in picked),
            "p50_ms": round(quantile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(quantile(latencies, 0.99) * 1000, 1),
            "health_p99_ms": round(quantile(health, 0.99) * 1000, 1),
            "health_max_ms": round(max(health, default=float("nan")) * 1000, 1),
            "health_failed": sum(1 for x in health if x == float("inf")),
        }

    phases = {name: phase_stats(name) for name, _, _ in bounds}
    # back to normal: p99 under the target, or near what it was before the flood if that was slower
    before_p99 = float(phases["before"]["p99_ms"])  # type: ignore[arg-type]
    threshold_ms = max(target_ms, 1.5 * before_p99) if before_p99 == before_p99 else target_ms
    flood_end = next(hi for name, _, hi in bounds if name == "overload")
    last = max(hi for _, _, hi in bounds)
    recovered_at = None
    for t in range(flood_end, last - RECOVERED_SECONDS + 1):
        if all(healthy(seconds[u], threshold_ms / 1000) for u in range(t, t + RECOVERED_SECONDS)):
            recovered_at = t
            break
    return {
        "rows": rows,
        "phases": phases,
        "recovery_threshold_p99_ms": round(threshold_ms, 1),
        "recovery_seconds": None if recovered_at is None else recovered_at - flood_end,
        "target_p99_ms": target_ms,
    }


def print_report(summary: dict[str, Any]) -> None:
    print(
        f"{'t':>4} {'phase':<9} {'sent':>5} {'200':>5} {'503':>5} {'other':>5} {'t/o':>5} {'p50ms':>8} "
        f"{'p99ms':>8} {'health':>8} {'lag':>6} {'cpu':>5} {'gen':>4}"
    )
    for row in summary["rows"]:
        statuses = row["statuses"]
        other = sum(v for k, v in statuses.items() if k not in (200, 503)) + row["errors"]
        print(
            f"{row['t']:>4} {row['phase']:<9} {row['sent']:>5} {statuses.get(200, 0):>5} {statuses.get(503, 0):>5} "
            f"{other:>5} {row['timeouts']:>5} {row['p50_ms']:>8} {row['p99_ms']:>8} {row['health_max_ms']:>8} "
            f"{row['send_lag_ms']:>6} {row['cpu_percent'].get('product', ''):>5} {row['cpu_percent'].get('generator', ''):>4}"
        )
    picked = ("phases", "recovery_threshold_p99_ms", "recovery_seconds")
    print(json.dumps({k: summary[k] for k in picked}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--src-root", type=Path, help="run the product from this checkout's sources")
    parser.add_argument("--base-rate", type=float, default=50.0, help="requests/s before and after")
    parser.add_argument("--overload-rate", type=float, default=500.0, help="requests/s of the flood")
    parser.add_argument("--before-seconds", type=float, default=10.0)
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    parser.add_argument("--after-seconds", type=float, default=40.0)
    parser.add_argument("--connections", type=int, default=4000, help="most connections the generator opens")
    parser.add_argument("--config-cache-seconds", default="5")
    parser.add_argument("--target-p99-ms", type=float, default=25.0)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the product's environment")
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args()
    if args.serve:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(serve(args.data_dir, args.ready_file))
        return
    env = {"VOICETICKET_CONFIG_CACHE_SECONDS": args.config_cache_seconds}
    env.update(dict(item.split("=", 1) for item in args.env))
    with tempfile.TemporaryDirectory(prefix="overload-") as work:
        process, base = start_product(args.src_root, env, Path(work))
        try:
            phases = [
                ("before", args.base_rate, args.before_seconds),
                ("overload", args.overload_rate, args.overload_seconds),
                ("after", args.base_rate, args.after_seconds),
            ]
            seconds, bounds = asyncio.run(drive(base, phases, args.connections, process.pid))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
    summary = summarize(seconds, bounds, args.target_p99_ms)
    summary["settings"] = {**vars(args), "src_root": str(args.src_root), "json": str(args.json), "env": env}
    print_report(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
