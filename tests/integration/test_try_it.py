"""Trying it on one machine, as the README says (issue #13, point 6): ``voiceticket run
--with-sandboxes`` in one process, ``voiceticket simulate-call --sample`` in another; the call
becomes a request in the Jira stand-in, the connection test passes, and the logs are JSON lines
without ANSI codes (the output is not a terminal)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port(block: int = 1) -> int:
    """A port with ``block`` free ports from it (the stand-ins take three in a row)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + block > 65535:
            continue
        try:
            probes = [socket.socket() for _ in range(block)]
            for offset, sock in enumerate(probes):
                sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        finally:
            for sock in probes:
                sock.close()
        return base
    raise RuntimeError("no free block of ports")


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("try-it")
    data_dir = work / ".voiceticket"
    out, err = (work / "run.out").open("w+"), (work / "run.err").open("w+")
    env = {**os.environ, "VOICETICKET_LOG_FORMAT": "auto"}
    command = [sys.executable, "-m", "voiceticket", "run", "--with-sandboxes", "--data-dir", str(data_dir),
               "--port", str(free_port()), "--config-api-port", str(free_port()),
               "--sandbox-port", str(free_port(3))]  # fmt: skip
    process = subprocess.Popen(command, stdout=out, stderr=err, cwd=work, env=env)  # noqa: S603
    state = data_dir / "sandboxes.json"
    deadline = time.monotonic() + 120
    try:
        while not state.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                err.seek(0)
                pytest.fail(f"voiceticket run --with-sandboxes did not start: {err.read()[-3000:]}")
            time.sleep(0.2)
        time.sleep(0.5)  # the next steps are printed right after the file is written
        yield {"data_dir": data_dir, "work": work, "state": json.loads(state.read_text()), "out": out,
               "err": err, "process": process}  # fmt: skip
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def voiceticket(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voiceticket", *args], capture_output=True, text=True,
                          timeout=180, cwd=cwd)  # fmt: skip


def test_it_prints_where_everything_is_and_what_to_do_next(running: dict[str, Any]) -> None:
    running["err"].seek(0)
    said = running["err"].read()
    state = running["state"]
    assert f"admin page:                {state['config_api']}/admin" in said
    assert f"requests: {state['jira']}/_sandbox/issues" in said
    assert "voiceticket simulate-call --sample vpn-outage --data-dir" in said
    assert state["line"] == "+15005550006" and state["tenant"] == "acme"


def test_a_sample_call_becomes_a_request_in_the_jira_stand_in(running: dict[str, Any]) -> None:
    result = voiceticket("simulate-call", "--sample", "vpn-outage", "--data-dir", str(running["data_dir"]),
                         "--timeout", "120", cwd=running["work"])  # fmt: skip
    assert result.returncode == 0, (result.stdout, result.stderr)
    out = json.loads(result.stdout)
    key = out["request_key"]
    assert out["outcome"] == "ticket" and key.startswith("HELP-")
    assert f"became request {key}" in result.stderr
    issues = httpx.get(f"{running['state']['jira']}/_sandbox/issues").json()
    [issue] = [i for i in issues if i["key"] == key]
    assert issue["properties"]["voiceticket.call"]["callSid"] == out["call_sid"]


def test_the_demo_tenant_passes_the_connection_test(running: dict[str, Any]) -> None:
    result = voiceticket("tenants", "test", "acme", "--json", "--data-dir", str(running["data_dir"]),
                         "--config-api-url", running["state"]["config_api"], cwd=running["work"])  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert [(r["provider"], r["ok"], r["status"]) for r in results] == [
        ("jira", True, 200),
        ("twilio", True, 200),
        ("openai", True, 200),
    ]


def test_logs_are_json_lines_without_ansi_codes_when_not_on_a_terminal(running: dict[str, Any]) -> None:
    running["out"].seek(0)
    lines = [line for line in running["out"].read().splitlines() if line.strip()]
    assert lines, "the runtime logged nothing"
    for line in lines:
        assert "\x1b" not in line and "\\u001b" not in line
        assert isinstance(json.loads(line), dict)
