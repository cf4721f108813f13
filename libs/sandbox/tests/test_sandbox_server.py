"""``python -m voiceticket_sandbox serve`` runs all three stand-ins and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx


def test_serve_announces_urls_and_stops_on_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voiceticket_sandbox",
            "serve",
            "--host",
            "127.0.0.1",
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "sandbox did not announce readiness"
            time.sleep(0.05)
        urls = json.loads(ready.read_text())
        assert urls["openai_v1"] == urls["openai"] + "/v1"
        for name in ("twilio", "openai", "jira"):
            assert httpx.get(f"{urls[name]}/_sandbox/requests").json() == []
        assert httpx.get(f"{urls['openai_v1']}/_sandbox/requests").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)

    assert process.returncode == 0, stderr
    assert json.loads(stdout.splitlines()[0]) == urls
