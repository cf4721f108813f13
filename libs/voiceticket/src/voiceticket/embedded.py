"""Embedded mode: all six services in one process over the durable SQLite bus.

The default when no Kafka is configured: a small team runs the product on one machine, a newcomer
tries it with no Java and no Kafka. The services are the same code as in the distributed
deployment; only the bus adapter and the databases differ. Restarting the process resumes every
call where it stopped: the bus redelivers what was not finished, and the ledgers keep the Jira
request and the SMS to one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import socket
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from voiceticket_analyzer.bootstrap import SERVICE as ANALYZER
from voiceticket_analyzer.settings import AnalyzerSettings
from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.sealing import Sealer, VaultCallKeys
from voiceticket_common.service import ConsumerService, Purger, consuming, purging
from voiceticket_common.settings import ServiceSettings
from voiceticket_config_api.app import create_app as create_config_api
from voiceticket_config_api.audit import AuditEvent, purge_audit
from voiceticket_config_api.calls_feed import attach_bus, purge_calls_view
from voiceticket_config_api.outbox import relaying
from voiceticket_config_api.settings import Settings as ConfigApiSettings
from voiceticket_ingress.bootstrap import SERVICE as INGRESS
from voiceticket_ingress.settings import IngressSettings
from voiceticket_jira_writer.bootstrap import SERVICE as JIRA_WRITER
from voiceticket_jira_writer.settings import JiraWriterSettings
from voiceticket_notifier.bootstrap import SERVICE as NOTIFIER
from voiceticket_notifier.settings import NotifierSettings
from voiceticket_transcriber.bootstrap import SERVICE as TRANSCRIBER
from voiceticket_transcriber.settings import TranscriberSettings

from .data_dir import secure_data_dir
from .local_secrets import load_or_create

log = logging.getLogger(__name__)

DEFAULT_EGRESS = ("api.twilio.com", "api.openai.com", "*.atlassian.net", "api.atlassian.com")
SERVICES = (INGRESS.name, TRANSCRIBER.name, ANALYZER.name, JIRA_WRITER.name, NOTIFIER.name)
# Every database of the process, created private before SQLite opens it (data_dir.py).
DATA_FILES = (
    "bus.db",
    "config-api.db",
    *(f"{s.name}.db" for s in (TRANSCRIBER, ANALYZER, JIRA_WRITER, NOTIFIER)),
)


@dataclass
class EmbeddedOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    """Where ingress listens (Twilio's webhook target)."""
    ingress_port: int = 8080
    config_api_host: str = "127.0.0.1"
    """Where config-api listens: loopback unless told otherwise, whatever ``host`` is. Its admin
    API needs the admin token, but nothing outside this machine needs to reach it."""
    config_api_port: int = 8085
    public_base_url: str | None = None
    """What Twilio calls; signatures depend on it. Defaults to http://host:ingress_port."""
    trusted_proxies: Sequence[str] | None = None
    """Peers whose X-Forwarded-* headers name the public URL; None: VOICETICKET_TRUSTED_PROXIES."""
    egress_allowed_hosts: Sequence[str] = DEFAULT_EGRESS
    seed_file: Path | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    log_level: str = "INFO"
    purge_interval_seconds: float = 3600.0
    """How often the retention purge runs (``VOICETICKET_PURGE_INTERVAL_SECONDS`` for ``voiceticket run``)."""
    purge_first_delay_seconds: float = 60.0
    """The first purge runs this long after start (not at once: start-up stays quick)."""
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    """The purge's clock (injectable, so tests move time instead of waiting days)."""
    consume: bool = True
    """False: only what a one-off purge needs (config-api and the services' stores; no consumers,
    no ingress, no scheduled purge), for ``voiceticket purge`` beside or instead of a running one."""

    @classmethod
    def against_sandboxes(
        cls, data_dir: Path, twilio_url: str, seed_file: Path, **overrides: Any
    ) -> EmbeddedOptions:
        """Loopback ports picked freely, egress only to loopback, SMS to the Twilio sandbox: the
        settings of the demo, the benchmark and the tests."""

        settings: dict[str, Any] = {
            "ingress_port": 0,
            "config_api_port": 0,
            "egress_allowed_hosts": ["http://127.0.0.1:*"],
            "seed_file": seed_file,
            "twilio_api_base_url": twilio_url,
            "log_level": "WARNING",
        }
        return cls(data_dir=data_dir, **(settings | overrides))


@dataclass
class RunningServer:
    server: uvicorn.Server
    task: asyncio.Task[None]
    url: str


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``port`` (0 picks a free one)."""

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every small answer waits on Nagle and the peer's delayed ACK (~40 ms a request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


async def serve(app: FastAPI, sock: socket.socket) -> RunningServer:
    """Run uvicorn for ``app`` on a bound socket and wait until it listens."""

    host, bound = sock.getsockname()[:2]
    # proxy_headers off: ingress must see its direct peer to decide whether to trust forwarded headers
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", proxy_headers=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.02)
    return RunningServer(server, task, f"http://{f'[{host}]' if ':' in host else host}:{bound}")


@dataclass
class EmbeddedRuntime:
    """All services in this process. Use as ``async with EmbeddedRuntime(options) as runtime``."""

    options: EmbeddedOptions
    bus: EmbeddedEventBus = field(init=False)
    ingress_url: str = field(init=False, default="")
    config_api_url: str = field(init=False, default="")
    admin_token: SecretStr = field(init=False, default=SecretStr(""))
    purges: list[dict[str, Any]] = field(init=False, default_factory=list)
    """The reports of the purges run so far (scheduled or not), oldest first."""
    _stack: AsyncExitStack = field(init=False, default_factory=AsyncExitStack)
    _purgers: dict[str, Purger] = field(init=False, default_factory=dict)
    _config_api: FastAPI | None = field(init=False, default=None)
    _audit_retention_days: int = field(init=False, default=400)

    async def __aenter__(self) -> EmbeddedRuntime:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        opts = self.options
        secure_data_dir(opts.data_dir, DATA_FILES)
        local = load_or_create(opts.data_dir)
        self.admin_token = SecretStr(local.admin_token)
        # Service tokens live only as long as the process: nothing outside it needs them.
        tokens = {name: secrets.token_urlsafe(24) for name in SERVICES}

        config_api_settings = ConfigApiSettings(
            env="production",
            database_url=f"sqlite+aiosqlite:///{opts.data_dir / 'config-api.db'}",
            master_keys=SecretStr(local.master_key),
            admin_token=SecretStr(local.admin_token),
            service_tokens=SecretStr(",".join(f"{r}:{t}" for r, t in tokens.items())),
            seed_file=opts.seed_file,
            host=opts.config_api_host,
            port=opts.config_api_port if opts.consume else 0,
            # A caller's export and erasure search (and clean) this process's event log, and
            # may delete recordings at Twilio.
            event_log=opts.data_dir / "bus.db",
            twilio_api_base_url=opts.twilio_api_base_url,
            egress_allowed_hosts=list(opts.egress_allowed_hosts),
        )
        config_api = create_config_api(config_api_settings)
        self._config_api, self._audit_retention_days = config_api, config_api_settings.audit_retention_days
        host = opts.config_api_host if opts.consume else "127.0.0.1"
        running = await serve(config_api, bind(host, config_api_settings.port))
        self._stack.push_async_callback(self._shutdown, running)
        self.config_api_url = running.url

        # One bus for all six services: it seals with ingress's access to the call keys (ingress
        # starts calls, so it may create a call's key; every role may read them).
        keys = VaultCallKeys(self.config_api_url, SecretStr(tokens["ingress"]), creates=True)
        self._stack.push_async_callback(keys.aclose)
        self.bus = EmbeddedEventBus(
            opts.data_dir / "bus.db",
            source="voiceticket-embedded",
            retention=ServiceSettings().topic_retention(),  # VOICETICKET_*_RETENTION_HOURS
            sealer=Sealer(keys),
        )
        await self.bus.start()
        self._stack.push_async_callback(self.bus.stop)
        attach_bus(config_api, self.bus)  # the calls view's dead-letter replays go through this bus
        # config-api's outbox relayed onto this bus: config.changed drops the services' cached views.
        await self._stack.enter_async_context(relaying(config_api, self.bus))

        # Bound before the consumers start: the notifier builds SMS StatusCallbacks on ingress's URL.
        ingress_socket = bind(
            opts.host if opts.consume else "127.0.0.1", opts.ingress_port if opts.consume else 0
        )
        public = opts.public_base_url or f"http://{opts.host}:{ingress_socket.getsockname()[1]}"
        shared: dict[str, Any] = {
            "config_api_url": self.config_api_url,
            "egress_allowed_hosts": list(opts.egress_allowed_hosts),
            "log_level": opts.log_level,
        }
        callback_key = SecretStr(local.callback_context_key)

        def token(service: str) -> SecretStr:
            return SecretStr(tokens[service])

        def own(service: ConsumerService[Any, Any, Any]) -> dict[str, Any]:
            """The settings every consumer has, with its own token and database."""
            return {
                **shared,
                "config_api_token": token(service.name),
                "database_url": f"sqlite+aiosqlite:///{opts.data_dir / (service.name + '.db')}",
            }

        # Each service's settings, as its own process would read them from the environment.
        services: list[tuple[ConsumerService[Any, Any, Any], Any]] = [
            (
                TRANSCRIBER,
                TranscriberSettings(
                    **own(TRANSCRIBER),
                    twilio_api_base_url=opts.twilio_api_base_url,
                ),
            ),
            (
                ANALYZER,
                AnalyzerSettings(**own(ANALYZER)),
            ),
            (
                JIRA_WRITER,
                JiraWriterSettings(
                    **own(JIRA_WRITER),
                    twilio_api_base_url=opts.twilio_api_base_url,
                ),
            ),
            (
                NOTIFIER,
                NotifierSettings(
                    **own(NOTIFIER),
                    twilio_api_base_url=opts.twilio_api_base_url,
                    public_base_url=public,
                    callback_context_key=callback_key,
                ),
            ),
        ]
        if not opts.consume:
            ingress_socket.close()
            for service, settings in services:
                await self._stack.enter_async_context(purging(service, settings, self._purgers))
            return
        for service, settings in services:
            await self._stack.enter_async_context(consuming(service, settings, self.bus, self._purgers))
        purge_task = asyncio.create_task(self._purge_periodically(), name="retention-purge")
        self._stack.push_async_callback(_cancel, purge_task)

        # None: ingress reads VOICETICKET_TRUSTED_PROXIES as its own process would.
        proxies: dict[str, Any] = (
            {} if opts.trusted_proxies is None else {"trusted_proxies": opts.trusted_proxies}
        )
        ingress_settings = IngressSettings(
            **shared,
            **proxies,
            host=opts.host,
            port=ingress_socket.getsockname()[1],
            config_api_token=token(INGRESS.name),
            public_base_url=public,
            callback_context_key=callback_key,
        )
        ingress = INGRESS.app(ingress_settings, self.bus)
        running = await serve(ingress, ingress_socket)
        self._stack.push_async_callback(self._shutdown, running)
        self.ingress_url = running.url
        log.info("embedded runtime started", extra={"ingress": self.ingress_url})

    async def purge(self, now: datetime | None = None, *, dry_run: bool = False) -> dict[str, Any]:
        """Delete what is past its retention in every store of the process (the bus, each service's
        ledger, config-api's audit log); returns and logs the counts per store (no personal data)."""

        now = now or self.options.clock()
        removed: dict[str, dict[str, int]] = {"bus": (await self.bus.purge(now, dry_run=dry_run)).as_log()}
        for name, purger in list(self._purgers.items()):
            removed[name] = dict(await purger(now, dry_run))
        calls = await purge_calls_view(self._config_api, now, dry_run=dry_run) if self._config_api else 0
        removed["config-api"] = {"audit": await self._purge_audit(now, dry_run), "calls": calls}
        report = {"event": "retention purge", "store": "embedded", "dry_run": dry_run, "removed": removed}
        log.info("retention purge", extra={"dry_run": dry_run, "removed": removed})
        self.purges.append(report)
        return report

    async def _purge_audit(self, now: datetime, dry_run: bool) -> int:
        sessions = getattr(self._config_api.state, "sessions", None) if self._config_api else None
        if sessions is None:
            return 0
        if dry_run:
            cutoff = now - timedelta(days=self._audit_retention_days)
            async with sessions() as session:
                count = await session.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.at < cutoff)
                )
            return int(count or 0)
        return await purge_audit(sessions, now, retention_days=self._audit_retention_days)

    async def _purge_periodically(self) -> None:
        await asyncio.sleep(self.options.purge_first_delay_seconds)
        while True:
            try:
                await self.purge()
            except Exception:  # the next run tries again; consumers are not affected
                log.exception("retention purge failed")
            await asyncio.sleep(self.options.purge_interval_seconds)

    @staticmethod
    async def _shutdown(running: RunningServer) -> None:
        running.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await running.task


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def purge_data_dir(options: EmbeddedOptions, *, dry_run: bool = False) -> dict[str, Any]:
    """One purge of an embedded data directory (``voiceticket purge``), safe beside a running
    ``voiceticket run``: nothing is consumed, config-api answers on a free loopback port."""

    one_off = dataclasses.replace(options, consume=False)
    async with EmbeddedRuntime(one_off) as runtime:
        return await runtime.purge(dry_run=dry_run)
