"""Repeat callers (issue #16). Placeholder revision, filled in by the work it is named for.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 13:30:00
"""

from collections.abc import Sequence

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
