"""Run the three stand-ins in one process, on three ports, sharing one ``SandboxState``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from voiceticket_sandbox.contracts import preload_specs
from voiceticket_sandbox.jira import create_jira_app
from voiceticket_sandbox.openai import create_openai_app
from voiceticket_sandbox.recorder import expose_transport
from voiceticket_sandbox.state import SandboxState
from voiceticket_sandbox.twilio import create_twilio_app

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxUrls:
    """Origins (``http://host:port``) of running sandboxes; control endpoints are at
    ``{origin}/_sandbox/...``. The OpenAI SDK wants ``openai_v1`` as its ``base_url``."""

    twilio: str
    openai: str
    jira: str

    @property
    def openai_v1(self) -> str:
        return f"{self.openai}/v1"

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "openai_v1": self.openai_v1})


class _Server(uvicorn.Server):
    # uvicorn would install its own SIGINT/SIGTERM handlers per server; with three servers in one
    # loop the last one wins, so the owner of the loop handles signals instead.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def run_sandboxes(
    host: str = "127.0.0.1",
    ports: tuple[int, int, int] = (0, 0, 0),
    state: SandboxState | None = None,
) -> AsyncIterator[SandboxUrls]:
    """Serve Twilio, OpenAI and Jira stand-ins on ``ports`` (0: any free port) until the block ends.

    A ``state`` with ``validate_requests`` off skips loading the specs too (the benchmark's)."""
    state = state or SandboxState()
    if state.validate_requests:
        await asyncio.to_thread(preload_specs)
    apps = (create_twilio_app(state), create_openai_app(state), create_jira_app(state))
    async with serve_apps(apps, host, ports) as (twilio, openai, jira):
        yield SandboxUrls(twilio=twilio, openai=openai, jira=jira)


@contextlib.asynccontextmanager
async def serve_app(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve any ASGI app (a fake ingress in a test, say) in this loop; yields its origin."""
    async with serve_apps([app], host, [port]) as (origin,):
        yield origin


@contextlib.asynccontextmanager
async def serve_apps(
    apps: Sequence[ASGIApp], host: str, ports: Sequence[int]
) -> AsyncIterator[tuple[str, ...]]:
    """Serve ``apps`` concurrently with uvicorn in the running loop; yields their origins."""
    servers = [
        _Server(
            uvicorn.Config(expose_transport(app), host=host, port=port, log_level="warning", lifespan="off")
        )
        for app, port in zip(apps, ports, strict=True)
    ]
    tasks = [asyncio.create_task(server.serve()) for server in servers]
    try:
        while not all(server.started for server in servers):
            failed = next((t for t in tasks if t.done()), None)
            if failed is not None:
                raise RuntimeError(f"a server did not start: {failed.exception()!r}")
            await asyncio.sleep(0.01)
        yield tuple(_origin(server, host) for server in servers)
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)


def _origin(server: uvicorn.Server, host: str) -> str:
    port = server.servers[0].sockets[0].getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve(
    host: str, ports: tuple[int, int, int], ready_file: Path | None = None, *, validate: bool = True
) -> None:
    """Run until SIGTERM or SIGINT; print the URLs as one JSON line once all three listen."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with run_sandboxes(host, ports, SandboxState(validate_requests=validate)) as urls:
        line = urls.to_json()
        if ready_file is not None:
            # write then rename, so a watcher never reads half a line
            partial = ready_file.with_name(ready_file.name + ".partial")
            partial.write_text(line + "\n")
            partial.replace(ready_file)
        print(line, flush=True)
        await stop.wait()
    logger.info("sandboxes stopped")
