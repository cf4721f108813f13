from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator

from voiceticket_common.settings import ServiceSettings, require_lease_outlasts

from .embedding_matcher import DEFAULT_EMBEDDING_THRESHOLD
from .repeat_matcher import DEFAULT_THRESHOLD


class JiraWriterSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.local/jira-writer.db"
    jira_timeout_seconds: float = 30.0
    max_comment_chars: int = 30_000
    request_type_fields_cache_seconds: float = 300.0
    """How long a request type's field list is reused before Jira is asked again."""
    twilio_api_base_url: str = "https://api.twilio.com"
    """Where recordings are downloaded from, for lines that attach them."""
    max_attachment_bytes: int = 100 * 1024 * 1024
    """Largest recording attached; set it to the Jira site's attachment limit if that is lower.
    An hour of Twilio's mono WAV is about 58 MB."""
    recording_download_timeout_seconds: float = 60.0
    request_lease_seconds: float = Field(default=60.0, gt=0)
    """How long one attempt holds a call's ledger row (renewed before each write to Jira). A
    concurrent delivery of the call waits (Retry-After) until the holder is done or this has passed
    since its last renewal; a crashed attempt's call is taken over after it. Longer than
    ``jira_timeout_seconds``, so a create always ends within the lease it runs in; keep it well
    within the bus's retry budget (120 s), which a waiting delivery spends."""
    search_index_lag_seconds: float = Field(default=15.0, ge=0)
    """How long Jira's search may take to show a new request. An attempt that takes over a call
    whose earlier create is unaccounted for creates again only when that create's lease ended this
    long ago and search still finds no request with the CallSid (ADR 3)."""

    request_retention_days: int = Field(default=30, ge=1)
    """How long a finished call's ledger row (issue key, steps done) is kept; the scheduled purge
    deletes older ones. Keep it longer than the dead-letter retention, so a replayed letter still
    finds its call's request (a row whose recording deletion is pending stays until it is done)."""

    caller_hash_key: SecretStr | None = None
    """Keys the hash under which the requests of repeat callers are remembered
    (``VOICETICKET_CALLER_HASH_KEY``); unset: derived from ``config_api_token``. Changing it makes
    jira-writer forget earlier callers (their next call is a new request): nothing breaks."""
    repeat_match_threshold: float = Field(default=DEFAULT_THRESHOLD, gt=0, le=1)
    """How much of an open request's summary a repeat call must cover to go onto it
    (``repeat_matcher``; bench/results/repeat-matcher-2026-12-03.md measures the default)."""
    repeat_embedding_threshold: float = Field(default=DEFAULT_EMBEDDING_THRESHOLD, gt=0, le=1)
    """The cosine similarity a repeat call must reach with an open request's summary to go onto it,
    on lines whose ``repeat_matcher`` is ``embedding`` (``embedding_matcher``; the same bench)."""

    @model_validator(mode="after")
    def _lease_outlasts_a_create(self) -> Self:
        require_lease_outlasts(self, "request_lease_seconds", "jira_timeout_seconds")
        return self
