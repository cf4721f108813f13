"""Exit codes and one-line errors of ``voiceticket run`` (issue #13, point 5): a bad seed file
names its problem (exit 2) before anything starts, a setting refused at start is one line naming
the setting (exit 2, never pydantic's dump or the value), and an unreachable Kafka is exit 3 with
one line saying why, not a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voiceticket", "run", *args], capture_output=True, text=True,
                          timeout=90, cwd=cwd, env={**os.environ, **(env or {})})  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            "{not json",
            "seed.json: not JSON (Expecting property name enclosed in double quotes at line 1, column 2)",
        ),
        ("[]", "expected a JSON object of the seed (tenants and lines)'s fields, found a list"),
        (json.dumps({"tenants": [{}]}), "tenants.0.id: Field required; tenants.0.name: Field required"),
        (
            json.dumps(
                {
                    "tenants": [
                        {"id": "a", "name": "A", "jira_base_url": "https://a.atlassian.net", "colour": "red"}
                    ]
                }
            ),  # fmt: skip
            "tenants.0.colour: Extra inputs are not permitted",
        ),
        (
            json.dumps({"lines": [{"number": "+14155550100", "tenant_id": "a"}]}),
            "lines.0.service_desk_id: Field required",
        ),
    ],
)
def test_a_bad_seed_file_exits_2_naming_the_field(tmp_path: Path, content: str, says: str) -> None:
    (tmp_path / "seed.json").write_text(content)
    result = run("--seed", "seed.json", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr)
    assert says in one_line_error(result)
    assert not (tmp_path / "data").exists()  # refused before anything started


def test_a_refused_setting_is_one_line_naming_it_without_its_value(tmp_path: Path) -> None:
    result = run("--data-dir", str(tmp_path / "data"), "--port", "0", "--config-api-port", "0", cwd=tmp_path,
                 env={"VOICETICKET_EVENT_RETENTION_HOURS": "forty-two"})  # fmt: skip
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr)
    line = one_line_error(result)
    assert "event_retention_hours: Input should be a valid number" in line and "forty-two" not in line


def test_one_service_on_an_unreachable_kafka_exits_3_with_one_line(tmp_path: Path) -> None:
    port = closed_port()
    env = {"VOICETICKET_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}", "VOICETICKET_CONFIG_API_TOKEN": "x" * 24,
           "VOICETICKET_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'analyzer.db'}"}  # fmt: skip
    result = run("--service", "analyzer", cwd=tmp_path, env=env)
    assert result.returncode == 3, (result.stdout[-2000:], result.stderr)
    assert f"error: analyzer: Kafka at 127.0.0.1:{port}" in one_line_error(result)
    assert "cannot connect" in result.stderr
