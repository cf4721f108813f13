"""The whole product as separate processes on real infrastructure: Kafka, a database, sandboxes.

Used by the end-to-end tests and by ``make demo``. Postgres is used when a DSN is given (tests);
otherwise each stateful service gets its own SQLite file in the work directory (the demo).

``replicas`` runs several processes of a consumer service (one consumer group, as a deployment
scales them); the chaos suite kills, terminates and restarts them by name (:meth:`Stack.kill`,
:meth:`Stack.terminate`, :meth:`Stack.restart`). The first replica keeps the service's name, the
others are ``<name>-2``, ``<name>-3``, ...
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from cryptography.fernet import Fernet

from .demo_tenant import (  # noqa: F401 - re-exported for the tests
    ACCOUNT_SID,
    AUTH_TOKEN,
    JIRA_EMAIL,
    JIRA_TOKEN,
    OPENAI_KEY,
    REQUEST_TYPES,
    SERVICE_DESK_ID,
    SMS_FROM,
    SUPPORT_LINE,
    configure_sandboxes,
    seed,
)
from .processes import ServiceProcess, free_port

ROLES = ("ingress", "transcriber", "analyzer", "jira-writer", "notifier")


def replica_name(service: str, replica: int) -> str:
    """The process name of ``service``'s replica number ``replica`` (from 1)."""
    return service if replica == 1 else f"{service}-{replica}"


@dataclass
class SandboxUrls:
    twilio: str
    openai: str
    jira: str


def start_sandbox_process(
    workdir: Path, deadline: float, *, validate: bool = True
) -> tuple[ServiceProcess, SandboxUrls]:
    """The three provider sandboxes in their own process, as a deployment's neighbours would be.
    ``validate`` False skips the OpenAPI validation (benchmarks measure the product, not that)."""

    ready_file = workdir / "sandbox.json"
    ready_file.unlink(missing_ok=True)
    ports = [str(free_port()) for _ in range(3)]
    args = ["serve", "--host", "127.0.0.1", "--twilio-port", ports[0], "--openai-port", ports[1],
            "--jira-port", ports[2], "--ready-file", str(ready_file)]  # fmt: skip
    if not validate:
        args.append("--no-validate")
    proc = ServiceProcess("sandbox", "voiceticket_sandbox", {}, workdir, args=args)
    proc.start()
    while not ready_file.exists() or not ready_file.read_text().strip():
        if proc.process is None or proc.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"sandbox did not start:\n{proc.tail()}")
        time.sleep(0.2)
    urls = json.loads(ready_file.read_text())
    return proc, SandboxUrls(twilio=urls["twilio"], openai=urls["openai"], jira=urls["jira"])


