"""``python -m voiceticket_config_api`` serves for real and logs no phone numbers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
from config_api_testkit import ADMIN_TOKEN, NUMBER, SERVICE_TOKENS, auth, new_key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_module_entrypoint_serves(tmp_path, service_headers):
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CONFIG_API_")},
        "CONFIG_API_PORT": str(port),
        "CONFIG_API_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'c.db'}",
        "CONFIG_API_MASTER_KEYS": f"k1:{new_key()}",
        "CONFIG_API_ADMIN_TOKEN": ADMIN_TOKEN,
        "CONFIG_API_SERVICE_TOKENS": f"ingress:{SERVICE_TOKENS['ingress']}",
        "CONFIG_API_LOG_LEVEL": "DEBUG",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "voiceticket_config_api"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        r = httpx.get(f"{base}/v1/runtime/lines/{NUMBER}", headers=service_headers("ingress"))
        assert r.status_code == 404
        assert httpx.get(f"{base}/v1/lines", headers=auth(ADMIN_TOKEN)).json() == []
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    assert "GET /v1/runtime/lines/{number} 404" in output
    assert NUMBER not in output and "14155550100" not in output
    assert ADMIN_TOKEN not in output and SERVICE_TOKENS["ingress"] not in output
