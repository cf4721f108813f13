"""The benchmark suite: the product in its own processes, measured against same-run baselines.

Processes: the provider stand-ins (one process, OpenAPI validation off, per-provider latencies),
the load generator (``loadgen.py``, one process per measurement), a bare FastAPI endpoint (the
webhook baseline) and the product: the embedded runtime (``embedded_product.py``, one process) or
the six services as processes on a local Kafka broker (and Postgres when its binaries exist).
CPU and memory per process come from /proc; the harness's own are shown apart, never in the
product's figures.

    uv run --frozen python bench/suite.py --size modest          # report in bench/results/<date>.md
    uv run --frozen python bench/suite.py --size small --buses embedded --no-report   # correctness only

Sizes: ``small`` (CI: a few calls, correctness only), ``modest`` (~15 minutes on 2 cores),
``full`` (the issue's sizes: 5 repeats, a 1,000-call burst on both buses). Every figure is a
median over repeats with the load stated beside it, next to its baseline from the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import procstat
from report import write_report

from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE, configure_sandboxes
from voiceticket_sandbox.devstack import SandboxUrls, Stack, start_sandbox_process
from voiceticket_sandbox.processes import ServiceProcess, free_port

# The product's default consumer window (the burst keeps it); read here, never imported from
# the product, whose checkout may be another's ("before").
DEFAULT_MAX_IN_FLIGHT = 16

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

# Realistic provider latencies (seconds) per stage, and the stand-in path each stage is.
STAGES: dict[str, tuple[str, str, str, float]] = {
    "speech-to-text": ("openai", "POST", r"/audio/transcriptions$", 1.5),
    "llm": ("openai", "POST", r"/chat/completions$", 2.0),
    "jira-create": ("jira", "POST", r"/rest/servicedeskapi/request$", 0.4),
    "sms": ("twilio", "POST", r"/Messages\.json$", 0.2),
}
IDEAL_CALL_S = sum(stage[3] for stage in STAGES.values())  # 4.1 s: the floor for one call
# The burst limits (calls at once per provider); the tenant's provider_concurrency.
BURST_LIMITS: dict[str, int | None] = {"speech_to_text": 8, "llm": 8, "jira": 4, "sms": 4}
_LIMITED_STAGE = {"speech_to_text": "speech-to-text", "llm": "llm", "jira": "jira-create", "sms": "sms"}
# The other sections measure the product's own concurrency, not a tenant's flow control: no
# provider limit (null: unlimited) and consumers that may hold this many records at once.
UNLIMITED: dict[str, int | None] = dict.fromkeys(BURST_LIMITS)
OPEN_MAX_IN_FLIGHT = 256


@dataclass(frozen=True)
class Size:
    repeats: int
    webhook_rates: tuple[int, ...]
    webhook_seconds: float
    pipeline_calls: tuple[int, ...]
    saturation_calls: int
    burst_calls: int
    burst_buses: tuple[str, ...]
    profile_calls: int
    deadline_s: float


SIZES = {
    "small": Size(1, (20,), 2.0, (3,), 6, 8, ("embedded",), 4, 90.0),
    "modest": Size(2, (50, 200, 500), 4.0, (1, 10, 50, 200), 150, 200, ("embedded", "kafka"), 100, 150.0),
    "full": Size(5, (50, 200, 500), 10.0, (1, 10, 50, 200), 500, 1000, ("embedded", "kafka"), 300, 600.0),
}


@dataclass(frozen=True)
class Setup:
    """How a product is configured for a section: the demo tenant's ``provider_concurrency``
    (seeded) and ``VOICETICKET_MAX_IN_FLIGHT`` of every product process (None: the default)."""

    provider_concurrency: dict[str, int | None] | None
    max_in_flight: int | None

    def overrides(self) -> dict[str, Any]:
        return (
            {} if self.provider_concurrency is None else {"provider_concurrency": self.provider_concurrency}
        )

    def env(self) -> dict[str, str]:
        return {} if self.max_in_flight is None else {"VOICETICKET_MAX_IN_FLIGHT": str(self.max_in_flight)}

    def describe(self) -> dict[str, Any]:
        return {
            "provider_concurrency": self.provider_concurrency,
            "max_in_flight": self.max_in_flight or DEFAULT_MAX_IN_FLIGHT,
        }


@dataclass
class Product:
    """One running product: its ingress, its processes by name, the stand-ins it talks to."""

    bus: str
    ingress: str
    sandbox: SandboxUrls
    pids: dict[str, int]
    harness_pids: dict[str, int]
    stop: Any = field(repr=False)


# -- processes ----------------------------------------------------------------------------------
def _wait_file(path: Path, proc: ServiceProcess, deadline: float) -> dict[str, Any]:
    while not path.exists():
        if proc.process is None or proc.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{proc.name} did not start:\n{proc.tail()}")
        time.sleep(0.1)
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _bench_process(name: str, module: str, args: list[str], workdir: Path, python: str) -> ServiceProcess:
    env = {"PYTHONPATH": str(BENCH) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = ServiceProcess(name, module, env, workdir, args=args, python=python)
    proc.start()
    return proc


def _pid(proc: ServiceProcess) -> int:
    assert proc.process is not None
    return proc.process.pid


@contextlib.contextmanager
def bare_endpoint(workdir: Path) -> Iterator[str]:
    ready = workdir / "bare.json"
    proc = _bench_process("bare", "bare_endpoint", ["--port", str(free_port()), "--ready-file", str(ready)],
                          workdir, sys.executable)  # fmt: skip
    try:
        url = str(_wait_file(ready, proc, time.monotonic() + 60)["url"])
        for _ in range(100):
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(url + "/", timeout=1)
                break
            time.sleep(0.1)
        yield url
    finally:
        proc.stop()


@contextlib.contextmanager
def embedded_product(
    workdir: Path,
    python: str,
    overrides: dict[str, Any] | None = None,
    profile_to: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Product]:
    deadline = time.monotonic() + 120
    sandbox_proc, urls = start_sandbox_process(workdir, deadline, validate=False)
    product: ServiceProcess | None = None
    try:
        import asyncio

        asyncio.run(configure_sandboxes(urls.twilio, urls.openai, urls.jira))
        ready = workdir / "embedded.json"
        args = ["--sandbox", json.dumps({"twilio": urls.twilio, "openai": urls.openai, "jira": urls.jira}),
                "--data-dir", str(workdir / "data"), "--ready-file", str(ready),
                "--tenant-overrides", json.dumps(overrides or {})]  # fmt: skip
        product = ServiceProcess(
            "embedded",
            "embedded_product",
            {
                "PYTHONPATH": str(BENCH),
                **({"VOICETICKET_BENCH_PROFILE": str(profile_to)} if profile_to else {}),
                **(env or {}),
            },
            workdir,
            args=args,
            python=python,
        )
        product.start()
        info = _wait_file(ready, product, deadline)
        yield Product(
            "embedded",
            info["ingress"],
            urls,
            {"embedded": _pid(product)},
            {"stand-ins": _pid(sandbox_proc)},
            product.stop,
        )
    finally:
        if product is not None:
            product.stop(timeout=60)
        sandbox_proc.stop()


@contextlib.contextmanager
def kafka_product(
    workdir: Path,
    python: str,
    bootstrap: str,
    postgres: str | None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Product]:
    stack = Stack(
        workdir,
        bootstrap,
        postgres,
        validate_sandbox=False,
        python=python,
        seed_overrides=overrides or {},
        extra_env=env or {},
        # Each stack its own databases: the burst's config-api must not find the main stack's
        # vault secret, wrapped under another master key.
        database_prefix=f"{workdir.name.replace('-', '_')}_{secrets.token_hex(3)}_",
    )
    try:
        stack.start(timeout=240)
        pids = {n: _pid(p) for n, p in stack.processes.items() if n != "sandbox"}
        yield Product("kafka", stack.ingress_url, stack.sandbox, pids,
                      {"stand-ins": _pid(stack.processes["sandbox"])}, stack.stop)  # fmt: skip
    finally:
        stack.stop()


@contextlib.contextmanager
def infrastructure(buses: tuple[str, ...]) -> Iterator[tuple[str | None, str | None, dict[str, int]]]:
    """A Kafka broker (``KAFKA_BOOTSTRAP_SERVERS`` or a local one) and Postgres when available."""
    if "kafka" not in buses:
        yield None, None, {}
        return
    from voiceticket_sandbox.kafka_broker import LocalKafkaBroker
    from voiceticket_sandbox.postgres import PostgresUnavailable, throwaway_postgres

    with contextlib.ExitStack() as stack:
        infra: dict[str, int] = {}
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = stack.enter_context(LocalKafkaBroker())
            bootstrap = broker.bootstrap_servers
            if broker.pid:
                infra["kafka-broker"] = broker.pid
        postgres = os.environ.get("VOICETICKET_TEST_POSTGRES_DSN")
        if not postgres:
            try:
                postgres = stack.enter_context(throwaway_postgres())
            except PostgresUnavailable:
                postgres = None  # each service gets a SQLite file, as in the demo
        yield bootstrap, postgres, infra


# -- stand-in latencies -------------------------------------------------------------------------
def set_latencies(urls: SandboxUrls, realistic: bool) -> None:
    """Per-stage delays (realistic) or none; either way one fault per stage counts its peak
    concurrency, which is what the burst checks the provider limits with."""
    for origin in (urls.twilio, urls.openai, urls.jira):
        httpx.delete(f"{origin}/_sandbox/faults").raise_for_status()
    for service, method, path, delay in STAGES.values():
        spec = {
            "method": method,
            "path_regex": path,
            "delay_seconds": delay if realistic else 0.0,
            "times": None,
        }
        httpx.post(f"{getattr(urls, service)}/_sandbox/faults", json=spec).raise_for_status()


def peaks(faults: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    found = {}
    for stage, (service, _, path, _) in STAGES.items():
        for fault in faults.get(service, []):
            if fault["path_regex"] == path:
                found[stage] = int(fault["peak_in_flight"])
    return found


# -- the load generator -------------------------------------------------------------------------
def loadgen(job: dict[str, Any], workdir: Path) -> tuple[dict[str, Any], float]:
    """Run one job in a fresh generator process; (its result, the generator's own CPU seconds)."""
    job_file, result_file = workdir / "job.json", workdir / "result.json"
    job_file.write_text(json.dumps(job))
    result_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "loadgen.py"), str(job_file), str(result_file)],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "loadgen.log").open("ab"),
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}); see {workdir / 'loadgen.log'}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result, usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


