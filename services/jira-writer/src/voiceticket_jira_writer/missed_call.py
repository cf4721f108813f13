"""What a request for a call without a message says (line setting ``ticket_on_absent_recording``).

Twilio reports a recording as absent when it was too short or silent (error 16101/16102) and as
failed when it could not be made. There is no transcript: the request says a caller rang, and the
issue property keeps who and when, so an agent can call back.
"""

from __future__ import annotations

from typing import Any

from voiceticket_common.events import RecordingAbsent

from .field_values import Wanted
from .request_content import created_from

MISSED_CALL_SUMMARY = "Missed call: caller left no message"


def missed_call_description(event: RecordingAbsent) -> str:
    code = f", Twilio error {event.error_code}" if event.error_code else ""
    return "\n".join(
        [
            "A caller rang the support line and hung up without leaving a message "
            f"(recording status: {event.status}{code}).",
            "The caller's number is in the call details (issue property voiceticket.call).",
            "",
            created_from(event.call_sid),
        ]
    )


def missed_call_wanted(event: RecordingAbsent, phone_field_id: str | None) -> Wanted:
    return Wanted(
        summary=MISSED_CALL_SUMMARY,
        description=missed_call_description(event),
        phone_field_id=phone_field_id,
        caller_number=event.caller_number,
    )


def missed_call_property(event: RecordingAbsent) -> dict[str, Any]:
    """Call metadata for the issue property (readable by anyone who sees the issue)."""

    return {
        "schemaVersion": 1,
        "callSid": event.call_sid,
        "missedCall": True,
        "recordingStatus": event.status,
        "twilioErrorCode": event.error_code,
        "lineNumber": event.line_number,
        "callerNumber": event.caller_number,
        "receivedAt": event.occurred_at.isoformat(),
    }
