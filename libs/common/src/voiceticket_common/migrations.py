"""Alembic migrations for config-api's tables and every service's ledger tables, run in code.

Each owning package ships its revisions (``<package>/migrations/versions/*.py``) and a
``target_metadata()`` (its models) in ``<package>/migrations/__init__.py``; Alembic's ``env.py``
and revision template are shared (``voiceticket_common/migration_env``). No ``alembic.ini``: the
``Config`` is built here. Each service keeps its version in a table of its own
(``alembic_version_<service>``), so several services may share one database.

``upgrade`` runs in one transaction (Postgres: under an advisory lock, so replicas starting together
migrate once; DDL is transactional, so a failed step leaves nothing half done). A database made
before migrations existed (``metadata.create_all``: the service's tables, no version table) is
adopted: tables and columns of the baseline it lacks (an older shape) are added, then it is
stamped at the baseline and upgraded like any other.

Developers: ``python -m voiceticket_common.migrations revision SERVICE -m "what changed"`` writes
the next revision by autogenerate (against a scratch SQLite database upgraded to head, unless
``--database-url``); ``upgrade``, ``current`` and ``check`` work on ``--database-url`` (or
``VOICETICKET_DATABASE_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import os
import tempfile
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, MetaData, Table, inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import DefaultClause

SERVICES = {
    # service -> the package holding its migrations (``target_metadata()``, ``versions/``)
    "config-api": "voiceticket_config_api.migrations",
    "transcriber": "voiceticket_transcriber.migrations",
    "analyzer": "voiceticket_analyzer.migrations",
    "jira-writer": "voiceticket_jira_writer.migrations",
    "notifier": "voiceticket_notifier.migrations",
}
BASELINE = "0001"
"""Every service's first revision: its schema as ``create_all`` made it before migrations."""
ENV_DIR = Path(__file__).with_name("migration_env")


class MigrationError(Exception):
    """A database the migrations cannot take over (an older shape they cannot complete)."""


def version_table(service: str) -> str:
    """The table holding ``service``'s revision (``alembic_version_config_api``, ...)."""
    return "alembic_version_" + service.replace("-", "_")


def _package(service: str) -> Any:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    return importlib.import_module(SERVICES[service])


def versions_dir(service: str) -> Path:
    """Where ``service``'s revisions live (inside its package, so they ship in the wheel)."""
    return Path(_package(service).__file__).parent / "versions"


def target_metadata(service: str) -> MetaData:
    """``service``'s models as the code has them (what autogenerate and ``check`` compare)."""
    metadata: MetaData = _package(service).target_metadata()
    return metadata


def config(service: str, connection: Connection | None = None) -> Config:
    """Alembic's configuration for ``service``, built in code; ``connection``: where env.py runs."""
    cfg = Config()
    cfg.set_main_option("script_location", str(ENV_DIR))
    cfg.set_main_option("version_locations", str(versions_dir(service)))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["service"] = service
    cfg.attributes["connection"] = connection
    return cfg


@cache
def script(service: str) -> ScriptDirectory:
    """``service``'s revisions (read once per process)."""
    return ScriptDirectory.from_config(config(service))


def baseline_schema(service: str) -> MetaData:
    """The frozen baseline schema (``schema()`` of ``service``'s revision ``0001``)."""
    revision = script(service).get_revision(BASELINE)
    if revision is None:
        raise MigrationError(f"{service} has no baseline revision {BASELINE}")
    schema: MetaData = revision.module.schema()
    return schema


def _context_options(service: str, metadata: MetaData | None) -> dict[str, Any]:
    """Options of every migration context of ``service``: its version table, and when comparing
    with ``metadata``, only the tables it has (another service's, sharing the database, are not
    this one's to drop)."""
    options: dict[str, Any] = {"version_table": version_table(service), "compare_type": True}
    if metadata is not None:
        own = set(metadata.tables)

        def include_name(name: str | None, type_: str, parent: Any) -> bool:
            del parent
            return type_ != "table" or name in own

        options["include_name"] = include_name
    return options


def run_env() -> None:
    """The body of the shared ``env.py``: run the migrations on the connection the runner gave."""
    from alembic import context

    cfg = context.config
    service: str = cfg.attributes["service"]
    connection: Connection | None = cfg.attributes.get("connection")
    if connection is None:
        raise MigrationError("migrations run through voiceticket_common.migrations (a connection)")
    metadata = target_metadata(service) if cfg.attributes.get("autogenerate") else None
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters a table by copying it: revisions are written in batch mode whatever the
        # database compared against (on Postgres a batch is plain ALTERs).
        render_as_batch=True,
        **_context_options(service, metadata),
    )
    with context.begin_transaction():
        context.run_migrations()


