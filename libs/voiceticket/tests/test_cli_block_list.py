"""``voiceticket block-list add|list|remove`` against a real config-api (uvicorn on loopback):
the number goes to config-api, the list shows only the hash's prefix; exit codes as docs/cli.md says."""

# ruff: noqa: S105 - test credentials
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from voiceticket.cli import app

TOKEN = "block-cli-token-0123456789abcdef"
CALLER = "+14155550123"


@pytest.fixture(scope="module")
def config_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn
    from cryptography.fernet import Fernet

    from voiceticket_config_api import Settings, create_app

    tmp: Path = tmp_path_factory.mktemp("block-cli")
    seed = tmp / "seed.json"
    seed.write_text(json.dumps({"tenants": [{"id": "acme", "name": "Acme", "jira_base_url": "https://acme.atlassian.net"}],
                                "lines": []}))  # fmt: skip
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp / 'config.db'}",
        master_keys=f"k1:{Fernet.generate_key().decode()}",
        admin_token=TOKEN,
        seed_file=seed,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def run(url: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["block-list", *args, "--config-api-url", url, "--admin-token", TOKEN])


def test_add_list_and_remove_by_number_and_by_id(config_api: str) -> None:
    added = run(config_api, "add", "acme", "--phone", CALLER, "--note", "spam", "--json")
    assert added.exit_code == 0, added.output
    entry = json.loads(added.stdout)
    assert entry["note"] == "spam" and CALLER.removeprefix("+") not in added.stdout

    listed = run(config_api, "list", "acme")
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.strip().splitlines()
    assert header.split() == ["ID", "CALLER", "NOTE", "CREATED"]
    assert row.split()[:3] == [str(entry["id"]), f"caller:{entry['subject_prefix']}", "spam"]

    assert run(config_api, "add", "acme", "--phone", CALLER).exit_code == 1  # blocked already (409)
    assert run(config_api, "remove", "acme", "--phone", CALLER).exit_code == 0
    assert json.loads(run(config_api, "list", "acme", "--json").stdout) == []
    again = json.loads(run(config_api, "add", "acme", "--phone", CALLER, "--json").stdout)
    assert run(config_api, "remove", "acme", "--id", str(again["id"])).exit_code == 0
    assert run(config_api, "remove", "acme", "--id", str(again["id"])).exit_code == 1  # gone (404)


def test_wrong_usage_and_refusals(config_api: str) -> None:
    assert run(config_api, "remove", "acme").exit_code == 2
    assert run(config_api, "remove", "acme", "--id", "1", "--phone", CALLER).exit_code == 2
    refused = run(config_api, "add", "acme", "--phone", "4155550123")
    assert refused.exit_code == 1 and "422" in refused.output
    assert run(config_api, "list", "globex").exit_code == 1  # unknown tenant (404)
