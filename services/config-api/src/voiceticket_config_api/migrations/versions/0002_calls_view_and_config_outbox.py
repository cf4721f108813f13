"""The calls view (call_progress, call_dead_letters) and the config.changed outbox (config_outbox).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 18:23:38.002246

Written by ``python -m voiceticket_common.migrations revision``: read it before committing
(autogenerate misses renames, server defaults and data; SQLite runs it in batch mode).
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
        "call_dead_letters",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=True),
        sa.Column("group", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("original_topic", sa.String(length=300), nullable=False),
        sa.Column("error_type", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replayed_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("call_dead_letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_dead_letters_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_dead_letters_call_sid"), ["call_sid"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_dead_letters_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "call_progress",
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("line", sa.String(length=16), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recording", sa.String(length=16), nullable=True),
        sa.Column("recording_detail", sa.String(length=64), nullable=True),
        sa.Column("transcribed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transcription_model", sa.String(length=100), nullable=True),
        sa.Column("transcript_missing", sa.Boolean(), nullable=True),
        sa.Column("analyzed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("degraded_reason", sa.String(length=64), nullable=True),
        sa.Column("triage", sa.String(length=16), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=True),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("request_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("request_key", sa.String(length=64), nullable=True),
        sa.Column("sms_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sms_state", sa.String(length=16), nullable=True),
        sa.Column("sms_detail", sa.String(length=300), nullable=True),
        sa.Column("sms_delivery", sa.String(length=32), nullable=True),
        sa.Column("sms_delivery_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("call_status", sa.String(length=16), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("call_duration", sa.Boolean(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("call_sid"),
    )
    with op.batch_alter_table("call_progress", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_progress_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_progress_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "config_outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("line_numbers", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("config_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_config_outbox_sent_at"), ["sent_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("config_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_config_outbox_sent_at"))

    op.drop_table("config_outbox")
    with op.batch_alter_table("call_progress", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_progress_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_call_progress_started_at"))

    op.drop_table("call_progress")
    with op.batch_alter_table("call_dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_dead_letters_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_call_dead_letters_call_sid"))
        batch_op.drop_index(batch_op.f("ix_call_dead_letters_at"))

    op.drop_table("call_dead_letters")
