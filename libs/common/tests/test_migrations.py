"""Alembic migrations on SQLite (voiceticket_common.migrations): every service upgrades from an
empty database and from a database made by ``create_all`` before migrations (also an older shape,
lacking tables and columns added since), twice is a no-op, the models and the migrations agree,
and the developer command writes a revision that upgrades."""

from __future__ import annotations

import importlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Connection, MetaData, String, column, inspect, table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceticket_common import migrations
from voiceticket_common.db import open_engine
from voiceticket_config_api.db import make_engine

SERVICES = sorted(migrations.SERVICES)
NOW = "2026-12-01 10:00:00"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with open_engine(f"sqlite+aiosqlite:///{tmp_path / 'service.db'}") as opened:
        yield opened


def shape(conn: Connection) -> dict[str, list[tuple[str, str, bool]]]:
    """Every table's columns (name, type, nullable) and nothing else: what "unchanged" compares."""
    inspector = inspect(conn)
    return {
        table: [(c["name"], str(c["type"]), bool(c["nullable"])) for c in inspector.get_columns(table)]
        for table in sorted(inspector.get_table_names())
    }


async def snapshot(engine: AsyncEngine) -> dict[str, list[tuple[str, str, bool]]]:
    async with engine.connect() as conn:
        return await conn.run_sync(shape)


async def create_todays_schema(engine: AsyncEngine, service: str) -> None:
    """A database as ``create_all`` made it before migrations: the tables, no version table."""
    async with engine.begin() as conn:
        await conn.run_sync(migrations.baseline_schema(service).create_all)


@pytest.mark.parametrize("service", SERVICES)
async def test_upgrade_from_empty_reaches_head_in_the_services_own_version_table(
    engine: AsyncEngine, service: str
) -> None:
    done = await migrations.upgrade(engine, service)
    assert (done.before, done.after, done.adopted) == (None, migrations.heads(service)[0], False)
    tables = set(await snapshot(engine))
    assert set(migrations.baseline_schema(service).tables) <= tables
    assert migrations.version_table(service) in tables and "alembic_version" not in tables
    assert await migrations.current(engine, service) == done.after


@pytest.mark.parametrize("service", SERVICES)
async def test_upgrading_twice_is_a_no_op(engine: AsyncEngine, service: str) -> None:
    first = await migrations.upgrade(engine, service)
    before = await snapshot(engine)
    again = await migrations.upgrade(engine, service)
    assert (again.before, again.after, again.adopted) == (first.after, first.after, False)
    assert await snapshot(engine) == before


@pytest.mark.parametrize("service", SERVICES)
async def test_models_and_migrations_agree(engine: AsyncEngine, service: str) -> None:
    """A model change without a revision fails here: write one with
    ``python -m voiceticket_common.migrations revision SERVICE -m "..."`` (docs/operations.md)."""
    await migrations.upgrade(engine, service)
    assert await migrations.check(engine, service) == []


@pytest.mark.parametrize("service", SERVICES)
async def test_a_database_made_by_create_all_is_adopted_stamped_and_upgraded(
    engine: AsyncEngine, service: str
) -> None:
    await create_todays_schema(engine, service)
    todays = await snapshot(engine)
    done = await migrations.upgrade(engine, service)
    assert done.adopted and done.before is None and done.added == ()
    assert done.after == migrations.heads(service)[0]
    after = await snapshot(engine)
    # nothing of today's changed: later revisions may only add (columns are appended)
    assert {t: after[t][: len(c)] for t, c in todays.items()} == todays, "nothing of today's changed"
    assert migrations.version_table(service) in after
    again = await migrations.upgrade(engine, service)
    assert not again.adopted and again.before == done.after


async def test_a_sole_version_table_of_another_service_is_not_taken_for_todays_schema(
    engine: AsyncEngine,
) -> None:
    """Services may share a database: one's tables do not make another's database "existing"."""
    await migrations.upgrade(engine, "notifier")
    done = await migrations.upgrade(engine, "jira-writer")
    assert not done.adopted and done.before is None
    assert {"notifier_messages", "jira_writer_requests"} <= set(await snapshot(engine))
    assert await migrations.check(engine, "notifier") == []
    assert await migrations.check(engine, "jira-writer") == []