# -- sections -----------------------------------------------------------------------------------
class Suite:
    def __init__(self, size: Size, workdir: Path, python: str, log: Any) -> None:
        self.size, self.workdir, self.python, self.log = size, workdir, python, log
        self.runs = 0

    def _job_dir(self) -> Path:
        self.runs += 1
        path = self.workdir / f"run-{self.runs:03d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def webhooks(self, product: Product, bare: str) -> list[dict[str, Any]]:
        rows = []
        for rate in self.size.webhook_rates:
            figures: dict[str, list[dict[str, Any]]] = {"product": [], "bare": []}
            for _ in range(self.size.repeats):
                for target, url in (("bare", bare), ("product", product.ingress)):
                    job = {"mode": "webhooks", "url": url, "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN,
                           "line": SUPPORT_LINE, "rate": rate, "duration_s": self.size.webhook_seconds}  # fmt: skip
                    before = procstat.cpu_seconds(product.pids)
                    result, _ = loadgen(job, self._job_dir())
                    after = procstat.cpu_seconds(product.pids)
                    lat = result["latencies_ms"]
                    figures[target].append(
                        {
                            "p50": percentile(lat, 50),
                            "p99": percentile(lat, 99),
                            "ok": result["statuses"].get("200", 0),
                            "sent": result["sent"],
                            "statuses": result["statuses"],
                            "cpu_ms_per_request": None
                            if target == "bare"
                            else round(
                                sum(after[n] - before[n] for n in after) * 1000 / max(result["sent"], 1), 3
                            ),
                        }
                    )
                    time.sleep(1.0)  # let the last one drain before the next load
            row: dict[str, Any] = {"bus": product.bus, "rate": rate, "seconds": self.size.webhook_seconds,
                   "repeats": self.size.repeats}  # fmt: skip
            for target in ("product", "bare"):
                runs = figures[target]
                row[target] = {
                    "p50_ms": median([r["p50"] for r in runs]),
                    "p99_ms": median([r["p99"] for r in runs]),
                    "p99_worst_ms": max((r["p99"] or 0) for r in runs),
                    "ok": sum(r["ok"] for r in runs),
                    "sent": sum(r["sent"] for r in runs),
                    "statuses": _merge([r["statuses"] for r in runs]),
                    "cpu_ms_per_request": median([r["cpu_ms_per_request"] for r in runs]),
                }
            rows.append(row)
            self.log(f"webhooks {product.bus} {rate}/s: {row['product']['p50_ms']} / {row['product']['p99_ms']} ms "
                     f"(bare {row['bare']['p50_ms']} / {row['bare']['p99_ms']})")  # fmt: skip
        return rows

    def calls(
        self,
        product: Product,
        count: int,
        realistic: bool,
        rate: float | None = None,
        deadline_s: float | None = None,
    ) -> dict[str, Any]:
        """One burst of ``count`` calls: drain, latencies, correctness, CPU per call per process;
        calls not done ``deadline_s`` after the first callback (default: the size's) count as not
        completed."""
        set_latencies(product.sandbox, realistic)
        job = {"mode": "calls", "ingress": product.ingress, "twilio": product.sandbox.twilio,
               "openai": product.sandbox.openai, "jira": product.sandbox.jira, "account_sid": ACCOUNT_SID,
               "auth_token": AUTH_TOKEN, "line": SUPPORT_LINE, "calls": count, "rate": rate,
               "deadline_s": deadline_s or self.size.deadline_s, "tag": self.runs}  # fmt: skip
        before = procstat.cpu_seconds(product.pids | product.harness_pids)
        result, generator_cpu = loadgen(job, self._job_dir())
        after = procstat.cpu_seconds(product.pids | product.harness_pids)
        cpu = {n: round((after[n] - before[n]) * 1000 / count, 2) for n in after}
        cpu["load generator"] = round(generator_cpu * 1000 / count, 2)
        first, last = result["first_callback_at"], result["last_sms_at"]
        drain = None if first is None or last is None or result["completed"] < count else last - first
        lat = result["latencies_s"]
        summary = {
            "bus": product.bus,
            "calls": count,
            "realistic": realistic,
            "completed": result["completed"],
            "exactly_one_sms": result["exactly_one_sms"],
            "exactly_one_ticket": result["exactly_one_ticket"],
            "duplicates": result["duplicates"],
            "callback_statuses": result.get("callback_statuses", {}),
            "incomplete": result.get("incomplete", []),
            "drain_s": drain,
            "latency_p50_s": percentile(lat, 50),
            "latency_p99_s": percentile(lat, 99),
            "cpu_ms_per_call": cpu,
            "peak_in_flight": peaks(result["faults"]),
        }
        self.log(f"{count} calls on {product.bus} ({'realistic' if realistic else 'zero'} latency): "
                 f"{result['completed']}/{count} done, drain {drain and round(drain, 2)} s")  # fmt: skip
        for call in summary["incomplete"]:
            self.log(f"  incomplete: {call}")
        return summary

    def pipeline(self, product: Product) -> list[dict[str, Any]]:
        rows = []
        for count in self.size.pipeline_calls:
            runs = [self.calls(product, count, realistic=True) for _ in range(self.size.repeats)]
            rows.append(_combine(runs, ideal=IDEAL_CALL_S))
        return rows

    def saturation(self, product: Product) -> dict[str, Any]:
        runs = [
            self.calls(product, self.size.saturation_calls, realistic=False) for _ in range(self.size.repeats)
        ]
        row = _combine(runs, ideal=None)
        drains = [r["drain_s"] for r in runs if r["drain_s"]]
        row["calls_per_s"] = median([self.size.saturation_calls / d for d in drains]) if drains else None
        return row

    def burst(self, product: Product) -> dict[str, Any]:
        count = self.size.burst_calls
        minimum = burst_minimum(count, BURST_LIMITS)
        # Time enough to tell a slow drain from a lost call, whatever --burst-calls asks for.
        row = self.calls(product, count, realistic=True, deadline_s=max(self.size.deadline_s, 3 * minimum))
        row["limits"] = BURST_LIMITS
        row["theoretical_min_s"] = minimum
        return row

    def memory(self, product: Product) -> dict[str, Any]:
        return {name: {"rss_mib": round(now, 1), "peak_mib": round(peak, 1)}
                for name, (now, peak) in procstat.memory(product.pids).items()}  # fmt: skip


