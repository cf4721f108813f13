"""What the jira-writer handlers work with."""

from __future__ import annotations

from dataclasses import dataclass

from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.runtime_views import JiraWriterView

from .field_cache import RequestTypeFieldCache
from .ports import RecordingDeleter, RecordingRetentionLedger, RecordingSource, RequestLedger, ServiceDesk


@dataclass(frozen=True)
class RecordingRetention:
    """What deleting recordings at Twilio takes: the ledger that records it, and Twilio."""

    ledger: RecordingRetentionLedger
    deleter: RecordingDeleter


@dataclass(init=False)
class JiraWriterDeps:
    config: RuntimeConfig[JiraWriterView]
    desk: ServiceDesk
    ledger: RequestLedger
    recordings: RecordingSource | None
    """Twilio media, for lines that attach the recording; None: recordings are never attached."""
    max_comment_chars: int
    fields: RequestTypeFieldCache
    """Request-type field lists; defaults to a five-minute cache in front of ``desk``."""
    recording_retention: RecordingRetention | None
    """Deletes recordings per the tenant's ``recording_retention``; None: never deleted."""

    def __init__(
        self,
        config: RuntimeConfig[JiraWriterView],
        desk: ServiceDesk,
        ledger: RequestLedger,
        recordings: RecordingSource | None = None,
        max_comment_chars: int = 30_000,
        fields: RequestTypeFieldCache | None = None,
        recording_retention: RecordingRetention | None = None,
    ) -> None:
        self.config = config
        self.desk = desk
        self.ledger = ledger
        self.recordings = recordings
        self.max_comment_chars = max_comment_chars
        self.fields = fields if fields is not None else RequestTypeFieldCache(desk)
        self.recording_retention = recording_retention
