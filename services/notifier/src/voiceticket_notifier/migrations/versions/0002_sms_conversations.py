"""Two-way SMS and status texts (issue #16): the requests we texted callers about.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 13:30:00

A new table (``conversations.ConversationRow``): the caller known by a keyed hash, the number only
sealed under the call's data key. Existing databases start with no conversations: replies to SMS
sent before the upgrade get the polite "no open request" answer.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifier_conversations",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("issue_key", sa.String(length=64), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("line_number", sa.String(length=16), nullable=False),
        sa.Column("caller_hash", sa.String(length=64), nullable=False),
        sa.Column("caller_sealed", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("texted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "issue_key"),
    )
    op.create_index(
        "ix_notifier_conversations_caller", "notifier_conversations", ["tenant_id", "caller_hash"]
    )


def downgrade() -> None:
    op.drop_index("ix_notifier_conversations_caller", table_name="notifier_conversations")
    op.drop_table("notifier_conversations")
