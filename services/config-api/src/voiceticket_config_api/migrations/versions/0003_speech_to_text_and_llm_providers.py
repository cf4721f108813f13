"""Separate speech-to-text and LLM providers per tenant (their base URLs and sealed keys).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 19:05:36.203689

Written by ``python -m voiceticket_common.migrations revision``: read it before committing
(autogenerate misses renames, server defaults and data; SQLite runs it in batch mode).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("speech_to_text_base_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("speech_to_text_api_key_enc", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("llm_base_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("llm_api_key_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("llm_api_key_enc")
        batch_op.drop_column("llm_base_url")
        batch_op.drop_column("speech_to_text_api_key_enc")
        batch_op.drop_column("speech_to_text_base_url")