# --- adopting a database made by create_all ------------------------------------------------------


def _adoptable(conn: Connection, service: str) -> bool:
    """No version table, but some of the baseline's tables: made by create_all before migrations."""
    names = set(inspect(conn).get_table_names())
    return version_table(service) not in names and bool(names & set(baseline_schema(service).tables))


def _backfill(column: Column[Any]) -> Any:
    """The value old rows get when ``column`` is added to an existing table (NOT NULL only)."""
    if "backfill" in column.info:
        return column.info["backfill"]
    default = column.default
    if default is not None and getattr(default, "is_scalar", False):
        return getattr(default, "arg", None)
    return None


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"  # Boolean is INTEGER on SQLite, and '1'/'0' casts on Postgres
    return str(value).replace("'", "''")


def _add_column(conn: Connection, table: Table, column: Column[Any]) -> None:
    """ALTER TABLE ADD COLUMN ``column`` as the baseline has it; a NOT NULL one with its backfill
    as server default (old rows need a value)."""
    added = column._copy()
    if not column.nullable and not column.primary_key:
        value = _backfill(column)
        if value is None:
            raise MigrationError(
                f"cannot adopt {table.name}: column {column.name} is missing and has no default; "
                "add it by hand, then upgrade again"
            )
        added.server_default = DefaultClause(text(f"'{_literal(value)}'"))
    Operations(MigrationContext.configure(conn)).add_column(table.name, added)


def adopt(conn: Connection, service: str) -> list[str]:
    """Give a create_all-made database the baseline's shape: missing tables are created, missing
    columns added (idempotent). Returns what was added, e.g. ``["tenants.provider_concurrency"]``."""
    baseline = baseline_schema(service)
    existing = set(inspect(conn).get_table_names())
    missing = [table for name, table in baseline.tables.items() if name not in existing]
    baseline.create_all(conn, tables=missing)  # with their indexes and DDL hooks (triggers)
    added = [table.name for table in missing]
    for name, table in baseline.tables.items():
        if name not in existing:
            continue
        columns = {c["name"] for c in inspect(conn).get_columns(name)}
        for column in table.columns:
            if column.name not in columns:
                _add_column(conn, table, column)
                added.append(f"{name}.{column.name}")
        _create_missing_indexes(conn, table)
    return added


