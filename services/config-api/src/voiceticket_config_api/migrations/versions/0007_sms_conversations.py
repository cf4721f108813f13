"""Two-way SMS and status texts per line (issue #16): replies as comments, the HELP answer, the
statuses that text the caller; per tenant, the Jira webhook's secret (encrypted like every credential).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 13:30:00

Existing lines get the defaults (replies not read, the built-in help text, no status texts), so an
upgrade changes no line's behaviour.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sms_replies", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("sms_help_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("status_texts", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jira_webhook_secret_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("jira_webhook_secret_enc")
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.drop_column("status_texts")
        batch_op.drop_column("sms_help_text")
        batch_op.drop_column("sms_replies")
