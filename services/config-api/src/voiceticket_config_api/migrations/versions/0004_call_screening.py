"""Call screening: per line, what a screened call becomes and the message minimum; on the calls
read model, why a call was screened (issue #16).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:20:00

Existing lines get the defaults (screened calls become requests as before; 1 s of voice), so an
upgrade changes no line's behaviour.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("screening_action", sa.String(length=24), nullable=False, server_default="request")
        )
        batch_op.add_column(sa.Column("screened_request_type_id", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("min_message_seconds", sa.Float(), nullable=False, server_default=sa.text("1.0"))
        )
        batch_op.add_column(
            sa.Column("screen_robocalls", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("call_progress", schema=None) as batch_op:
        batch_op.add_column(sa.Column("screened", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("screened_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_progress", schema=None) as batch_op:
        batch_op.drop_column("screened_at")
        batch_op.drop_column("screened")
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.drop_column("screen_robocalls")
        batch_op.drop_column("min_message_seconds")
        batch_op.drop_column("screened_request_type_id")
        batch_op.drop_column("screening_action")
