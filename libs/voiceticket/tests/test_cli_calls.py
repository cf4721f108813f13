"""``voiceticket calls list|show`` against a real config-api (uvicorn on loopback) whose calls view
follows an embedded event log holding two calls; exit codes as docs/cli.md says."""

# ruff: noqa: S105 - test credentials
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from voiceticket.cli import app
from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.events import Event, v1

TOKEN = "calls-cli-token-0123456789abcdef"
DONE = "CA" + "a" * 32
STUCK = "CA" + "b" * 32
CALLER = "+4915112345678"
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _events(sid: str, tenant: str, start: datetime, *, ticket: bool) -> list[Event]:
    ctx: dict[str, Any] = {"tenant_id": tenant, "call_sid": sid, "line_number": "+14155550100",
                           "caller_number": CALLER, "consent": "notice"}  # fmt: skip
    events: list[Event] = [v1.CallReceived(**ctx, account_sid="AC" + "1" * 32, occurred_at=start)]
    if ticket:
        events.append(
            v1.TicketCreated(
                **ctx,
                issue_key="SUP-9",
                issue_id="1",
                service_desk_id="1",
                request_type_id="10",
                summary="s",
                occurred_at=start + timedelta(seconds=5),
            )  # fmt: skip
        )
    return events


async def _publish(path: Path) -> None:
    bus = EmbeddedEventBus(path, "test")
    await bus.start()
    try:
        for event in [
            *_events(DONE, "acme", T0, ticket=True),
            *_events(STUCK, "globex", T0 + timedelta(minutes=1), ticket=False),
        ]:
            await bus.publish(event)
    finally:
        await bus.stop()


@pytest.fixture(scope="module")
def config_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn
    from cryptography.fernet import Fernet

    from voiceticket_config_api import Settings, create_app

    tmp = tmp_path_factory.mktemp("calls-cli")
    asyncio.run(_publish(tmp / "bus.db"))
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp / 'config.db'}",
        master_keys=f"k1:{Fernet.generate_key().decode()}",
        admin_token=TOKEN,
        event_log=tmp / "bus.db",
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:  # until the calls view followed the log
        assert thread.is_alive() and time.monotonic() < deadline
        if server.started:
            r = httpx.get(f"{url}/v1/calls", headers={"Authorization": f"Bearer {TOKEN}"})
            if r.status_code == 200 and len(r.json()["calls"]) == 2:
                break
        time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def run(url: str, *args: str, token: str = TOKEN) -> Any:
    return CliRunner().invoke(app, ["calls", *args, "--config-api-url", url, "--admin-token", token])


def test_list_prints_each_call_newest_first(config_api: str) -> None:
    result = run(config_api, "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["CALL", "TENANT", "RECEIVED", "PROGRESS"]
    assert lines[1].startswith(STUCK) and lines[2].startswith(DONE)
    assert "received+ transcribed. analyzed. request+ sms." in lines[2] and "SUP-9" in lines[2]
    assert CALLER not in result.output


def test_list_json_tenant_and_limit(config_api: str) -> None:
    result = run(config_api, "list", "--tenant", "acme", "--json")
    assert result.exit_code == 0, result.output
    page = json.loads(result.stdout)
    assert [c["call_sid"] for c in page["calls"]] == [DONE] and page["next"] is None
    first = json.loads(run(config_api, "list", "--limit", "1", "--json").stdout)
    assert [c["call_sid"] for c in first["calls"]] == [STUCK] and first["next"]
    second = json.loads(run(config_api, "list", "--limit", "1", "--before", first["next"], "--json").stdout)
    assert [c["call_sid"] for c in second["calls"]] == [DONE]


def test_show_prints_the_stages(config_api: str) -> None:
    result = run(config_api, "show", DONE)
    assert result.exit_code == 0, result.output
    assert "request_key  SUP-9" in result.stdout
    stages = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line.split()[:1]
              and line.split()[0] in ("received", "transcribed", "analyzed", "request", "sms")}  # fmt: skip
    assert stages == {"received": "done", "transcribed": "pending", "analyzed": "pending", "request": "done",
                      "sms": "pending"}  # fmt: skip
    shown = json.loads(run(config_api, "show", DONE, "--json").stdout)
    assert shown["call_sid"] == DONE and [s["name"] for s in shown["stages"]][0] == "received"


def test_exit_codes(config_api: str) -> None:
    unknown = run(config_api, "show", "CA" + "0" * 32)
    assert unknown.exit_code == 1 and "404" in unknown.output
    assert run(config_api, "show", "not-a-sid").exit_code == 2
    assert run(config_api, "list", "--limit", "0").exit_code == 2
    assert run(config_api, "list", token="wrong-token-0123456789").exit_code == 3
    assert run("http://127.0.0.1:1", "list").exit_code == 3
