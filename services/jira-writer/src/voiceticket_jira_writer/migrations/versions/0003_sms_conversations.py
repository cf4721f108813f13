"""Two-way SMS (issue #16): each caller reply commented on a request, by its MessageSid.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 13:30:00

A new table (``sms_replies.SmsReplyRow``); it holds no personal data (the reply's text is only on
the bus, sealed, and in the tenant's Jira).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "jira_writer_sms_replies",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("message_sid", sa.String(length=34), nullable=False),
        sa.Column("issue_key", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "message_sid"),
    )


def downgrade() -> None:
    op.drop_table("jira_writer_sms_replies")
