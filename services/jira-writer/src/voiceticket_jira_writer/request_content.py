"""What the JSM request, its issue property and its internal comment say.

The caller's and the model's words go through ``jira_text``: cleaned of control and bidi
characters everywhere, and wiki-escaped where Jira renders wiki markup (the description, the
comment), so a spoken ``{quote}`` or ``[~accountid:...]`` is text, not markup. Our own markup
(the bold labels, the quote block, the italic last line) is written around the escaped text.

The texts arrive redacted (the transcriber and the analyzer apply the tenant's policy), and the
issue property records what was redacted (``redactions``: kinds and counts, never values). An event
that does not say it was redacted (``redactions`` None: from an analyzer that did not redact yet,
during a rolling deploy or replayed from before it) is redacted here with the default policy
before anything is written (``redacted``), and withheld where that fails.
"""

from __future__ import annotations

import json
from typing import Any

from voiceticket_common.events import CallAnalyzed, ConsentDeclined, Entity, RecordingAbsent
from voiceticket_common.events.v1 import CONSENT_NOTICE
from voiceticket_common.redaction import WITHHELD_TRANSCRIPT, merged_counts, redact_or_none

from .field_values import Wanted
from .jira_text import TEXT_FIELD_LIMIT, clean_text, fit, plain_line, utf16_len, wiki_line, wiki_text

PROPERTY_KEY = "voiceticket.call"
PROPERTY_LIMIT = 32_768
# Already wiki text: the brackets are escaped, so they show instead of making a link.
TRUNCATION_MARKER = "\n\n\\[… transcript truncated by Voice to Ticket …\\]"
ENTITY_LIMIT = 1_000  # one detail in the description; the property keeps it whole
NO_SPEECH = "\\[no speech was recognised in the recording\\]"


WITHHELD_TEXT = "[withheld: it could not be checked for payment and identity data]"


def redacted(event: CallAnalyzed) -> CallAnalyzed:
    """The event with its texts redacted under the default policy, unless the analyzer did it
    (``redactions`` set); a text that cannot be redacted is withheld."""

    if event.redactions is not None:
        return event
    analysis = event.analysis

    def check(
        text: str, language: str | None = None, withheld: str = WITHHELD_TEXT
    ) -> tuple[str, dict[str, int]]:
        result = redact_or_none(None, text, language) if text else None
        if result is None:
            return (withheld if text else text), {}
        return result.text, result.record()

    transcript, counts = check(event.transcript, analysis.language, WITHHELD_TRANSCRIPT)
    summary, found = check(analysis.summary)
    counts = merged_counts(counts, found)
    text, found = check(analysis.description)
    counts = merged_counts(counts, found)
    entities = []
    for entity in analysis.entities:
        value, found = check(entity.value)
        counts = merged_counts(counts, found)
        entities.append(Entity(type=entity.type, value=value))
    fitted = analysis.model_copy(
        update={"summary": plain_line(summary), "description": text, "entities": entities}
    )
    return event.model_copy(update={"transcript": transcript, "analysis": fitted, "redactions": counts})


def description(event: CallAnalyzed) -> str:
    """Wiki markup: the model's description and the call's details as text, our labels bold."""

    analysis = redacted(event).analysis
    details = [f"*Intent:* {wiki_line(analysis.intent)}"]
    details.append(f"*Priority (from the call):* {analysis.priority.value}")
    details.append(f"*Caller sentiment:* {analysis.sentiment.value}")
    details.append(f"*Language:* {wiki_line(analysis.language)}")
    entities = [
        f"* {fit(wiki_line(e.type.replace('_', ' ')), 100)}: {fit(wiki_line(e.value), ENTITY_LIMIT)}"
        for e in analysis.entities
    ]
    tail = ["", created_from(event.call_sid)]

    def footer() -> str:
        listed = ["*Details the caller gave:*", *entities] if entities else []
        return "\n".join(["", "----", *details, *listed, *tail])

    # Jira refuses a description over 32,767 characters; escaping can double the model's text.
    # The last line must survive (recovery searches for it), so the entities go first, then text.
    while entities and utf16_len(footer()) > TEXT_FIELD_LIMIT // 2:
        entities.pop()
    rest = footer()
    text = fit(wiki_text(clean_text(analysis.description).strip()), TEXT_FIELD_LIMIT - utf16_len(rest) - 1)
    return text + "\n" + rest


def created_from(call_sid: str) -> str:
    """The description's last line; recovery finds an interrupted attempt's request by it (ADR 3)."""

    return f"_Created by Voice to Ticket from call {call_sid}._"


UnrecordedCall = RecordingAbsent | ConsentDeclined
"""A call that left no transcript: the request says that a caller rang, so an agent can call back."""


