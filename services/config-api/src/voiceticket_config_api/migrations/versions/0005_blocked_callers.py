"""Per-tenant block list of callers (issue #16): the vault's keyed hash of each blocked number
and the admin's note, never the number.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:30:00

A new, empty table: no tenant blocks anyone after the upgrade, so no line's behaviour changes.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blocked_callers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "subject", name="uq_blocked_callers_tenant_subject"),
    )
    with op.batch_alter_table("blocked_callers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blocked_callers_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("blocked_callers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocked_callers_tenant_id"))
    op.drop_table("blocked_callers")
