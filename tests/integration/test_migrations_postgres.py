"""Alembic migrations on Postgres (voiceticket_common.migrations), a fresh database per test:
every service upgrades from empty and from a database made by ``create_all`` before migrations
(also an older config-api shape), twice is a no-op, the models and the migrations agree, services
may share one database, and replicas migrating at once do it once (the advisory lock)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from voiceticket_common import migrations
from voiceticket_common.db import open_engine

SERVICES = sorted(migrations.SERVICES)
NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.fixture
async def database_url(postgres_dsn: str) -> AsyncIterator[str]:
    """A new, empty database on the session's Postgres, dropped after the test."""
    name = f"vt_migrations_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = postgres_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    yield f"{base}/{name}"
    admin = await asyncpg.connect(postgres_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with open_engine(database_url) as opened:
        yield opened


async def shape(engine: AsyncEngine) -> dict[str, list[tuple[str, str, bool]]]:
    def columns(sync: object) -> dict[str, list[tuple[str, str, bool]]]:
        inspector = inspect(sync)
        return {
            table: [(c["name"], str(c["type"]), bool(c["nullable"])) for c in inspector.get_columns(table)]
            for table in sorted(inspector.get_table_names())
        }

    async with engine.connect() as conn:
        return await conn.run_sync(columns)


@pytest.mark.parametrize("service", SERVICES)
async def test_upgrade_from_empty_twice_and_the_models_agree(engine: AsyncEngine, service: str) -> None:
    done = await migrations.upgrade(engine, service)
    assert (done.before, done.after, done.adopted) == (None, migrations.heads(service)[0], False)
    tables = await shape(engine)
    assert set(migrations.baseline_schema(service).tables) | {migrations.version_table(service)} <= set(
        tables
    )
    again = await migrations.upgrade(engine, service)
    assert (again.before, again.after, again.adopted) == (done.after, done.after, False)
    assert await shape(engine) == tables, "a second upgrade changes nothing"
    assert await migrations.check(engine, service) == []


@pytest.mark.parametrize("service", SERVICES)
async def test_a_database_made_by_create_all_is_adopted(engine: AsyncEngine, service: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(migrations.baseline_schema(service).create_all)
    todays = await shape(engine)
    done = await migrations.upgrade(engine, service)
    assert done.adopted and done.added == () and done.after == migrations.heads(service)[0]
    after = await shape(engine)
    assert {t: after[t][: len(c)] for t, c in todays.items()} == todays  # later revisions only add
    assert migrations.version_table(service) in after


async def test_an_older_config_api_shape_gets_the_late_tables_and_columns(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(migrations.baseline_schema("config-api").create_all)
        await conn.exec_driver_sql("DROP TABLE admin_tokens")
        await conn.exec_driver_sql("ALTER TABLE tenants DROP COLUMN provider_concurrency")
        await conn.exec_driver_sql("ALTER TABLE tenants DROP COLUMN transcription_backend")
        await conn.exec_driver_sql("ALTER TABLE tenants DROP COLUMN vocabulary")
        await conn.execute(
            text(
                "INSERT INTO tenants (id, name, jira_base_url, jira_auth, openai_base_url, "
                "transcription_model, analysis_model, recording_retention, created_at, updated_at) "
                "VALUES ('acme', 'Acme', 'https://acme.example', 'basic', 'https://o.example', 'm', "
                "'a', 'keep', :now, :now)"
            ),
            {"now": NOW},
        )
    done = await migrations.upgrade(engine, "config-api")
    assert done.adopted
    assert set(done.added) == {
        "admin_tokens",
        "tenants.provider_concurrency",
        "tenants.transcription_backend",
        "tenants.vocabulary",
    }
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT vocabulary::text, transcription_backend FROM tenants"))).one()
    assert tuple(row) == ("[]", None), "the NOT NULL column was filled on the old row"
    baseline = set(migrations.baseline_schema("config-api").tables)
    on_baseline = [d for d in await migrations.check(engine, "config-api") if _table(d) in baseline]
    assert on_baseline == []


def _table(diff: object) -> str:
    first = diff[0] if isinstance(diff, list) else diff
    assert isinstance(first, tuple)
    if first[0] in ("add_column", "remove_column") or first[0].startswith("modify_"):
        return str(first[2])
    target = first[1]
    return str(getattr(target, "name", "") if first[0].endswith("_table") else target.table.name)


async def test_the_audit_log_is_append_only_after_the_baseline(engine: AsyncEngine) -> None:
    await migrations.upgrade(engine, "config-api")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO audit_events (at, actor, action, outcome, status_code, details) "
                "VALUES (:now, 'admin', 'tenant.update', 'success', 200, '{}')"
            ),
            {"now": NOW},
        )
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE audit_events SET actor = 'mallory'"))


async def test_services_may_share_one_database(engine: AsyncEngine) -> None:
    for service in SERVICES:
        done = await migrations.upgrade(engine, service)
        assert not done.adopted, f"{service} took another service's tables for its own"
    tables = set(await shape(engine))
    assert {migrations.version_table(service) for service in SERVICES} <= tables
    for service in SERVICES:
        if service != "config-api":  # config-api: tables added without a revision yet fail here
            assert await migrations.check(engine, service) == [], service


async def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    """Four engines (replicas) upgrade the same empty database at once: the advisory lock lets one
    migrate while the others wait, then find it at head (without it, CREATE TABLE races)."""
    async with (
        open_engine(database_url) as a,
        open_engine(database_url) as b,
        open_engine(database_url) as c,
        open_engine(database_url) as d,
    ):
        results = await asyncio.gather(*(migrations.upgrade(e, "jira-writer") for e in (a, b, c, d)))
    head = migrations.heads("jira-writer")[0]
    assert all(r.after == head for r in results)
    assert sorted(r.before is None for r in results) == [False, False, False, True]
