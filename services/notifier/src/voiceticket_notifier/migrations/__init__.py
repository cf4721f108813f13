"""The notifier tables' Alembic migrations (versions/; run by voiceticket_common.migrations)."""

from __future__ import annotations

from sqlalchemy import MetaData


def target_metadata() -> MetaData:
    """The notifier models as the code has them (autogenerate and the migration check compare them)."""
    from .. import conversations  # noqa: F401  (its table is in the same metadata)
    from ..ledger import SqlSmsLedger

    return SqlSmsLedger.metadata
