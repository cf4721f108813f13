"""Baseline: the analyzer ledger's tables as ``metadata.create_all`` made them before migrations.

Revision ID: 0001
Revises:
Create Date: 2026-12-02

Frozen: never edit this schema; change tables in a new revision. ``schema()`` is also what the
runner (``voiceticket_common.migrations.adopt``) completes an unversioned database to before
stamping it here (a missing table is created, a missing column added; NOT NULL ones filled on old
rows with their ``default=``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def schema() -> sa.MetaData:
    """The ledger's tables at the baseline (a new MetaData each call)."""
    metadata = sa.MetaData()
    sa.Table(
        "analyzer_outcomes",
        metadata,
        sa.Column("transcript_sha256", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("transcript_sha256", "tenant_id", "call_sid"),
        sa.Index("ix_analyzer_outcomes_expires_at", "expires_at"),
    )
    return metadata


def upgrade() -> None:
    schema().create_all(op.get_bind())


def downgrade() -> None:
    schema().drop_all(op.get_bind())
