"""``python -m voiceticket_config_api``: serve on CONFIG_API_HOST:CONFIG_API_PORT; ``... purge
[--dry-run]``: the retention purge of the audit log and the calls view, once (a CronJob)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from sqlalchemy import func, select

from voiceticket_common.logging import setup_logging

from .app import create_app
from .audit import AuditEvent, purge_audit
from .calls import purge_calls
from .db import create_schema, make_engine, make_sessionmaker
from .settings import Settings


async def purge(settings: Settings, *, dry_run: bool = False) -> dict[str, Any]:
    """The audit log's retention purge, once (``python -m voiceticket_config_api purge``)."""
    engine = make_engine(settings.database_url)
    try:
        await create_schema(engine)
        sessions = make_sessionmaker(engine)
        now = datetime.now(UTC)
        if dry_run:
            cutoff = now - timedelta(days=settings.audit_retention_days)
            async with sessions() as session:
                count = await session.scalar(
                    select(func.count()).select_from(AuditEvent).where(AuditEvent.at < cutoff)
                )
            audit = int(count or 0)
        else:
            audit = await purge_audit(sessions, now, retention_days=settings.audit_retention_days)
        calls = await purge_calls(
            sessions, now, retention_days=settings.calls_retention_days, dry_run=dry_run
        )
    finally:
        await engine.dispose()
    logging.getLogger(__name__).info(
        "retention purge", extra={"store": "config-api", "audit": audit, "calls": calls}
    )
    return {
        "event": "retention purge",
        "store": "config-api",
        "dry_run": dry_run,
        "removed": {"audit": audit, "calls": calls},
    }


def main() -> None:
    if sys.argv[1:2] == ["purge"]:
        settings = Settings()
        setup_logging("config-api", settings.log_level)
        extra = [a for a in sys.argv[2:] if a != "--dry-run"]
        if extra:
            raise SystemExit(f"usage: purge [--dry-run] (not {' '.join(extra)})")
        print(json.dumps(asyncio.run(purge(settings, dry_run="--dry-run" in sys.argv[2:])), sort_keys=True))
        return
    settings = Settings()
    # The same JSON log lines (with trace and span ids) as every other service.
    setup_logging("config-api", settings.log_level)
    # Driver debug logs print SQL parameters (phone numbers, ciphertexts): keep them quiet.
    for noisy in ("aiosqlite", "asyncpg", "sqlalchemy"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.root.level))
    # uvicorn's access log prints raw paths (phone numbers); the app logs route templates instead.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