async def test_an_older_config_api_shape_gets_the_late_tables_and_columns(tmp_path: Path) -> None:
    """A deployment from before provider_concurrency, transcription_backend, the consent columns
    and admin_tokens (create_all never added them to existing tables): adopting it adds them, a
    NOT NULL one filled with its default on old rows, and keeps the rows."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'config-api.db'}")
    try:
        await create_todays_schema(engine, "config-api")
        async with engine.begin() as conn:
            await conn.exec_driver_sql("DROP TABLE admin_tokens")
            await conn.exec_driver_sql("DROP TABLE audit_events")
            for column in ("provider_concurrency", "transcription_backend"):
                await conn.exec_driver_sql(f"ALTER TABLE tenants DROP COLUMN {column}")
            await conn.exec_driver_sql("ALTER TABLE lines DROP COLUMN consent_mode")
            await conn.exec_driver_sql("ALTER TABLE lines DROP COLUMN consent_repeat")
            await insert_tenant_and_line(conn, older=True)
        done = await migrations.upgrade(engine, "config-api")
        assert done.adopted
        assert set(done.added) == {
            "admin_tokens",
            "audit_events",
            "tenants.provider_concurrency",
            "tenants.transcription_backend",
            "lines.consent_mode",
            "lines.consent_repeat",
        }
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT consent_mode, consent_repeat FROM lines"))).one()
            assert tuple(row) == ("notice", 1)
            tenant = (await conn.execute(text("SELECT name, provider_concurrency FROM tenants"))).one()
            assert tuple(tenant) == ("Acme", None)
            stored = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert {"admin_tokens", "audit_events"} <= stored
        await assert_audit_is_append_only(engine)
        assert not [d for d in await migrations.check(engine, "config-api") if touches_baseline(d)]
    finally:
        await engine.dispose()


TENANT = {
    "id": "acme",
    "name": "Acme",
    "jira_base_url": "https://acme.example",
    "jira_auth": "basic",
    "openai_base_url": "https://o.example",
    "transcription_model": "m",
    "vocabulary": "[]",
    "analysis_model": "a",
    "recording_retention": "keep",
    "created_at": NOW,
    "updated_at": NOW,
}
LINE = {
    "number": "+15005550006",
    "tenant_id": "acme",
    "service_desk_id": "1",
    "request_type_id": "2",
    "request_types": "{}",
    "language_mode": "auto",
    "language": "en",
    "greeting": "hi",
    "recording_notice": "rec",
    "voice": "v",
    "max_recording_seconds": 120,
    "record_timeout_seconds": 5,
    "record_finish_on_key": "#",
    "sms_enabled": 1,
    "sms_template": "t",
    "attach_recording": 0,
    "ticket_on_absent_recording": 0,
    "consent_key": "1",
    "consent_timeout_seconds": 6,
    "on_consent_declined": "none",
    "created_at": NOW,
    "updated_at": NOW,
}


def _insert(name: str, values: dict[str, Any]) -> Any:
    return table(name, *(column(key) for key in values)).insert().values(**values)


async def insert_tenant_and_line(conn: Any, *, older: bool = False) -> None:
    """A tenant and its line; ``older``: without the consent columns (an older shape's)."""
    await conn.execute(_insert("tenants", TENANT))
    consent = {} if older else {"consent_mode": "notice", "consent_repeat": 1}
    await conn.execute(_insert("lines", {**LINE, **consent}))


async def assert_audit_is_append_only(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO audit_events (id, at, actor, action, outcome, status_code, details) "
                "VALUES (1, :now, 'admin', 'tenant.update', 'success', 200, '{}')"
            ),
            {"now": NOW},
        )
    with pytest.raises(Exception, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE audit_events SET actor = 'mallory'"))


def diff_table(diff: Any) -> str:
    """The table an autogenerate diff is about (``modify_*`` diffs come as lists of tuples)."""
    first = diff[0] if isinstance(diff, list) else diff
    if first[0] in ("add_column", "remove_column") or first[0].startswith("modify_"):
        return str(first[2])
    target = first[1]
    return str(getattr(target, "name", "") if first[0].endswith("_table") else target.table.name)


def touches_baseline(diff: Any) -> bool:
    """A diff on one of the baseline's tables (not on a table a later model added)."""
    return diff_table(diff) in migrations.baseline_schema("config-api").tables


async def test_config_api_foreign_keys_are_enforced_again_after_the_upgrade(tmp_path: Path) -> None:
    """Migrations run with SQLite's foreign keys off (a batch table copy would cascade); the
    connection the app then gets has them on: deleting a tenant deletes its lines."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'config-api.db'}")
    try:
        await migrations.upgrade(engine, "config-api")
        async with engine.begin() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            await insert_tenant_and_line(conn)
            await conn.execute(text("DELETE FROM tenants"))
            assert (await conn.execute(text("SELECT count(*) FROM lines"))).scalar() == 0
    finally:
        await engine.dispose()


async def test_adoption_refuses_a_missing_column_it_cannot_fill(engine: AsyncEngine) -> None:
    await create_todays_schema(engine, "jira-writer")
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE jira_writer_requests DROP COLUMN claimed_at")
    with pytest.raises(migrations.MigrationError, match="claimed_at is missing and has no default"):
        await migrations.upgrade(engine, "jira-writer")
    assert await migrations.current(engine, "jira-writer") is None, "nothing stamped"


async def test_the_developer_command_writes_a_revision_that_upgrades(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``revision notifier -m ...`` with a model column added: the next number, after the head,
    adding it."""
    versions = tmp_path / "versions"
    shutil.copytree(migrations.versions_dir("notifier"), versions)
    head = max(int(p.name[:4]) for p in versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    new = f"{head + 1:04d}"
    changed = MetaData()
    for model in migrations.target_metadata("notifier").tables.values():
        model.to_metadata(changed)
    changed.tables["notifier_opt_outs"].append_column(Column("source", String(16), nullable=True))
    monkeypatch.setattr(migrations, "versions_dir", lambda service: versions)
    monkeypatch.setattr(migrations, "target_metadata", lambda service: changed)
    migrations.script.cache_clear()
    try:
        written = await migrations.revision("notifier", "opt-out source")
        assert [p.name for p in written] == [f"{new}_opt_out_source.py"]
        body = written[0].read_text()
        assert f'down_revision: str | Sequence[str] | None = "{head:04d}"' in body and "source" in body
        done = await migrations.upgrade(engine, "notifier")
        assert done.after == new
        columns = {c[0] for c in (await snapshot(engine))["notifier_opt_outs"]}
        assert "source" in columns
        assert await migrations.check(engine, "notifier") == []
    finally:
        migrations.script.cache_clear()


def test_the_module_command_reports_the_revision(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'analyzer.db'}"
    migrations.main(["upgrade", "analyzer", "--database-url", url])
    migrations.main(["current", "analyzer", "--database-url", url])
    migrations.main(["check", "analyzer", "--database-url", url])
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "analyzer: None -> 0001",
        "analyzer: 0001 (head 0001)",
        "analyzer: models and tables agree",
    ]
    assert str(tmp_path) not in "\n".join(out)


@pytest.mark.parametrize(
    ("service", "ledger"),
    [
        ("transcriber", "voiceticket_transcriber.ledger:SqlTranscriptLedger"),
        ("analyzer", "voiceticket_analyzer.ledger:SqlAnalysisLedger"),
        ("jira-writer", "voiceticket_jira_writer.ledger:SqlRequestLedger"),
        ("notifier", "voiceticket_notifier.ledger:SqlSmsLedger"),
    ],
)
async def test_a_service_migrates_its_ledger_when_it_opens_it(
    engine: AsyncEngine, service: str, ledger: str
) -> None:
    """What a worker runs at start (``with_schema``/``opened`` -> ``create_schema``) is the upgrade."""
    module, _, name = ledger.partition(":")
    ledger_type = getattr(importlib.import_module(module), name)
    await ledger_type(engine).create_schema()
    assert await migrations.current(engine, service) == migrations.heads(service)[0]


async def test_config_api_migrates_at_start(tmp_path: Path) -> None:
    from voiceticket_config_api.db import create_schema

    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'config-api.db'}")
    try:
        await create_schema(engine)
        assert await migrations.current(engine, "config-api") == migrations.heads("config-api")[0]
    finally:
        await engine.dispose()
