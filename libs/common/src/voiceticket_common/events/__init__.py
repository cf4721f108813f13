"""Schema-versioned events of the call lifecycle, and of configuration changes."""

from .base import Event
from .registry import EVENT_CLASSES, UnknownEventType, event_class
from .v1 import (
    Analysis,
    CallAnalyzed,
    CallCompleted,
    CallReceived,
    CallTranscribed,
    ConfigChanged,
    ConfigChangeKind,
    ConsentDeclined,
    Entity,
    NotificationDelivery,
    NotificationFailed,
    NotificationSent,
    Priority,
    RecordingAbsent,
    RecordingCompleted,
    Sentiment,
    TicketCreated,
    TranscriptSegment,
)

__all__ = [
    "EVENT_CLASSES",
    "Analysis",
    "CallAnalyzed",
    "CallCompleted",
    "CallReceived",
    "CallTranscribed",
    "ConfigChangeKind",
    "ConfigChanged",
    "ConsentDeclined",
    "Entity",
    "Event",
    "NotificationDelivery",
    "NotificationFailed",
    "NotificationSent",
    "Priority",
    "RecordingAbsent",
    "RecordingCompleted",
    "Sentiment",
    "TicketCreated",
    "TranscriptSegment",
    "UnknownEventType",
    "event_class",
]