def unrecorded_description(event: UnrecordedCall, *what_happened: str) -> str:
    """Wiki markup: ``what_happened`` (wiki text already), then where the caller's number is."""

    return "\n".join(
        [
            *what_happened,
            "The caller's number is in the call details (issue property voiceticket.call).",
            "",
            created_from(event.call_sid),
        ]
    )


def unrecorded_wanted(
    event: UnrecordedCall, summary: str, description: str, phone_field_id: str | None
) -> Wanted:
    return Wanted(
        summary=summary,
        description=description,
        phone_field_id=phone_field_id,
        caller_number=event.caller_number,
    )


def caller_details(event: UnrecordedCall) -> dict[str, Any]:
    """The issue property's who and when of an unrecorded call; JSON data, cleaned, not wiki-escaped."""

    return {
        "lineNumber": event.line_number,
        "callerNumber": plain_line(event.caller_number),
        "receivedAt": event.occurred_at.isoformat(),
    }


def wanted(event: CallAnalyzed, phone_field_id: str | None) -> Wanted:
    """What the request should say; ``field_values`` keeps what the request type takes."""

    return Wanted(
        summary=redacted(event).analysis.summary,
        description=description(event),
        priority=event.analysis.priority,
        phone_field_id=phone_field_id,
        caller_number=event.caller_number,
    )


def call_property(event: CallAnalyzed) -> dict[str, Any]:
    """Call metadata for the issue property (readable by anyone who sees the issue).

    JSON data that Jira does not render: the caller's and the model's text is cleaned of control
    and bidi characters but not wiki-escaped, so automation and apps read it as it was said.
    """

    event = redacted(event)
    analysis = event.analysis
    value: dict[str, Any] = {
        "schemaVersion": 1,
        "callSid": event.call_sid,
        "recordingSid": event.recording_sid,
        "durationSeconds": event.duration_seconds,
        "lineNumber": event.line_number,
        "callerNumber": plain_line(event.caller_number),
        "receivedAt": event.occurred_at.isoformat(),
        # notice or pressed; None is an event from before consent, when notice was the only mode
        "consent": event.consent or CONSENT_NOTICE,
        # silence, tone, too_short, blocked_caller or robocall; None: not screened
        "screened": event.screened,
        # the caller's IVR menu choice (the option, not their words); None: no menu or no choice
        "ivrChoice": event.ivr_choice.model_dump(mode="json") if event.ivr_choice else None,
        "intent": analysis.intent,
        "priority": analysis.priority.value,
        "sentiment": analysis.sentiment.value,
        "language": analysis.language,
        "model": event.model,
        "entities": [
            {"type": plain_line(e.type), "value": clean_text(e.value).strip()} for e in analysis.entities
        ],
        # Triage and usage, so agents and admins see per call what the analysis was worth.
        "needsTriage": event.degraded,
        "triageReason": event.degraded_reason,
        "usage": {
            "promptTokens": event.prompt_tokens,
            "completionTokens": event.completion_tokens,
            "estimatedCostUsd": event.estimated_cost_usd,
        },
        # What redaction replaced before the texts left for the model and Jira: kinds and counts.
        "redactions": dict(event.redactions or {}),
    }
    while len(json.dumps(value)) > PROPERTY_LIMIT and value["entities"]:
        value["entities"] = value["entities"][:-1]
    return value


def comment_marker(call_sid: str) -> str:
    """Identifies our transcript comment, so an interrupted attempt's comment is found, not repeated."""

    return f"call {call_sid}"


def transcript_comment(event: CallAnalyzed, max_chars: int) -> str:
    """Wiki markup: the transcript, escaped, in our quote block, which a spoken ``{quote}`` cannot close.

    The transcript is in the language the caller spoke, which the header names, with the language
    the request was written in when that differs (an enforced line's translation by the model)."""

    header = (
        f"Call transcript ({comment_marker(event.call_sid)}, {event.duration_seconds} s recording, "
        f"{spoken_language(event)}):\n\n"
    )
    transcript = wiki_text(clean_text(redacted(event).transcript).strip()) or NO_SPEECH
    budget = min(max_chars, TEXT_FIELD_LIMIT - len("{quote}\n\n{quote}")) - utf16_len(header)
    transcript = fit(transcript, budget, TRUNCATION_MARKER)
    return header + "{quote}\n" + transcript + "\n{quote}"


def spoken_language(event: CallAnalyzed) -> str:
    """``spoken language: de`` and, when the request is in another, ``; request written in en``."""

    spoken = wiki_line(event.analysis.language)
    written = wiki_line(event.ticket_language or "") or spoken
    translated = f"; request written in {written}" if written != spoken else ""
    return f"spoken language: {spoken}{translated}"