@dataclass
class Stack:
    """Handles to a running stack; tests talk to it only over HTTP, like Twilio and agents do."""

    workdir: Path
    bootstrap_servers: str
    postgres_dsn: str | None = None
    sandbox: SandboxUrls = field(init=False)
    ingress_url: str = field(init=False)
    config_api_url: str = field(init=False)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    service_tokens: dict[str, str] = field(
        default_factory=lambda: {r: secrets.token_urlsafe(24) for r in ROLES}
    )
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    topic_namespace: str = field(default_factory=lambda: f"stack-{secrets.token_hex(4)}")
    validate_sandbox: bool = True
    """False: the stand-ins skip OpenAPI validation (the benchmark's stack)."""
    python: str = field(default_factory=lambda: sys.executable)
    """The services' interpreter (another checkout's virtualenv runs that code); the stand-ins
    always run with this one."""
    interpreter_args: dict[str, list[str]] = field(default_factory=dict)
    """Per service, arguments before ``-m module`` (a profiler, say)."""
    seed_overrides: dict[str, Any] = field(default_factory=dict)
    """Merged into the demo tenant of the config-api seed (e.g. provider limits)."""
    extra_lines: list[dict[str, Any]] = field(default_factory=list)
    """More lines in the seed: each is the demo support line with these fields over it (at least
    a ``number``)."""
    database_prefix: str = ""
    """Before each service's database name on the Postgres server: two stacks on one server need
    their own (a stack's config-api database holds secrets wrapped by that stack's master key)."""
    replicas: dict[str, int] = field(default_factory=dict)
    """Processes per service (default 1). Replicas share their service's database and consumer
    group; each has its own health port. Ingress takes one (its URL is the stack's)."""

    # -- start-up --------------------------------------------------------------------------
    def start(self, services: tuple[str, ...] = ("ingress", *ROLES[1:]), timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._start_sandbox(deadline)
        self._configure_sandbox()
        self._start_config_api(deadline)
        for name in services:
            self._start_service(name)
        for proc in self.processes.values():
            proc.wait_ready(deadline)

    def _spawn(self, name: str, module: str, env: dict[str, str], ready_url: str | None) -> ServiceProcess:
        proc = ServiceProcess(
            name,
            module,
            {**env, **self.extra_env},
            self.workdir,
            ready_url,
            python=self.python,
            interpreter_args=list(self.interpreter_args.get(name, [])),
        )
        proc.start()
        self.processes[name] = proc
        return proc

    def _start_sandbox(self, deadline: float) -> None:
        proc, self.sandbox = start_sandbox_process(self.workdir, deadline, validate=self.validate_sandbox)
        self.processes["sandbox"] = proc

    def _configure_sandbox(self) -> None:
        asyncio.run(configure_sandboxes(self.sandbox.twilio, self.sandbox.openai, self.sandbox.jira))

    def _database(self, name: str) -> str:
        if self.postgres_dsn is None:
            return f"sqlite+aiosqlite:///{self.workdir / name}.db"
        name = f"{self.database_prefix}{name}"

        async def create() -> None:
            conn = await asyncpg.connect(self.postgres_dsn)
            try:
                exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
                if not exists:
                    await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        base = self.postgres_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return f"{base}/{name}"

    def seed(self) -> dict[str, Any]:
        seeded = seed(self.sandbox.twilio, self.sandbox.openai, self.sandbox.jira)
        seeded["tenants"][0].update(self.seed_overrides)
        seeded["lines"] += [seeded["lines"][0] | extra for extra in self.extra_lines]
        return seeded

    def _start_config_api(self, deadline: float) -> None:
        seed = self.workdir / "seed.json"
        seed.write_text(json.dumps(self.seed()))
        port = free_port()
        self.config_api_url = f"http://127.0.0.1:{port}"
        proc = self._spawn(
            "config-api",
            "voiceticket_config_api",
            {
                "CONFIG_API_ENV": "test",
                "CONFIG_API_PORT": str(port),
                # Its own database per stack: each stack has its own master key, and what a
                # previous stack's key wrapped (the key vault's secret) would not open.
                "CONFIG_API_DATABASE_URL": self._database(
                    f"config_api_{self.topic_namespace.replace('-', '_')}"
                ),
                "CONFIG_API_MASTER_KEYS": f"k1:{Fernet.generate_key().decode()}",
                "CONFIG_API_ADMIN_TOKEN": self.admin_token,
                "CONFIG_API_SERVICE_TOKENS": ",".join(f"{r}:{t}" for r, t in self.service_tokens.items()),
                "CONFIG_API_SEED_FILE": str(seed),
                # A caller's export and erasure search the stack's topics, and may delete
                # recordings at the Twilio stand-in.
                "CONFIG_API_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
                "CONFIG_API_KAFKA_TOPIC_NAMESPACE": self.topic_namespace,
                "CONFIG_API_TWILIO_API_BASE_URL": self.sandbox.twilio,
                "CONFIG_API_EGRESS_ALLOWED_HOSTS": json.dumps(["http://127.0.0.1:*"]),
            },
            f"{self.config_api_url}/readyz",
        )
        proc.wait_ready(deadline)

    def _start_service(self, name: str) -> None:
        count = self.replicas.get(name, 1)
        if count < 1 or (name == "ingress" and count != 1):
            raise ValueError(f"{name}: {count} replicas (ingress runs exactly one)")
        for replica in range(1, count + 1):
            self._start_replica(name, replica_name(name, replica))

    def _start_replica(self, name: str, process_name: str) -> None:
        health = free_port()
        env = {
            "VOICETICKET_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "VOICETICKET_KAFKA_TOPIC_NAMESPACE": self.topic_namespace,
            "VOICETICKET_CONFIG_API_URL": self.config_api_url,
            "VOICETICKET_CONFIG_API_TOKEN": self.service_tokens[name],
            "VOICETICKET_EGRESS_ALLOWED_HOSTS": json.dumps(["http://127.0.0.1:*"]),
            "VOICETICKET_HEALTH_PORT": str(health),
        }
        ready = f"http://127.0.0.1:{health}/readyz"
        if name == "ingress":
            port = free_port()
            self.ingress_url = f"http://127.0.0.1:{port}"
            env |= {"VOICETICKET_PORT": str(port), "VOICETICKET_PUBLIC_BASE_URL": self.ingress_url}
            ready = f"{self.ingress_url}/readyz"
        if name == "transcriber":
            env["VOICETICKET_DATABASE_URL"] = self._database("transcriber")
            env["VOICETICKET_TWILIO_API_BASE_URL"] = self.sandbox.twilio
        if name == "analyzer":
            env["VOICETICKET_DATABASE_URL"] = self._database("analyzer")
        if name == "jira-writer":
            env["VOICETICKET_DATABASE_URL"] = self._database("jira_writer")
            env["VOICETICKET_TWILIO_API_BASE_URL"] = self.sandbox.twilio
        if name == "notifier":
            env["VOICETICKET_DATABASE_URL"] = self._database("notifier")
            env["VOICETICKET_TWILIO_API_BASE_URL"] = self.sandbox.twilio
        self._spawn(process_name, f"voiceticket_{name.replace('-', '_')}", env, ready)

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()

    # -- faults (the chaos suite) --------------------------------------------------------------
    def replicas_of(self, service: str) -> list[str]:
        """The process names of ``service``'s replicas, the first one first."""
        names = (replica_name(service, r) for r in range(1, self.replicas.get(service, 1) + 1))
        return [name for name in names if name in self.processes]

    def kill(self, name: str) -> None:
        """SIGKILL process ``name`` (a crash or an OOM kill: no shutdown code runs)."""
        self.processes[name].kill()

    def terminate(self, name: str, timeout: float = 30.0) -> None:
        """SIGTERM process ``name`` and wait for it to exit (SIGKILL after ``timeout``)."""
        self.processes[name].stop(timeout)

    def is_running(self, name: str) -> bool:
        process = self.processes[name].process
        return process is not None and process.poll() is None

    def restart(self, name: str, timeout: float = 120.0) -> None:
        """Start process ``name`` again with the same settings (ports, database, group) and wait
        until it is ready; stops it first (SIGTERM) if it still runs."""
        proc = self.processes[name]
        proc.stop()
        proc.start()
        proc.wait_ready(time.monotonic() + timeout)

    # -- observation -----------------------------------------------------------------------
    def topic(self, name: str) -> str:
        return f"{self.topic_namespace}.{name}"

    def issues(self) -> list[dict[str, Any]]:
        issues: list[dict[str, Any]] = httpx.get(f"{self.sandbox.jira}/_sandbox/issues").json()
        return issues

    def requests_to(self, provider: str) -> list[dict[str, Any]]:
        url = f"{getattr(self.sandbox, provider)}/_sandbox/requests"
        requests: list[dict[str, Any]] = httpx.get(url).json()
        return requests

    def sms_sent(self) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests_to("twilio")
            if r["method"] == "POST" and r["path"].endswith("/Messages.json")
        ]

    def logs(self) -> dict[str, str]:
        return {name: proc.log_text() for name, proc in self.processes.items()}

    def reset_sandbox_records(self) -> None:
        for url in (self.sandbox.twilio, self.sandbox.openai, self.sandbox.jira):
            httpx.post(f"{url}/_sandbox/reset")
