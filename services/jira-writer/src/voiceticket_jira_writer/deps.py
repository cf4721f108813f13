"""What the jira-writer handlers work with."""

from __future__ import annotations

from dataclasses import dataclass, field

from voiceticket_common.config_client import RuntimeConfig

from .field_cache import RequestTypeFieldCache
from .ports import RecordingSource, RequestLedger, ServiceDesk


@dataclass
class JiraWriterDeps:
    config: RuntimeConfig
    desk: ServiceDesk
    ledger: RequestLedger
    recordings: RecordingSource | None = None
    """Twilio media, for lines that attach the recording; None: recordings are never attached."""
    max_comment_chars: int = 30_000
    fields: RequestTypeFieldCache = field(default=None)  # type: ignore[assignment]
    """Request-type field lists; defaults to a five-minute cache in front of ``desk``."""

    def __post_init__(self) -> None:
        if self.fields is None:
            self.fields = RequestTypeFieldCache(self.desk)
