from __future__ import annotations

from voiceticket_common.settings import ServiceSettings


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
