"""Database engine, session factory and ORM models.

The tables are made by Alembic migrations (``voiceticket_config_api/migrations``, run by
``voiceticket_common.migrations``): ``create_schema`` upgrades to the newest at startup. A model
change needs a revision (``python -m voiceticket_common.migrations revision config-api -m ...``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.pool import ConnectionPoolEntry

# The services' defaults (what they do when a field is unset) are the stored defaults as well.
from voiceticket_common.runtime_views import (
    DEFAULT_ANALYSIS_MODEL,
    DEFAULT_CONSENT_KEY,
    DEFAULT_CONSENT_MODE,
    DEFAULT_CONSENT_TIMEOUT_SECONDS,
    DEFAULT_FINISH_ON_KEY,
    DEFAULT_GREETING,
    DEFAULT_MAX_RECORDING_SECONDS,
    DEFAULT_MIN_MESSAGE_SECONDS,
    DEFAULT_OPENAI_BASE_URL,
    DEFAULT_RECORD_TIMEOUT_SECONDS,
    DEFAULT_REPEAT_CALLERS,
    DEFAULT_REPEAT_MATCHER,
    DEFAULT_REPEAT_WINDOW_HOURS,
    DEFAULT_SCREENING_ACTION,
    DEFAULT_SMS_TEMPLATE,
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_VOICE,
)

# The notice ingress says when none is stored; re-exported for the API schemas.
from voiceticket_common.runtime_views import DEFAULT_RECORDING_NOTICE as DEFAULT_RECORDING_NOTICE

# Tenant secret fields; the column holds "<kid>:<fernet token>", never plaintext.
SECRET_FIELDS = (
    "jira_api_token",
    "twilio_auth_token",
    "openai_api_key",
    "jira_oauth_token",
    "speech_to_text_api_key",
    "llm_api_key",
    "jira_webhook_secret",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    jira_base_url: Mapped[str] = mapped_column(String(500))
    jira_email: Mapped[str | None] = mapped_column(String(320))
    jira_api_token_enc: Mapped[str | None] = mapped_column(Text)
    # "basic": jira_email + jira_api_token; "oauth2": jira_oauth_token, and jira_base_url is
    # https://api.atlassian.com/ex/jira/<cloudId>
    jira_auth: Mapped[str] = mapped_column(String(16), default="basic")
    jira_oauth_token_enc: Mapped[str | None] = mapped_column(Text)
    twilio_account_sid: Mapped[str | None] = mapped_column(String(34))
    twilio_auth_token_enc: Mapped[str | None] = mapped_column(Text)
    openai_base_url: Mapped[str] = mapped_column(String(500), default=DEFAULT_OPENAI_BASE_URL)
    openai_api_key_enc: Mapped[str | None] = mapped_column(Text)
    # Speech-to-text's and the LLM's own server and key; null: openai_base_url (and, at that URL,
    # openai_api_key): voiceticket_common.runtime_views.provider_settings.
    speech_to_text_base_url: Mapped[str | None] = mapped_column(String(500))
    speech_to_text_api_key_enc: Mapped[str | None] = mapped_column(Text)
    llm_base_url: Mapped[str | None] = mapped_column(String(500))
    llm_api_key_enc: Mapped[str | None] = mapped_column(Text)
    # The secret of the tenant's Jira admin webhook (X-Hub-Signature): status texts (issue #16).
    jira_webhook_secret_enc: Mapped[str | None] = mapped_column(Text)
    transcription_model: Mapped[str] = mapped_column(String(100), default=DEFAULT_TRANSCRIPTION_MODEL)
    # Product names and terms sent to speech-to-text as its prompt, so they are spelled right.
    vocabulary: Mapped[list[str]] = mapped_column(JSON, default=list)
    analysis_model: Mapped[str] = mapped_column(String(100), default=DEFAULT_ANALYSIS_MODEL)
    # Redaction settings (voiceticket_common.redaction.RedactionPolicy.from_mapping); null: defaults.
    redaction: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # "keep" | "delete_after_ticket" | days as digits (voiceticket_common.runtime_views).
    recording_retention: Mapped[str] = mapped_column(String(32), default="keep")
    # Most calls at once per provider and replica ({"jira": 2, "llm": null, ...}; null: unlimited),
    # only what was set; missing keys and a null column: voiceticket_common's defaults.
    provider_concurrency: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # "openai" | "local" (voiceticket_common.runtime_views.TranscriptionBackend); null: openai when
    # the tenant has an OpenAI key, local when it has none.
    transcription_backend: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    lines: Mapped[list[Line]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan", passive_deletes=True
    )


class Line(Base):
    __tablename__ = "lines"

    number: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    service_desk_id: Mapped[str] = mapped_column(String(32))
    request_type_id: Mapped[str] = mapped_column(String(32))
    request_types: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    language_mode: Mapped[str] = mapped_column(String(16), default="auto")
    language: Mapped[str] = mapped_column(String(2), default="en")
    greeting: Mapped[str] = mapped_column(Text, default=DEFAULT_GREETING)
    recording_notice: Mapped[str] = mapped_column(Text, default=DEFAULT_RECORDING_NOTICE)
    voice: Mapped[str] = mapped_column(String(64), default=DEFAULT_VOICE)
    max_recording_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_MAX_RECORDING_SECONDS)
    record_timeout_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_RECORD_TIMEOUT_SECONDS)
    record_finish_on_key: Mapped[str] = mapped_column(String(12), default=DEFAULT_FINISH_ON_KEY)
    sms_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sms_from: Mapped[str | None] = mapped_column(String(16))
    sms_messaging_service_sid: Mapped[str | None] = mapped_column(String(34))
    sms_template: Mapped[str] = mapped_column(Text, default=DEFAULT_SMS_TEMPLATE)
    phone_field_id: Mapped[str | None] = mapped_column(String(64))
    attach_recording: Mapped[bool] = mapped_column(Boolean, default=False)
    ticket_on_absent_recording: Mapped[bool] = mapped_column(Boolean, default=False)
    # Consent (issue #10): "notice" says the recording notice; "press_key" records only after the
    # caller pressed consent_key; on_consent_declined: "ticket" or "none".
    consent_mode: Mapped[str] = mapped_column(String(16), default=DEFAULT_CONSENT_MODE)
    consent_key: Mapped[str] = mapped_column(String(1), default=DEFAULT_CONSENT_KEY)
    consent_prompt: Mapped[str | None] = mapped_column(Text)
    consent_timeout_seconds: Mapped[int] = mapped_column(Integer, default=DEFAULT_CONSENT_TIMEOUT_SECONDS)
    consent_repeat: Mapped[bool] = mapped_column(Boolean, default=True)
    on_consent_declined: Mapped[str] = mapped_column(String(16), default="none")
    # Screening (issue #16): what a screened call becomes, and the audio's message minimum.
    screening_action: Mapped[str] = mapped_column(String(24), default=DEFAULT_SCREENING_ACTION)
    screened_request_type_id: Mapped[str | None] = mapped_column(String(32))
    min_message_seconds: Mapped[float] = mapped_column(Float, default=DEFAULT_MIN_MESSAGE_SECONDS)
    screen_robocalls: Mapped[bool] = mapped_column(Boolean, default=False)
    # IVR menu (issue #16): options chosen by key or voice before the recording; None: no menu.
    ivr_menu: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Repeat callers (issue #16): a caller's call about their open request becomes a comment on it.
    repeat_callers: Mapped[str] = mapped_column(String(16), default=DEFAULT_REPEAT_CALLERS)
    repeat_window_hours: Mapped[int] = mapped_column(Integer, default=DEFAULT_REPEAT_WINDOW_HOURS)
    # How "the same matter" is decided: embedding (all-MiniLM-L6-v2) or lexical (shared words).
    repeat_matcher: Mapped[str] = mapped_column(String(16), default=DEFAULT_REPEAT_MATCHER)
    # Two-way SMS and status texts (issue #16): replies become comments; HELP's answer (None: the
    # default text); statuses whose arrival texts the caller ([]: none).
    sms_replies: Mapped[bool] = mapped_column(Boolean, default=False)
    sms_help_text: Mapped[str | None] = mapped_column(Text)
    status_texts: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship(back_populates="lines")


class ConfigOutbox(Base):
    """A configuration change to announce (``config.changed``): written in the change's own
    transaction, published by the relay (``outbox.py``), then marked sent and later deleted."""

    __tablename__ = "config_outbox"

    # The config version: ids are taken in commit order (outbox.record_change serialises them).
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # No foreign key: the announcement of a tenant's removal outlives the tenant.
    tenant_id: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))  # voiceticket_common.events.ConfigChangeKind
    line_numbers: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


def make_engine(url: str) -> AsyncEngine:
    # hide_parameters: SQL errors and echo must not carry phone numbers or ciphertexts.
    engine = create_async_engine(url, pool_pre_ping=not url.startswith("sqlite"), hide_parameters=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_fk(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # ON DELETE CASCADE needs this in SQLite
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            # WAL: readers do not wait on the writer, and a commit is one append and one fsync
            # instead of a rollback journal's several (the call-key PUT commits once per call).
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


async def create_schema(engine: AsyncEngine) -> None:
    """Upgrade config-api's tables to the newest migration (a database made by ``create_all``
    before migrations is adopted first); at head it does nothing."""
    from voiceticket_common.migrations import upgrade

    await upgrade(engine, "config-api")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
