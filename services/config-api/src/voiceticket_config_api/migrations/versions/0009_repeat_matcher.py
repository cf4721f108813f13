"""The repeat-caller matcher per line (issue #16): how jira-writer decides that a repeat call is
about the same matter as an open request, ``embedding`` (all-MiniLM-L6-v2) or ``lexical``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 14:30:00

Existing lines get ``embedding``, the default (it matches better on the labelled pairs:
bench/results/repeat-matcher-*.md); a line with ``repeat_callers`` ``off``, the default, is not
affected either way.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("repeat_matcher", sa.String(length=16), nullable=False, server_default="embedding")
        )


def downgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.drop_column("repeat_matcher")
