"""Repeat callers per line (issue #16): whether a caller's call about their open request becomes a
comment on it, and how far back an earlier request counts.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:30:00

Existing lines get the defaults (``off``: every call a new request, as before; 72 hours), so an
upgrade changes no line's behaviour.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("repeat_callers", sa.String(length=16), nullable=False, server_default="off")
        )
        batch_op.add_column(
            sa.Column("repeat_window_hours", sa.Integer(), nullable=False, server_default=sa.text("72"))
        )


def downgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.drop_column("repeat_window_hours")
        batch_op.drop_column("repeat_callers")
