"""``voiceticket simulate-call`` follows the call (issue #13, point 5): exit 0 only when it became a
ticket, 1 when it did not, 2 when it cannot tell. Real sandboxes and the embedded runtime run in a
background thread; the command is the real subprocess."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from voiceticket.samples import sample_calls


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from voiceticket.demo import demo_seed
    from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
    from voiceticket_sandbox import run_sandboxes
    from voiceticket_sandbox.demo_tenant import SUPPORT_LINE, configure_sandboxes

    data_dir = tmp_path_factory.mktemp("runtime")
    ready = threading.Event()
    info: dict[str, Any] = {"data_dir": data_dir, "line": SUPPORT_LINE}
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None

    async def serve() -> None:
        nonlocal stop, loop
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        async with run_sandboxes() as urls:
            await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
            seed = data_dir / "seed.json"
            seed.write_text(json.dumps(demo_seed(urls.twilio, urls.openai, urls.jira, "stand_in")))
            options = EmbeddedOptions.against_sandboxes(data_dir, urls.twilio, seed)
            async with EmbeddedRuntime(options) as runtime:
                info.update(ingress=runtime.ingress_url, twilio=urls.twilio)
                ready.set()
                await stop.wait()

    def main() -> None:
        try:
            asyncio.run(serve())
        finally:
            ready.set()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(60) and "ingress" in info, "the runtime did not start"
    try:
        yield info
    finally:
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


def simulate(stack: dict[str, Any], *args: str, to: str | None = None) -> subprocess.CompletedProcess[str]:
    call = sample_calls()["vpn-outage"]
    command = ["simulate-call", "--audio", str(call.path), "--from", call.caller, "--to", to or stack["line"],
               "--transcript", call.transcript, "--ingress-url", stack["ingress"],
               "--twilio-sandbox-url", stack["twilio"], "--data-dir", str(stack["data_dir"]), *args]  # fmt: skip
    return subprocess.run([sys.executable, "-m", "voiceticket", *command], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_a_call_that_becomes_a_ticket_exits_0(stack: dict[str, Any]) -> None:
    result = simulate(stack, "--timeout", "60")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["outcome"] == "ticket" and out["call_sid"].startswith("CA")
    assert out["steps"][0].startswith("call.received") and "ticket.created.v1" in out["steps"]


def test_a_call_that_does_not_become_a_ticket_exits_1(stack: dict[str, Any]) -> None:
    result = simulate(stack, "--timeout", "3", to="+15005550009")  # no such line
    assert result.returncode == 1, (result.stdout, result.stderr)
    out = json.loads(result.stdout)
    assert out["outcome"] != "ticket" and "ticket.created.v1" not in out["steps"]
    assert result.stderr.strip().startswith("error: call ") and "did not become a ticket" in result.stderr


def test_without_a_bus_to_follow_it_exits_2_before_calling(stack: dict[str, Any], tmp_path: Path) -> None:
    call = sample_calls()["vpn-outage"]
    result = subprocess.run(
        [sys.executable, "-m", "voiceticket", "simulate-call", "--audio", str(call.path), "--from", call.caller,
         "--to", stack["line"], "--transcript", "x", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2 and "cannot follow the call" in result.stderr and not result.stdout
