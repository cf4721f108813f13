"""The jira-writer tables' Alembic migrations (versions/; run by voiceticket_common.migrations)."""

from __future__ import annotations

from sqlalchemy import MetaData


def target_metadata() -> MetaData:
    """The jira-writer models as the code has them (autogenerate and the migration check compare them)."""
    from .. import sms_replies  # noqa: F401  (its table is in the same metadata)
    from ..ledger import SqlRequestLedger

    return SqlRequestLedger.metadata
