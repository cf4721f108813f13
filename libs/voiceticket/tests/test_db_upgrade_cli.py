"""``voiceticket db upgrade <service>``: the migration Job's command (deploy/k8s/base/db-upgrade-job.yaml)
migrates each stateful service's tables (Alembic) as the service does at start."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voiceticket.cli import SCHEMA_OWNERS, app

EXPECTED = {  # tables a schema must contain (config-api: all of those its app uses)
    "config-api": {"tenants", "lines", "call_keys", "vault_secrets", "audit_events"},
}
RUNNER = CliRunner()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


@pytest.mark.parametrize("service", sorted(SCHEMA_OWNERS))
def test_db_upgrade_creates_the_services_tables_and_is_idempotent(service: str, tmp_path: Path) -> None:
    db = tmp_path / f"{service}.db"
    url = f"sqlite+aiosqlite:///{db}"
    first = RUNNER.invoke(app, ["db", "upgrade", service], env={"VOICETICKET_DATABASE_URL": url})
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout.strip().splitlines()[-1])
    assert report["event"] == "db upgrade" and report["service"] == service
    created = tables(db)
    assert created and set(report["tables"]) == created
    assert EXPECTED.get(service, set()) <= created
    assert str(db) not in first.output, "the DSN is never printed"
    again = RUNNER.invoke(app, ["db", "upgrade", service, "--database-url", url])
    assert again.exit_code == 0, again.output
    assert tables(db) == created


def test_each_service_gets_its_own_tables(tmp_path: Path) -> None:
    seen: dict[str, set[str]] = {}
    for service in SCHEMA_OWNERS:
        db = tmp_path / f"{service}.db"
        done = RUNNER.invoke(app, ["db", "upgrade", service, "--database-url", f"sqlite+aiosqlite:///{db}"])
        assert done.exit_code == 0, done.output
        seen[service] = tables(db)
    for a in seen:
        for b in seen:
            assert a == b or not seen[a] & seen[b], (a, b, seen[a] & seen[b])


def test_db_upgrade_refuses_an_unknown_service_and_hides_the_dsn_on_failure() -> None:
    unknown = RUNNER.invoke(app, ["db", "upgrade", "ingress", "--database-url", "sqlite+aiosqlite://"])
    assert unknown.exit_code == 2 and "unknown service 'ingress'" in unknown.output
    secret_url = "postgresql+asyncpg://analyzer:s3cret-pw@127.0.0.1:1/analyzer"
    down = RUNNER.invoke(app, ["db", "upgrade", "analyzer", "--database-url", secret_url])
    assert down.exit_code == 3, down.output
    assert "could not upgrade analyzer's database" in down.output
    assert "s3cret-pw" not in down.output


def test_db_upgrade_has_help() -> None:
    result = RUNNER.invoke(app, ["db", "upgrade", "--help"])
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.replace("│", " ").split())  # rich's box and wrapping removed
    assert "VOICETICKET_DATABASE_URL" in words and "newest revision (Alembic)" in words
