"""The registry of event classes: CloudEvents type -> model class."""

from __future__ import annotations

from .base import Event
from .v1 import (
    CallAnalyzed,
    CallCompleted,
    CallReceived,
    CallScreened,
    CallTranscribed,
    ConfigChanged,
    ConsentDeclined,
    NotificationDelivery,
    NotificationFailed,
    NotificationSent,
    RecordingAbsent,
    RecordingCompleted,
    RequestStatusChanged,
    SmsAnswered,
    SmsReceived,
    SmsReplyCommented,
    SmsReplyRouted,
    StatusTextSent,
    TicketCreated,
)

EVENT_CLASSES: tuple[type[Event], ...] = (
    CallReceived,
    RecordingCompleted,
    RecordingAbsent,
    ConsentDeclined,
    CallScreened,
    CallTranscribed,
    CallAnalyzed,
    TicketCreated,
    NotificationSent,
    NotificationFailed,
    NotificationDelivery,
    CallCompleted,
    SmsReceived,
    SmsReplyRouted,
    SmsReplyCommented,
    SmsAnswered,
    RequestStatusChanged,
    StatusTextSent,
    ConfigChanged,
)

_BY_CE_TYPE: dict[str, type[Event]] = {cls.ce_type(): cls for cls in EVENT_CLASSES}


class UnknownEventType(LookupError):
    pass


def event_class(ce_type: str) -> type[Event]:
    try:
        return _BY_CE_TYPE[ce_type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {ce_type!r}") from None