def _create_missing_indexes(conn: Connection, table: Table) -> None:
    present = {index["name"] for index in inspect(conn).get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in present:
            index.create(conn)


# --- upgrade, current, check ---------------------------------------------------------------------


def _lock(conn: Connection, service: str) -> None:
    """Postgres: one migrator per service and database at a time (until the transaction ends)."""
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(f"voiceticket-migrations:{service}".encode())
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


@dataclass(frozen=True)
class Upgraded:
    """What ``upgrade`` did: the revision before and after, and what adoption added (if any)."""

    before: str | None
    after: str | None
    adopted: bool = False
    added: tuple[str, ...] = ()


def current_revision(conn: Connection, service: str) -> str | None:
    context = MigrationContext.configure(conn, opts=_context_options(service, None))
    return context.get_current_revision()


def upgrade_sync(conn: Connection, service: str, revision: str = "head") -> Upgraded:
    """``upgrade`` on a sync connection (in a transaction: ``AsyncConnection.run_sync``)."""
    _lock(conn, service)
    before = current_revision(conn, service)
    cfg = config(service, conn)
    adopted, added = False, []
    if before is None and _adoptable(conn, service):
        added = adopt(conn, service)
        command.stamp(cfg, BASELINE)
        adopted = True
    command.upgrade(cfg, revision)
    return Upgraded(before, current_revision(conn, service), adopted, tuple(added))


async def _foreign_keys(conn: AsyncConnection, on: bool | None) -> bool:
    """SQLite: whether foreign keys were enforced, after setting them ``on`` (None: unchanged).
    Batch migrations copy tables; with enforcement on, dropping the old copy would cascade."""
    if conn.dialect.name != "sqlite":
        return False
    was = bool((await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar())
    if on is not None and on != was:
        await conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    await conn.commit()  # a PRAGMA outside any transaction (foreign_keys is ignored inside one)
    return was


async def upgrade(engine: AsyncEngine, service: str, revision: str = "head") -> Upgraded:
    """Migrate ``service``'s tables on ``engine`` to ``revision`` (default: the newest); adopts a
    database made by create_all. Idempotent: at head, nothing happens."""
    async with engine.connect() as conn:
        enforced = await _foreign_keys(conn, on=False)
        try:
            async with conn.begin():
                return await conn.run_sync(upgrade_sync, service, revision)
        finally:
            if enforced:
                await _foreign_keys(conn, on=True)


async def current(engine: AsyncEngine, service: str) -> str | None:
    """``service``'s revision on ``engine`` (None: never migrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(current_revision, service)


def heads(service: str) -> list[str]:
    return list(script(service).get_heads())


def diffs_sync(conn: Connection, service: str) -> list[Any]:
    metadata = target_metadata(service)
    context = MigrationContext.configure(conn, opts=_context_options(service, metadata))
    return list(compare_metadata(context, metadata))


async def check(engine: AsyncEngine, service: str) -> list[Any]:
    """What differs between ``service``'s models and its tables on ``engine`` (Alembic's
    autogenerate diffs); empty when they agree. Upgrade first: a behind database differs."""
    async with engine.connect() as conn:
        return await conn.run_sync(diffs_sync, service)


# --- writing a revision (developers) -------------------------------------------------------------


def next_revision_id(service: str) -> str:
    """``0002`` after ``0001``: revisions are numbered in order, one head per service."""
    numbers = [int(rev.revision) for rev in script(service).walk_revisions() if rev.revision.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def _ruff_hooks(cfg: Config) -> None:
    """Format the written revision with ruff when it is installed (a checkout)."""
    if importlib.util.find_spec("ruff") is None:
        return
    cfg.set_section_option("post_write_hooks", "hooks", "ruff_fix,ruff_format")
    cfg.set_section_option("post_write_hooks", "ruff_fix.type", "module")
    cfg.set_section_option("post_write_hooks", "ruff_fix.module", "ruff")
    cfg.set_section_option("post_write_hooks", "ruff_fix.options", "check --fix REVISION_SCRIPT_FILENAME")
    cfg.set_section_option("post_write_hooks", "ruff_format.type", "module")
    cfg.set_section_option("post_write_hooks", "ruff_format.module", "ruff")
    cfg.set_section_option("post_write_hooks", "ruff_format.options", "format REVISION_SCRIPT_FILENAME")


def revision_sync(conn: Connection, service: str, message: str) -> list[Path]:
    cfg = config(service, conn)
    cfg.attributes["autogenerate"] = True
    _ruff_hooks(cfg)
    written = command.revision(cfg, message=message, autogenerate=True, rev_id=next_revision_id(service))
    scripts = written if isinstance(written, list) else [written]
    return [Path(s.path) for s in scripts if s is not None]


async def revision(service: str, message: str, database_url: str | None = None) -> list[Path]:
    """Write ``service``'s next revision by autogenerate: its models against its tables at head
    (on ``database_url``, or a scratch SQLite database). Returns the files written."""
    from .db import open_engine

    with tempfile.TemporaryDirectory() as scratch:
        url = database_url or f"sqlite+aiosqlite:///{Path(scratch) / 'autogenerate.db'}"
        async with open_engine(url) as engine:
            await upgrade(engine, service)
            async with engine.begin() as conn:
                return await conn.run_sync(revision_sync, service, message)


async def _run(args: argparse.Namespace) -> str:
    from .db import open_engine

    if args.command == "revision":
        paths = await revision(args.service, args.message, args.database_url)
        return "\n".join(str(path) for path in paths)
    if not args.database_url:
        raise SystemExit("--database-url (or VOICETICKET_DATABASE_URL) is required")
    async with open_engine(args.database_url) as engine:
        if args.command == "upgrade":
            done = await upgrade(engine, args.service)
            return f"{args.service}: {done.before} -> {done.after}" + (" (adopted)" if done.adopted else "")
        if args.command == "current":
            return f"{args.service}: {await current(engine, args.service)} (head {', '.join(heads(args.service))})"
        diffs = await check(engine, args.service)
        if diffs:
            raise SystemExit("\n".join(f"{args.service}: {diff}" for diff in diffs))
        return f"{args.service}: models and tables agree"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m voiceticket_common.migrations", description=__doc__)
    parser.add_argument("command", choices=["revision", "upgrade", "current", "check"])
    parser.add_argument("service", choices=sorted(SERVICES))
    parser.add_argument("-m", "--message", default="schema change", help="the revision's title (revision)")
    parser.add_argument("--database-url", default=os.environ.get("VOICETICKET_DATABASE_URL"))
    args = parser.parse_args(argv)
    print(asyncio.run(_run(args)))


if __name__ == "__main__":
    main()
