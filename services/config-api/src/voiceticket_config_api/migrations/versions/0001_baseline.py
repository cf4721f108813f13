"""Baseline: config-api's tables as ``metadata.create_all`` made them before migrations.

Revision ID: 0001
Revises:
Create Date: 2026-12-02

Frozen: never edit this schema; change tables in a new revision. ``schema()`` is also what the
runner (``voiceticket_common.migrations.adopt``) completes an unversioned database to before
stamping it here: a table it lacks is created, a column it lacks is added; a NOT NULL column is
filled on old rows with its default (``default=``) or ``info["backfill"]``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from voiceticket_common.runtime_views import (
    DEFAULT_ANALYSIS_MODEL,
    DEFAULT_CONSENT_KEY,
    DEFAULT_CONSENT_MODE,
    DEFAULT_CONSENT_TIMEOUT_SECONDS,
    DEFAULT_FINISH_ON_KEY,
    DEFAULT_GREETING,
    DEFAULT_MAX_RECORDING_SECONDS,
    DEFAULT_OPENAI_BASE_URL,
    DEFAULT_RECORD_TIMEOUT_SECONDS,
    DEFAULT_RECORDING_NOTICE,
    DEFAULT_SMS_TEMPLATE,
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_VOICE,
)

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_APPEND_ONLY = (  # (dialect, statement): UPDATE on audit_events is refused (DELETE is not)
    (
        "sqlite",
        "CREATE TRIGGER IF NOT EXISTS audit_events_append_only BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    ),
    (
        "postgresql",
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$",
    ),
    (
        "postgresql",
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    ),
)


def _tenants(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "tenants",
        metadata,
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("jira_base_url", sa.String(length=500), nullable=False),
        sa.Column("jira_email", sa.String(length=320), nullable=True),
        sa.Column("jira_api_token_enc", sa.Text(), nullable=True),
        sa.Column("jira_auth", sa.String(length=16), nullable=False, default="basic"),
        sa.Column("jira_oauth_token_enc", sa.Text(), nullable=True),
        sa.Column("twilio_account_sid", sa.String(length=34), nullable=True),
        sa.Column("twilio_auth_token_enc", sa.Text(), nullable=True),
        sa.Column("openai_base_url", sa.String(length=500), nullable=False, default=DEFAULT_OPENAI_BASE_URL),
        sa.Column("openai_api_key_enc", sa.Text(), nullable=True),
        sa.Column(
            "transcription_model", sa.String(length=100), nullable=False, default=DEFAULT_TRANSCRIPTION_MODEL
        ),
        sa.Column("vocabulary", sa.JSON(), nullable=False, info={"backfill": "[]"}),
        sa.Column("analysis_model", sa.String(length=100), nullable=False, default=DEFAULT_ANALYSIS_MODEL),
        sa.Column("redaction", sa.JSON(), nullable=True),
        sa.Column("recording_retention", sa.String(length=32), nullable=False, default="keep"),
        sa.Column("provider_concurrency", sa.JSON(), nullable=True),
        sa.Column("transcription_backend", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def _lines(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "lines",
        metadata,
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("service_desk_id", sa.String(length=32), nullable=False),
        sa.Column("request_type_id", sa.String(length=32), nullable=False),
        sa.Column("request_types", sa.JSON(), nullable=False, info={"backfill": "{}"}),
        sa.Column("language_mode", sa.String(length=16), nullable=False, default="auto"),
        sa.Column("language", sa.String(length=2), nullable=False, default="en"),
        sa.Column("greeting", sa.Text(), nullable=False, default=DEFAULT_GREETING),
        sa.Column("recording_notice", sa.Text(), nullable=False, default=DEFAULT_RECORDING_NOTICE),
        sa.Column("voice", sa.String(length=64), nullable=False, default=DEFAULT_VOICE),
        sa.Column(
            "max_recording_seconds", sa.Integer(), nullable=False, default=DEFAULT_MAX_RECORDING_SECONDS
        ),
        sa.Column(
            "record_timeout_seconds", sa.Integer(), nullable=False, default=DEFAULT_RECORD_TIMEOUT_SECONDS
        ),
        sa.Column(
            "record_finish_on_key", sa.String(length=12), nullable=False, default=DEFAULT_FINISH_ON_KEY
        ),
        sa.Column("sms_enabled", sa.Boolean(), nullable=False, default=True),
        sa.Column("sms_from", sa.String(length=16), nullable=True),
        sa.Column("sms_messaging_service_sid", sa.String(length=34), nullable=True),
        sa.Column("sms_template", sa.Text(), nullable=False, default=DEFAULT_SMS_TEMPLATE),
        sa.Column("phone_field_id", sa.String(length=64), nullable=True),
        sa.Column("attach_recording", sa.Boolean(), nullable=False, default=False),
        sa.Column("ticket_on_absent_recording", sa.Boolean(), nullable=False, default=False),
        sa.Column("consent_mode", sa.String(length=16), nullable=False, default=DEFAULT_CONSENT_MODE),
        sa.Column("consent_key", sa.String(length=1), nullable=False, default=DEFAULT_CONSENT_KEY),
        sa.Column("consent_prompt", sa.Text(), nullable=True),
        sa.Column(
            "consent_timeout_seconds", sa.Integer(), nullable=False, default=DEFAULT_CONSENT_TIMEOUT_SECONDS
        ),
        sa.Column("consent_repeat", sa.Boolean(), nullable=False, default=True),
        sa.Column("on_consent_declined", sa.String(length=16), nullable=False, default="none"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("number"),
        sa.Index("ix_lines_tenant_id", "tenant_id"),
    )


def _admin_tokens(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "admin_tokens",
        metadata,
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("name"),
        sa.UniqueConstraint("digest"),
    )


def _audit_events(metadata: sa.MetaData) -> sa.Table:
    table = sa.Table(
        "audit_events",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("tenant_id", sa.String(length=63), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False, info={"backfill": "{}"}),
        sa.PrimaryKeyConstraint("id"),
        *(sa.Index(f"ix_audit_events_{c}", c) for c in ("action", "actor", "at", "target", "tenant_id")),
    )
    for dialect, statement in AUDIT_APPEND_ONLY:  # with the table, also when adopt() creates it
        sa.event.listen(table, "after_create", sa.DDL(statement).execute_if(dialect=dialect))  # type: ignore[no-untyped-call]
    return table


def _vault(metadata: sa.MetaData) -> None:
    sa.Table(
        "call_keys",
        metadata,
        sa.Column("tenant_id", sa.String(length=63), nullable=False),
        sa.Column("call_sid", sa.String(length=34), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("wrapped_key", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("erased_because", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "call_sid"),
        sa.Index("ix_call_keys_erased_at", "erased_at"),
        sa.Index("ix_call_keys_subject", "subject"),
    )
    sa.Table(
        "vault_secrets",
        metadata,
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("wrapped", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def schema() -> sa.MetaData:
    """config-api's tables at the baseline (a new MetaData each call)."""
    metadata = sa.MetaData()
    _tenants(metadata)
    _lines(metadata)
    _admin_tokens(metadata)
    _audit_events(metadata)
    _vault(metadata)
    return metadata


def upgrade() -> None:
    schema().create_all(op.get_bind())


def downgrade() -> None:
    schema().drop_all(op.get_bind())
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
