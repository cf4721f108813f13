"""What the JSM request, its issue property and its internal comment say."""

from __future__ import annotations

import json
from typing import Any

from voiceticket_common.events import CallAnalyzed

from .field_values import Wanted

PROPERTY_KEY = "voiceticket.call"
PROPERTY_LIMIT = 32_768
TRUNCATION_MARKER = "\n\n[… transcript truncated by Voice to Ticket …]"


def description(event: CallAnalyzed) -> str:
    analysis = event.analysis
    lines = [analysis.description.strip(), "", "----", f"*Intent:* {analysis.intent}"]
    lines.append(f"*Priority (from the call):* {analysis.priority.value}")
    lines.append(f"*Caller sentiment:* {analysis.sentiment.value}")
    lines.append(f"*Language:* {analysis.language}")
    if analysis.entities:
        lines.append("*Details the caller gave:*")
        lines += [f"* {e.type.replace('_', ' ')}: {e.value}" for e in analysis.entities]
    lines += ["", created_from(event.call_sid)]
    return "\n".join(lines)


def created_from(call_sid: str) -> str:
    """The description's last line; recovery finds an interrupted attempt's request by it (ADR 3)."""

    return f"_Created by Voice to Ticket from call {call_sid}._"


def wanted(event: CallAnalyzed, phone_field_id: str | None) -> Wanted:
    """What the request should say; ``field_values`` keeps what the request type takes."""

    return Wanted(
        summary=event.analysis.summary,
        description=description(event),
        priority=event.analysis.priority,
        phone_field_id=phone_field_id,
        caller_number=event.caller_number,
    )


def call_property(event: CallAnalyzed) -> dict[str, Any]:
    """Call metadata for the issue property (readable by anyone who sees the issue)."""

    analysis = event.analysis
    value: dict[str, Any] = {
        "schemaVersion": 1,
        "callSid": event.call_sid,
        "recordingSid": event.recording_sid,
        "durationSeconds": event.duration_seconds,
        "lineNumber": event.line_number,
        "callerNumber": event.caller_number,
        "receivedAt": event.occurred_at.isoformat(),
        "intent": analysis.intent,
        "priority": analysis.priority.value,
        "sentiment": analysis.sentiment.value,
        "language": analysis.language,
        "model": event.model,
        "entities": [e.model_dump() for e in analysis.entities],
        # Triage and usage, so agents and admins see per call what the analysis was worth.
        "needsTriage": event.degraded,
        "triageReason": event.degraded_reason,
        "usage": {
            "promptTokens": event.prompt_tokens,
            "completionTokens": event.completion_tokens,
            "estimatedCostUsd": event.estimated_cost_usd,
        },
    }
    while len(json.dumps(value)) > PROPERTY_LIMIT and value["entities"]:
        value["entities"] = value["entities"][:-1]
    return value


def comment_marker(call_sid: str) -> str:
    """Identifies our transcript comment, so an interrupted attempt's comment is found, not repeated."""

    return f"call {call_sid}"


def transcript_comment(event: CallAnalyzed, max_chars: int) -> str:
    header = f"Call transcript ({comment_marker(event.call_sid)}, {event.duration_seconds} s recording):\n\n"
    transcript = event.transcript.strip() or "[no speech was recognised in the recording]"
    budget = max_chars - len(header) - len(TRUNCATION_MARKER)
    if len(transcript) > budget:
        transcript = transcript[:budget] + TRUNCATION_MARKER
    return header + "{quote}\n" + transcript + "\n{quote}"