def supports_provider_limits(python: str) -> bool:
    """Whether the product's config has a tenant ``provider_concurrency`` (issue #9, point 2)."""
    probe = (
        "import sys; from voiceticket_config_api.schemas import TenantCreate; "
        "sys.exit(0 if 'provider_concurrency' in TenantCreate.model_fields else 1)"
    )
    return (
        subprocess.run([python, "-c", probe], capture_output=True, check=False, timeout=120).returncode == 0
    )


def burst_minimum(count: int, limits: dict[str, int | None]) -> float:
    """The least time ``count`` calls can take when each limited stage serves ``limit`` at once:
    the slowest stage's waves of calls, plus the other stages once (the pipeline's fill)."""
    times = {}
    for key, stage in _LIMITED_STAGE.items():
        latency, limit = STAGES[stage][3], limits.get(key)
        times[stage] = (-(-count // limit) if limit else 1) * latency
    bottleneck = max(times, key=lambda s: times[s])
    return times[bottleneck] + sum(STAGES[s][3] for s in STAGES if s != bottleneck)


def _merge(counters: list[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for counter in counters:
        for key, value in counter.items():
            merged[key] = merged.get(key, 0) + value
    return merged


def _combine(runs: list[dict[str, Any]], ideal: float | None) -> dict[str, Any]:
    first = runs[0]
    row = {
        "bus": first["bus"],
        "calls": first["calls"],
        "repeats": len(runs),
        "completed": sum(r["completed"] for r in runs),
        "exactly_one_sms": sum(r["exactly_one_sms"] for r in runs),
        "exactly_one_ticket": sum(r["exactly_one_ticket"] for r in runs),
        "duplicates": sum(r["duplicates"] for r in runs),
        "callback_statuses": _merge([r.get("callback_statuses", {}) for r in runs]),
        "offered": first["calls"] * len(runs),
        "drain_s": median([r["drain_s"] for r in runs]),
        "drain_worst_s": max((r["drain_s"] or float("inf")) for r in runs),
        "latency_p50_s": median([r["latency_p50_s"] for r in runs]),
        "latency_p99_s": median([r["latency_p99_s"] for r in runs]),
        "cpu_ms_per_call": {
            n: median([r["cpu_ms_per_call"][n] for r in runs]) for n in first["cpu_ms_per_call"]
        },
        "peak_in_flight": first["peak_in_flight"],
        "ideal_s": ideal,
    }
    return row


def profile_summary(path: Path, top: int = 20) -> dict[str, Any]:
    """Where the product's CPU went: own time per package, and the top functions."""
    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1.0
    packages: dict[str, float] = {}
    functions = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in raw.items():
        package = _package(filename)
        packages[package] = packages.get(package, 0.0) + tottime
        functions.append((tottime, cumtime, calls, f"{_short(filename)}:{line}({name})"))
    functions.sort(reverse=True)
    return {
        "total_s": round(total, 2),
        "packages": sorted(
            ((p, round(t / total * 100, 1)) for p, t in packages.items()), key=lambda x: -x[1]
        )[:15],
        "functions": [(round(t * 1000), round(c * 1000), n, f) for t, c, n, f in functions[:top]],
    }


def _package(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C: json, hashing, sockets, sqlite3...)"
    parts = Path(filename).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    for marker in ("services", "libs"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) : parts.index(marker) + 2])
    if "python3" in " ".join(parts):
        lib = [p for p in parts if p.startswith("python3")]
        after = parts[parts.index(lib[-1]) + 1 :] if lib else parts[-1:]
        return f"stdlib {after[0].removesuffix('.py')}" if after else "stdlib"
    return parts[-1]


def _short(filename: str) -> str:
    parts = Path(filename).parts
    return "/".join(parts[-3:])


# -- the sibling benchmarks ---------------------------------------------------------------------
def sibling(name: str, code_root: Path | None, small: bool) -> dict[str, Any] | None:
    """Run ``bench/<name>.py`` when it exists (another engineer's part of the suite)."""
    script = BENCH / f"{name}.py"
    if not script.exists():
        return None
    args = [sys.executable, str(script), *SIBLING_ARGS[name][small]]
    if code_root is not None:  # the product's code is another checkout's
        args += [SIBLING_CODE_ROOT[name], str(code_root)]
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800, check=False, cwd=ROOT)
    return {
        "returncode": done.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "report": None,
        "stdout": done.stdout[-8000:],
        "stderr": done.stderr[-3000:],
        "command": " ".join(["python", f"bench/{name}.py", *args[2:]]),
    }


# Each sibling's own command line: (full, small); they print their report on stdout.
SIBLING_ARGS: dict[str, dict[bool, list[str]]] = {
    "transcriber_memory": {False: ["--minutes", "60"], True: ["--minutes", "2"]},
    "overload_recovery": {
        False: [],
        True: ["--before-seconds", "3", "--overload-seconds", "5", "--after-seconds", "8"],
    },
}
SIBLING_CODE_ROOT = {"transcriber_memory": "--code-root", "overload_recovery": "--src-root"}


# -- the run ------------------------------------------------------------------------------------
def run_suite(
    size: Size,
    buses: tuple[str, ...],
    python: str = sys.executable,
    sections: tuple[str, ...] = ("webhooks", "pipeline", "saturation", "burst", "profile", "siblings"),
    log: Any = print,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run the sections on each bus; the result the report is written from."""
    keep = workdir is not None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="voiceticket-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": size.__dict__,
        "buses": list(buses),
        "product_python": python,
        "cores": os.cpu_count(),
        "load_before": os.getloadavg(),
        "ideal_call_s": IDEAL_CALL_S,
        "stages": {k: v[3] for k, v in STAGES.items()},
    }
    suite = Suite(size, workdir, python, log)
    try:
        with infrastructure(buses) as (bootstrap, postgres, infra), bare_endpoint(workdir) as bare:
            results["postgres"] = postgres is not None
            for bus in buses:
                results[bus] = _run_bus(
                    suite, bus, bare, sections, workdir, python, bootstrap, postgres, infra
                )
        if "siblings" in sections:
            # <checkout>/.venv/bin/python: the siblings take the checkout's root instead
            code_root = None if python == sys.executable else Path(python).absolute().parents[2]
            for name in ("transcriber_memory", "overload_recovery"):
                log(f"running bench/{name}.py")
                results[name] = sibling(name, code_root, size.saturation_calls < 50)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


def _run_bus(
    suite: Suite,
    bus: str,
    bare: str,
    sections: tuple[str, ...],
    workdir: Path,
    python: str,
    bootstrap: str | None,
    postgres: str | None,
    infra: dict[str, int],
) -> dict[str, Any]:
    size = suite.size
    out: dict[str, Any] = {}

    limited = supports_provider_limits(python)
    # Webhooks, pipeline, saturation and profile: the product's own concurrency (no provider
    # limit, a deep consumer window); the burst: the limits and the default window.
    open_setup = Setup(UNLIMITED if limited else None, OPEN_MAX_IN_FLIGHT)
    burst_setup = Setup(BURST_LIMITS if limited else None, None)
    out["setup"] = {
        "main": open_setup.describe(),
        "burst": burst_setup.describe(),
        "limits_supported": limited,
    }

    def start(tag: str, setup: Setup, profile: Path | None = None) -> Any:
        where = workdir / f"{bus}-{tag}"
        where.mkdir(parents=True, exist_ok=True)
        if bus == "embedded":
            return embedded_product(where, python, setup.overrides(), profile, setup.env())
        assert bootstrap is not None
        return kafka_product(where, python, bootstrap, postgres, setup.overrides(), setup.env())

    with start("main", open_setup) as product:
        product.harness_pids |= {}
        time.sleep(2.0)
        out["memory_idle"] = suite.memory(product)
        if "webhooks" in sections:
            out["webhooks"] = suite.webhooks(product, bare)
        if "pipeline" in sections:
            out["pipeline"] = suite.pipeline(product)
        if "saturation" in sections:
            out["saturation"] = suite.saturation(product)
            out["saturation"]["infra_cpu_note"] = sorted(infra)
        out["memory_after_load"] = suite.memory(product)
    if "burst" in sections and size.burst_calls and bus in size.burst_buses:
        try:
            with start("burst", burst_setup) as product:
                out["burst"] = suite.burst(product)
                out["burst"]["limits_applied"] = limited
        except Exception as exc:  # one failed section must not lose the others' figures
            suite.log(f"burst on {bus} failed: {exc}")
            out["burst_error"] = str(exc)[:2000]
    if "profile" in sections and size.profile_calls and bus == "embedded":
        prof = workdir / "embedded.prof"
        with start("profile", open_setup, profile=prof) as product:
            out["profile_calls"] = size.profile_calls
            out["profile_run"] = suite.calls(product, size.profile_calls, realistic=False)
            product.stop(timeout=60)
        if prof.exists():
            out["profile"] = profile_summary(prof)
    return out


def correct(results: dict[str, Any]) -> list[str]:
    """Every call became exactly one ticket and one SMS: the problems, if any."""
    problems = []
    for bus in results["buses"]:
        rows = [*results[bus].get("pipeline", []), results[bus].get("saturation"), results[bus].get("burst")]
        for row in filter(None, rows):
            offered = row.get("offered", row["calls"])
            for key in ("completed", "exactly_one_sms", "exactly_one_ticket"):
                if row[key] != offered:
                    problems.append(f"{bus}, {row['calls']} calls: {key} {row[key]} of {offered}")
            if row["duplicates"]:
                problems.append(f"{bus}, {row['calls']} calls: {row['duplicates']} duplicates")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="modest")
    parser.add_argument("--buses", default="embedded,kafka", help="comma-separated: embedded, kafka")
    parser.add_argument("--sections", default="webhooks,pipeline,saturation,burst,profile,siblings")
    parser.add_argument("--burst-calls", type=int, help="the burst's size (default: the size's)")
    parser.add_argument("--repeats", type=int, help="repeats per figure (default: the size's)")
    parser.add_argument("--pipeline-calls", help="comma-separated simultaneous calls, e.g. 1,10,50,200")
    parser.add_argument("--webhook-rates", help="comma-separated requests per second, e.g. 50,200,500")
    parser.add_argument("--saturation-calls", type=int, help="calls offered at once with zero latency")
    parser.add_argument(
        "--product-python",
        default=sys.executable,
        help="the product's interpreter: another checkout's .venv/bin/python measures that code",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--report", type=Path, help=f"default: bench/results/{datetime.now(UTC):%Y-%m-%d}.md")
    parser.add_argument("--before", type=Path, help="raw results (--json) of a run of the old code")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--workdir", type=Path, help="keep logs and data here")
    args = parser.parse_args()
    size = SIZES[args.size]
    overrides: dict[str, Any] = {
        k: v
        for k, v in (
            ("burst_calls", args.burst_calls),
            ("repeats", args.repeats),
            ("saturation_calls", args.saturation_calls),
            ("pipeline_calls", args.pipeline_calls and tuple(int(n) for n in args.pipeline_calls.split(","))),
            ("webhook_rates", args.webhook_rates and tuple(int(n) for n in args.webhook_rates.split(","))),
        )
        if v
    }
    size = Size(**(size.__dict__ | overrides))
    buses = tuple(b for b in args.buses.split(",") if b)
    sections = tuple(s for s in args.sections.split(",") if s)

    def log(line: str) -> None:
        print(f"[{datetime.now():%H:%M:%S}] {line}", flush=True)

    results = run_suite(size, buses, args.product_python, sections, log, args.workdir)
    results["size_name"] = args.size
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    problems = correct(results)
    for problem in problems:
        log(f"NOT CORRECT: {problem}")
    if not args.no_report:
        report = args.report or BENCH / "results" / f"{datetime.now(UTC):%Y-%m-%d}.md"
        before = json.loads(args.before.read_text()) if args.before else None
        write_report(results, report, before)
        log(f"report: {report}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
