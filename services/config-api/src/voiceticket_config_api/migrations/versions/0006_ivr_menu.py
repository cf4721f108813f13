"""IVR menu per line (issue #16): options chosen by key or voice before the recording, as JSON;
on the calls read model, the option a caller chose.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:30:00

Existing lines get none (null), so an upgrade changes no line's behaviour.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ivr_menu", sa.JSON(), nullable=True))
    with op.batch_alter_table("call_progress", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ivr_choice", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("call_progress", schema=None) as batch_op:
        batch_op.drop_column("ivr_choice")
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.drop_column("ivr_menu")
