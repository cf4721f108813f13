from __future__ import annotations

from voiceticket_common.settings import ServiceSettings


class JiraWriterSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.local/jira-writer.db"
    jira_timeout_seconds: float = 30.0
    max_comment_chars: int = 30_000
