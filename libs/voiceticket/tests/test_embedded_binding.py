"""Where ``voiceticket run`` listens: ingress on ``--host``, config-api on loopback unless told
otherwise (``--config-api-host``), and what config-api answers without a token."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime


def options(tmp_path: Path, **overrides: object) -> EmbeddedOptions:
    settings: dict[str, object] = {"ingress_port": 0, "config_api_port": 0, "log_level": "WARNING"}
    return EmbeddedOptions(data_dir=tmp_path, **(settings | overrides))  # type: ignore[arg-type]


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def non_loopback_address() -> str | None:
    """An address of this machine that is not loopback (the one a default route would use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
        except OSError:
            return None
        address: str = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def connects(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


async def test_config_api_stays_on_loopback_when_ingress_listens_everywhere(tmp_path: Path) -> None:
    async with EmbeddedRuntime(options(tmp_path, host="0.0.0.0")) as runtime:
        assert runtime.ingress_url.startswith("http://0.0.0.0:")
        assert runtime.config_api_url.startswith("http://127.0.0.1:")
        capi, ingress = port_of(runtime.config_api_url), port_of(runtime.ingress_url)
        assert connects("127.0.0.1", capi) and connects("127.0.0.1", ingress)
        other = non_loopback_address()
        if other is not None:  # on a machine with a network interface: config-api is not on it
            assert connects(other, ingress)
            assert not connects(other, capi)
        async with httpx.AsyncClient(base_url=runtime.config_api_url) as client:
            assert (await client.get("/openapi.json")).status_code == 401
            assert (await client.get("/docs")).status_code == 404
            admin = {"Authorization": f"Bearer {runtime.admin_token.get_secret_value()}"}
            assert (await client.get("/openapi.json", headers=admin)).status_code == 200
            assert (await client.get("/v1/tenants")).status_code == 401


async def test_config_api_listens_elsewhere_only_when_told(tmp_path: Path) -> None:
    async with EmbeddedRuntime(options(tmp_path, config_api_host="0.0.0.0")) as runtime:
        assert runtime.config_api_url.startswith("http://0.0.0.0:")
        assert runtime.ingress_url.startswith("http://127.0.0.1:")


def test_voiceticket_run_with_host_keeps_config_api_on_loopback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFIG_API_", "VOICETICKET_"))}
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voiceticket", "run", "--host", "0.0.0.0", "--port", "0",
             "--config-api-port", "0", "--data-dir", str(tmp_path / "data")],
            stderr=stderr, stdout=subprocess.DEVNULL, env=env,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "config-api: " not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"voiceticket run did not start: {log.read_text()}"
            time.sleep(0.1)
        lines = log.read_text().splitlines()
        [ingress] = [line for line in lines if line.startswith("ingress (Twilio webhooks): ")]
        [capi] = [line for line in lines if line.startswith("config-api: ")]
        assert ingress.startswith("ingress (Twilio webhooks): http://0.0.0.0:"), ingress
        assert capi.startswith("config-api: http://127.0.0.1:"), capi
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text()


@pytest.mark.parametrize("environment", ["prod", "staging"])
def test_voiceticket_run_refuses_an_unknown_environment(tmp_path: Path, environment: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFIG_API_", "VOICETICKET_"))}
    result = subprocess.run(
        [sys.executable, "-m", "voiceticket", "run", "--port", "0", "--config-api-port", "0",
         "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=env | {"VOICETICKET_ENVIRONMENT": environment},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "VOICETICKET_ENVIRONMENT must be one of development, test, production" in result.stderr


async def test_the_embedded_servers_sockets_send_small_answers_at_once(tmp_path: Path) -> None:
    """Connections accepted on ``bind``'s socket have TCP_NODELAY: asyncio sets it only when the
    socket says it is TCP, and without it each small answer waited ~40 ms on Nagle and the peer's
    delayed ACK (the embedded ingress and config-api paid that on every request)."""
    import asyncio

    from voiceticket.embedded import bind

    seen: list[int] = []

    async def accepted(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=bind("127.0.0.1", 0))
    try:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen and seen[0] != 0
