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
import logging
import secrets
import socket
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from voiceticket_analyzer.bootstrap import SERVICE as ANALYZER
from voiceticket_analyzer.settings import AnalyzerSettings
from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.service import consuming
from voiceticket_config_api.app import create_app as create_config_api
from voiceticket_config_api.settings import Settings as ConfigApiSettings
from voiceticket_ingress.bootstrap import SERVICE as INGRESS
from voiceticket_ingress.settings import IngressSettings
from voiceticket_jira_writer.bootstrap import SERVICE as JIRA_WRITER
from voiceticket_jira_writer.settings import JiraWriterSettings
from voiceticket_notifier.bootstrap import SERVICE as NOTIFIER
from voiceticket_notifier.settings import NotifierSettings
from voiceticket_transcriber.bootstrap import SERVICE as TRANSCRIBER
from voiceticket_transcriber.settings import TranscriberSettings

from .local_secrets import load_or_create

log = logging.getLogger(__name__)

DEFAULT_EGRESS = ("api.twilio.com", "api.openai.com", "*.atlassian.net", "api.atlassian.com")
SERVICES = (INGRESS.name, TRANSCRIBER.name, ANALYZER.name, JIRA_WRITER.name, NOTIFIER.name)


@dataclass
class EmbeddedOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    ingress_port: int = 8080
    config_api_port: int = 8085
    public_base_url: str | None = None
    """What Twilio calls; signatures depend on it. Defaults to http://host:ingress_port."""
    trusted_proxies: Sequence[str] | None = None
    """Peers whose X-Forwarded-* headers name the public URL; None: VOICETICKET_TRUSTED_PROXIES."""
    egress_allowed_hosts: Sequence[str] = DEFAULT_EGRESS
    seed_file: Path | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    log_level: str = "INFO"

    @classmethod
    def against_sandboxes(
        cls, data_dir: Path, twilio_url: str, seed_file: Path, **overrides: Any
    ) -> EmbeddedOptions:
        """Loopback ports picked freely, egress only to loopback, SMS to the Twilio sandbox: the
        settings of the demo, the benchmark and the tests."""

        settings: dict[str, Any] = {
            "ingress_port": 0,
            "config_api_port": 0,
            "egress_allowed_hosts": ["127.0.0.1"],
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

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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
    return RunningServer(server, task, f"http://{host}:{bound}")


@dataclass
class EmbeddedRuntime:
    """All services in this process. Use as ``async with EmbeddedRuntime(options) as runtime``."""

    options: EmbeddedOptions
    bus: EmbeddedEventBus = field(init=False)
    ingress_url: str = field(init=False, default="")
    config_api_url: str = field(init=False, default="")
    admin_token: SecretStr = field(init=False, default=SecretStr(""))
    _stack: AsyncExitStack = field(init=False, default_factory=AsyncExitStack)

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
        opts.data_dir.mkdir(parents=True, exist_ok=True)
        local = load_or_create(opts.data_dir)
        self.admin_token = SecretStr(local.admin_token)
        # Service tokens live only as long as the process: nothing outside it needs them.
        tokens = {name: secrets.token_urlsafe(24) for name in SERVICES}

        config_api = create_config_api(
            ConfigApiSettings(
                env="production",
                database_url=f"sqlite+aiosqlite:///{opts.data_dir / 'config-api.db'}",
                master_keys=SecretStr(local.master_key),
                admin_token=SecretStr(local.admin_token),
                service_tokens=SecretStr(",".join(f"{r}:{t}" for r, t in tokens.items())),
                seed_file=opts.seed_file,
            )
        )
        running = await serve(config_api, bind(opts.host, opts.config_api_port))
        self._stack.push_async_callback(self._shutdown, running)
        self.config_api_url = running.url

        self.bus = EmbeddedEventBus(opts.data_dir / "bus.db", source="voiceticket-embedded")
        await self.bus.start()
        self._stack.push_async_callback(self.bus.stop)

        # Bound before the consumers start: the notifier builds SMS StatusCallbacks on ingress's URL.
        ingress_socket = bind(opts.host, opts.ingress_port)
        public = opts.public_base_url or f"http://{opts.host}:{ingress_socket.getsockname()[1]}"
        shared: dict[str, Any] = {
            "config_api_url": self.config_api_url,
            "egress_allowed_hosts": list(opts.egress_allowed_hosts),
            "log_level": opts.log_level,
        }
        callback_key = SecretStr(local.callback_context_key)

        def token(service: str) -> SecretStr:
            return SecretStr(tokens[service])

        def database(service: str) -> str:
            return f"sqlite+aiosqlite:///{opts.data_dir / (service + '.db')}"

        # Each service's settings, as its own process would read them from the environment.
        consumers = [
            consuming(
                TRANSCRIBER,
                TranscriberSettings(
                    **shared,
                    config_api_token=token(TRANSCRIBER.name),
                    twilio_api_base_url=opts.twilio_api_base_url,
                ),
                self.bus,
            ),
            consuming(ANALYZER, AnalyzerSettings(**shared, config_api_token=token(ANALYZER.name)), self.bus),
            consuming(
                JIRA_WRITER,
                JiraWriterSettings(
                    **shared,
                    config_api_token=token(JIRA_WRITER.name),
                    database_url=database(JIRA_WRITER.name),
                    twilio_api_base_url=opts.twilio_api_base_url,
                ),
                self.bus,
            ),
            consuming(
                NOTIFIER,
                NotifierSettings(
                    **shared,
                    config_api_token=token(NOTIFIER.name),
                    database_url=database(NOTIFIER.name),
                    twilio_api_base_url=opts.twilio_api_base_url,
                    public_base_url=public,
                    callback_context_key=callback_key,
                ),
                self.bus,
            ),
        ]
        for consumer in consumers:
            await self._stack.enter_async_context(consumer)

        # None: ingress reads VOICETICKET_TRUSTED_PROXIES as its own process would.
        proxies: dict[str, Any] = (
            {} if opts.trusted_proxies is None else {"trusted_proxies": opts.trusted_proxies}
        )
        ingress_settings = IngressSettings(
            **shared,
            **proxies,
            config_api_token=token(INGRESS.name),
            public_base_url=public,
            callback_context_key=callback_key,
        )
        ingress = INGRESS.app(ingress_settings, self.bus)
        running = await serve(ingress, ingress_socket)
        self._stack.push_async_callback(self._shutdown, running)
        self.ingress_url = running.url
        log.info("embedded runtime started", extra={"ingress": self.ingress_url})

    @staticmethod
    async def _shutdown(running: RunningServer) -> None:
        running.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await running.task
