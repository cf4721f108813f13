"""What the jira-writer handlers work with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.runtime_views import JiraWriterView

from .field_cache import RequestTypeFieldCache
from .ports import RecordingDeleter, RecordingRetentionLedger, RecordingSource, RequestLedger, ServiceDesk
from .repeat_callers import RepeatCallers

if TYPE_CHECKING:  # sms_replies' handler works with these deps
    from .sms_replies import SqlSmsReplies


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
    repeat: RepeatCallers | None
    """Finds a repeat caller's open request (lines with ``repeat_callers``); None: never looked for."""
    sms_replies: SqlSmsReplies | None
    """Callers' SMS replies commented on their requests (two-way SMS); None: none are."""

    def __init__(
        self,
        config: RuntimeConfig[JiraWriterView],
        desk: ServiceDesk,
        ledger: RequestLedger,
        recordings: RecordingSource | None = None,
        max_comment_chars: int = 30_000,
        fields: RequestTypeFieldCache | None = None,
        recording_retention: RecordingRetention | None = None,
        repeat: RepeatCallers | None = None,
        sms_replies: SqlSmsReplies | None = None,
    ) -> None:
        self.config = config
        self.desk = desk
        self.ledger = ledger
        self.recordings = recordings
        self.max_comment_chars = max_comment_chars
        self.fields = fields if fields is not None else RequestTypeFieldCache(desk)
        self.recording_retention = recording_retention
        self.repeat = repeat
        self.sms_replies = sms_replies
