"""What a request for a call without a message says (line setting ``ticket_on_absent_recording``).

Twilio reports a recording as absent when it was too short or silent (error 16101/16102) and as
failed when it could not be made. There is no transcript: the request says a caller rang, and the
issue property keeps who and when, so an agent can call back.
"""

from __future__ import annotations

from typing import Any

from voiceticket_common.events import RecordingAbsent
from voiceticket_common.events.v1 import CONSENT_NOTICE

from .field_values import Wanted
from .jira_text import plain_line, wiki_line
from .request_content import caller_details, unrecorded_description, unrecorded_wanted

MISSED_CALL_SUMMARY = "Missed call: caller left no message"


def missed_call_description(event: RecordingAbsent) -> str:
    """Wiki markup; Twilio's status and error code are escaped like any text from outside."""

    code = f", Twilio error {wiki_line(event.error_code)}" if event.error_code else ""
    return unrecorded_description(
        event,
        "A caller rang the support line and hung up without leaving a message "
        f"(recording status: {wiki_line(event.status)}{code}).",
    )


def missed_call_wanted(event: RecordingAbsent, phone_field_id: str | None) -> Wanted:
    return unrecorded_wanted(event, MISSED_CALL_SUMMARY, missed_call_description(event), phone_field_id)


def missed_call_property(event: RecordingAbsent) -> dict[str, Any]:
    """Call metadata for the issue property (readable by anyone who sees the issue); JSON data,
    cleaned of control and bidi characters, not wiki-escaped (see ``jira_text``)."""

    return {
        "schemaVersion": 1,
        "callSid": event.call_sid,
        "missedCall": True,
        "recordingStatus": plain_line(event.status),
        "twilioErrorCode": plain_line(event.error_code) if event.error_code is not None else None,
        **caller_details(event),
        "consent": event.consent or CONSENT_NOTICE,
    }
