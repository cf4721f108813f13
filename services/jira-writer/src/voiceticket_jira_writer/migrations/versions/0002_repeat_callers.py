"""Repeat callers (issue #16): the caller index (requests by a keyed hash of the caller's number,
never the number) and each call's repeat decision.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 13:30:00

Existing rows get no decision (null): they were written before repeat callers existed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jira_writer_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repeat_decision", sa.String(length=16), nullable=True))
    op.create_table(
        "jira_writer_callers",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("caller_hash", sa.String(length=64), nullable=False),
        sa.Column("issue_key", sa.String(length=64), nullable=False),
        sa.Column("issue_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "call_sid"),
    )
    op.create_index("ix_jira_writer_callers_caller", "jira_writer_callers", ["tenant_id", "caller_hash"])


def downgrade() -> None:
    op.drop_index("ix_jira_writer_callers_caller", table_name="jira_writer_callers")
    op.drop_table("jira_writer_callers")
    with op.batch_alter_table("jira_writer_requests", schema=None) as batch_op:
        batch_op.drop_column("repeat_decision")
