"""``voiceticket tenants test ID`` (issue #13, point 5): each provider's own answer, exit 0 when
all pass, 1 when one fails (or the tenant is unknown), 3 when config-api is unreachable. The real
subprocess against a real config-api and the real stand-ins, served in a background thread."""

# ruff: noqa: S105 - test credentials
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ADMIN = "tenants-test-admin-token-0123456789"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from cryptography.fernet import Fernet

    from voiceticket.embedded import bind, serve
    from voiceticket_config_api import Settings, create_app
    from voiceticket_sandbox import run_sandboxes
    from voiceticket_sandbox.demo_tenant import configure_sandboxes, seed

    tmp = tmp_path_factory.mktemp("tenants-test")
    info: dict[str, Any] = {}
    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None

    async def main() -> None:
        nonlocal stop, loop
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        async with run_sandboxes() as urls:
            await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
            good = seed(urls.twilio, urls.openai, urls.jira)["tenants"][0]
            bad = {**good, "id": "wrong", "jira_api_token": "not-the-token-0123", "twilio_auth_token": "nope-0123",
                   "openai_api_key": "sk-not-the-key-0123456789"}  # fmt: skip
            (tmp / "seed.json").write_text(json.dumps({"tenants": [good, bad], "lines": []}))
            settings = Settings(
                _env_file=None, env="test", database_url=f"sqlite+aiosqlite:///{tmp / 'config.db'}",
                master_keys=f"k1:{Fernet.generate_key().decode()}", admin_token=ADMIN,
                seed_file=tmp / "seed.json", twilio_api_base_url=urls.twilio,
                egress_allowed_hosts=["http://127.0.0.1:*"],
            )  # fmt: skip
            running = await serve(create_app(settings), bind("127.0.0.1", 0))
            info["url"] = running.url
            ready.set()
            await stop.wait()
            running.server.should_exit = True
            await running.task

    def thread_main() -> None:
        try:
            asyncio.run(main())
        finally:
            ready.set()

    thread = threading.Thread(target=thread_main, daemon=True)
    thread.start()
    assert ready.wait(60) and "url" in info, "config-api and the stand-ins did not start"
    try:
        yield info["url"]
    finally:
        assert loop is not None and stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


def tenants_test(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voiceticket", "tenants", "test", *args, "--config-api-url", url,
         "--admin-token", ADMIN],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_tenant_whose_providers_all_answer_exits_0(api: str) -> None:
    result = tenants_test(api, "acme")
    assert result.returncode == 0, result.stderr
    rows = [line.split(maxsplit=2) for line in result.stdout.splitlines()]
    assert rows[0] == ["PROVIDER", "RESULT", "ANSWER"]
    assert [(r[0], r[1]) for r in rows[1:]] == [("jira", "ok"), ("twilio", "ok"), ("openai", "ok")]
    assert rows[1][2] == "200 OK: 1 service desk visible: HELP (4)"
    as_json = json.loads(tenants_test(api, "acme", "--json").stdout)
    assert [r["status"] for r in as_json["results"]] == [200, 200, 200]


def test_a_refused_credential_exits_1_with_the_providers_answers(api: str) -> None:
    result = tenants_test(api, "wrong")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "401 Unauthorized: Incorrect API key provided." in result.stdout
    assert result.stderr.strip() == "error: tenant wrong: jira, twilio, openai failed the connection test"
    assert "not-the" not in result.stdout + result.stderr and "nope-0123" not in result.stdout


def test_an_unknown_tenant_exits_1_and_an_unreachable_config_api_3(api: str) -> None:
    unknown = tenants_test(api, "nobody")
    assert (
        unknown.returncode == 1 and unknown.stderr.strip() == "error: config-api answered 404: unknown tenant"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = tenants_test(f"http://127.0.0.1:{closed}", "acme")
    assert down.returncode == 3 and down.stderr.startswith("error: config-api unreachable")
    assert len(down.stderr.strip().splitlines()) == 1


def test_a_read_only_token_is_refused_with_exit_3(api: str, tmp_path: Path) -> None:
    created = subprocess.run(
        [sys.executable, "-m", "voiceticket", "tokens", "create", "looker", "--scope", "read-only",
         "--config-api-url", api, "--admin-token", ADMIN],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "voiceticket", "tenants", "test", "acme", "--config-api-url", api,
         "--admin-token", created.stdout.strip()],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 3 and "token 'looker' is read-only" in refused.stderr
