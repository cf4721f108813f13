"""The admin commands (issue #13, point 5) as an operator runs them: the real ``voiceticket``
subprocess against a real config-api (uvicorn on loopback), exit codes and one-line errors."""

# ruff: noqa: S105 - test credentials
from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BOOTSTRAP = "bootstrap-cli-token-0123456789abcdef"
SECRET = "sk-proj-CANARY-cli-openai-5f2e9d1c"
NEW_SECRET = "sk-proj-CANARY-cli-rotated-7a6b5c4d"
NUMBER = "+14155550100"
TENANT = {"id": "acme", "name": "Acme", "jira_base_url": "https://acme.atlassian.net"}
LINE = {"tenant_id": "acme", "service_desk_id": "1", "request_type_id": "10"}


def run(*args: str, token: str | None = BOOTSTRAP, url: str = "", stdin: str | None = None,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    extra = [*(["--config-api-url", url] if url else []), *(["--admin-token", token] if token else [])]
    return subprocess.run(
        [sys.executable, "-m", "voiceticket", *args, *extra],
        capture_output=True, text=True, timeout=60, input=stdin, cwd=cwd,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The command's error: exactly one line on stderr, never a traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def config_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A real config-api on a free loopback port; (its URL, its SQLite file)."""
    import uvicorn
    from cryptography.fernet import Fernet

    from voiceticket_config_api import Settings, create_app

    tmp = tmp_path_factory.mktemp("config-api")
    settings = Settings(
        _env_file=None,
        env="test",
        database_url=f"sqlite+aiosqlite:///{tmp / 'config.db'}",
        master_keys=f"k2:{Fernet.generate_key().decode()},k1:{Fernet.generate_key().decode()}",
        admin_token=BOOTSTRAP,
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
        yield f"http://127.0.0.1:{port}", tmp / "config.db"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def write(path: Path, content: Any) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_tenants_lines_and_credentials_through_the_cli(config_api: tuple[str, Path], tmp_path: Path) -> None:
    url, db = config_api
    created = run("tenants", "create", str(write(tmp_path / "t.json", TENANT)), url=url)
    assert created.returncode == 0, created.stderr
    assert "jira_base_url" in created.stdout and "https://acme.atlassian.net" in created.stdout

    listed = run("tenants", "list", url=url)
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].split() == [
        "ID",
        "NAME",
        "JIRA",
        "CREDENTIALS",
    ]
    assert listed.stdout.splitlines()[1].split() == ["acme", "Acme", "https://acme.atlassian.net", "-"]

    rotate_missing = run("credentials", "rotate", "acme", "openai_api_key", url=url, stdin=SECRET)
    assert rotate_missing.returncode == 1 and "has no openai_api_key to rotate" in one_line_error(
        rotate_missing
    )
    stored = run("credentials", "set", "acme", "openai_api_key", url=url, stdin=SECRET + "\n")
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.strip() == f"tenant acme: openai_api_key stored (••••{SECRET[-4:]})"
    rotated = run("credentials", "rotate", "acme", "openai_api_key", "--json", url=url,
                  stdin=NEW_SECRET)  # fmt: skip
    assert (
        rotated.returncode == 0 and json.loads(rotated.stdout)["openai_api_key"] == f"••••{NEW_SECRET[-4:]}"
    )
    bad_name = run("credentials", "set", "acme", "password", url=url, stdin="x" * 20)
    assert bad_name.returncode == 2 and "unknown credential 'password'" in one_line_error(bad_name)

    updated = run("tenants", "update", "acme", str(write(tmp_path / "u.json", {"name": "Acme Corp"})),
                  "--json", url=url)  # fmt: skip
    assert updated.returncode == 0 and json.loads(updated.stdout)["name"] == "Acme Corp"
    shown = json.loads(run("tenants", "show", "acme", "--json", url=url).stdout)
    assert shown["name"] == "Acme Corp" and shown["openai_api_key"].endswith(NEW_SECRET[-4:])
    assert "openai_api_key" in run("tenants", "list", url=url).stdout

    line = run("lines", "set", NUMBER, str(write(tmp_path / "l.json", LINE)), url=url)
    assert line.returncode == 0, line.stderr
    lines = run("lines", "list", "--tenant", "acme", url=url)
    assert lines.returncode == 0 and NUMBER in lines.stdout.splitlines()[1]
    assert json.loads(run("lines", "show", NUMBER, "--json", url=url).stdout)["service_desk_id"] == "1"
    assert run("lines", "delete", NUMBER, "--yes", url=url).returncode == 0
    gone = run("lines", "show", NUMBER, url=url)
    assert gone.returncode == 1 and "404: unknown line" in one_line_error(gone)

    rotation = run("master-key", "rotate", "--json", url=url)
    assert rotation.returncode == 0, rotation.stderr
    assert json.loads(rotation.stdout)["primary_kid"] == "k2"
    assert "under master key k2" in run("master-key", "rotate", url=url).stdout

    removed = run("tenants", "delete", "acme", "--yes", "--json", url=url)
    assert removed.returncode == 0 and json.loads(removed.stdout)["tenant_id"] == "acme"
    assert json.loads(run("tenants", "list", "--json", url=url).stdout) == []

    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert SECRET not in dump and NEW_SECRET not in dump
    audit = json.loads(run("audit", "list", "--json", "--target", "tenant:acme", url=url).stdout)
    actions = [e["action"] for e in reversed(audit)]
    assert actions[:4] == ["tenant.create", "credential.set", "credential.rotate", "tenant.update"]
    assert actions[-1] == "tenant.delete" and {e["actor"] for e in audit} == {"admin"}


@pytest.mark.parametrize(
    ("content", "code", "says"),
    [
        ("{not json", 2, "not JSON (Expecting property name enclosed in double quotes at line 1, column 2)"),
        ("[1, 2]", 2, "expected a JSON object of the tenant's fields, found a list"),
        (b"\xff\xfe\x00", 2, "not a UTF-8 text file"),
        (
            "{}",
            1,
            "refused bad.json (422): id: Field required; name: Field required; jira_base_url: Field required",
        ),  # fmt: skip
        (json.dumps({**TENANT, "id": "x2", "colour": "red"}), 1, "colour: Extra inputs are not permitted"),
        (json.dumps({**TENANT, "id": "x3", "jira_base_url": "not a url"}), 1, "jira_base_url: "),
    ],
)
def test_a_bad_input_file_gives_one_line_naming_the_field(
    config_api: tuple[str, Path], tmp_path: Path, content: str | bytes, code: int, says: str
) -> None:
    url, _ = config_api
    bad = tmp_path / "bad.json"
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = run("tenants", "create", str(bad), url=url)
    assert result.returncode == code, result.stderr
    assert says in one_line_error(result)


def test_tokens_created_listed_used_and_revoked_through_the_cli(config_api: tuple[str, Path]) -> None:
    url, db = config_api
    created = run("tokens", "create", "viewer", "--scope", "read-only", url=url)
    assert created.returncode == 0, created.stderr
    viewer = created.stdout.strip()
    assert viewer.startswith("vtk_") and "shown this once" in created.stderr
    ops = json.loads(run("tokens", "create", "ops", "--json", url=url).stdout)
    assert ops["scope"] == "admin" and ops["token"].startswith("vtk_")

    # The read-only token reads, and is refused a change with the server's reason (exit 3).
    assert run("tenants", "list", "--json", token=viewer, url=url).returncode == 0
    refused = run("tokens", "create", "sneaky", token=viewer, url=url)
    assert refused.returncode == 3
    assert "403: token 'viewer' is read-only" in one_line_error(refused)
    # The named admin token changes things under its own name.
    tenant = write(Path(str(db) + ".t.json"), {**TENANT, "id": "byops"})
    assert run("tenants", "create", str(tenant), token=ops["token"], url=url).returncode == 0

    listed = run("tokens", "list", url=url)
    assert listed.returncode == 0, listed.stderr
    rows = {r.split()[0]: r.split() for r in listed.stdout.splitlines()[1:]}
    assert rows["admin"][1:3] == ["admin", "settings"]
    assert rows["viewer"][1:3] == ["read-only", "api"] and rows["ops"][1:3] == ["admin", "api"]
    assert viewer not in listed.stdout and ops["token"] not in listed.stdout

    revoked = run("tokens", "revoke", "viewer", "--yes", token=ops["token"], url=url)
    assert revoked.returncode == 0 and "token viewer revoked at" in revoked.stdout
    after = run("tenants", "list", token=viewer, url=url)
    assert after.returncode == 3 and "refused the admin token (401" in one_line_error(after)
    entries = json.loads(run("audit", "list", "--json", "--action", "token.*", url=url).stdout)
    assert [(e["actor"], e["action"], e["target"]) for e in reversed(entries)] == [
        ("admin", "token.create", "token:viewer"),
        ("admin", "token.create", "token:ops"),
        ("viewer", "token.create", None),  # the refusal (before the handler), under its name
        ("ops", "token.revoke", "token:viewer"),
    ]
    by_ops = json.loads(run("audit", "list", "--json", "--actor", "ops", url=url).stdout)
    assert {e["action"] for e in by_ops} == {"tenant.create", "token.revoke"}
    bad_scope = run("tokens", "create", "x", "--scope", "root", url=url)
    assert bad_scope.returncode == 2 and "unknown scope 'root'" in one_line_error(bad_scope)


def test_unreachable_servers_exit_3_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket is closed
    api = run("tokens", "list", url=f"http://127.0.0.1:{closed}")
    assert api.returncode == 3 and "config-api unreachable" in one_line_error(api)
    kafka = run("dead-letters", "list", "voiceticket-notifier", "--bootstrap-servers", f"127.0.0.1:{closed}",
                token=None)  # fmt: skip
    assert kafka.returncode == 3 and "could not reach the bus" in one_line_error(kafka)


def test_version_json_and_completion() -> None:
    from importlib.metadata import version

    shown = run("--version", token=None)
    assert shown.returncode == 0 and shown.stdout.strip() == f"voiceticket {version('voiceticket')}"
    samples = run("samples", "--json", token=None)
    assert samples.returncode == 0 and {s["language"] for s in json.loads(samples.stdout)} >= {"en", "de"}
    completion = run("--show-completion", "bash", token=None)
    assert completion.returncode == 0 and "complete" in completion.stdout
    helped = run("--help", token=None)
    assert "Exit codes: 0 ok; 1" in " ".join(helped.stdout.split())
    for group in ("credentials", "master-key", "tokens"):
        assert run(group, "--help", token=None).returncode == 0
