"""Calls in, exactly one JSM request per call out.

``call.analyzed``: the request with fields from the analysis, the call property, the transcript as
an internal comment and, when the line wants it, the recording. ``call.recording.absent``: nothing,
unless the line asks for a ticket for calls without a message (``ticket_on_absent_recording``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from voiceticket_common.bus import Envelope, PermanentError
from voiceticket_common.events import CallAnalyzed, Event, RecordingAbsent, TicketCreated
from voiceticket_common.metrics import observe_call_to_ticket
from voiceticket_common.tracing import tag_issue_key

from .deps import JiraWriterDeps
from .missed_call import MISSED_CALL_SUMMARY, missed_call_property, missed_call_wanted
from .ports import LedgerEntry
from .request_content import call_property, comment_marker, transcript_comment, wanted
from .request_steps import ensure_comment, ensure_property, ensure_recording, ensure_request
from .site import jira_site

__all__ = ["JiraWriterDeps", "handle", "write_missed_call", "write_request"]

log = logging.getLogger(__name__)

_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")


async def handle(envelope: Envelope, deps: JiraWriterDeps) -> Sequence[Event]:
    """The consumer's handler: dispatches on the event type."""
    event = envelope.event
    if isinstance(event, CallAnalyzed):
        return await write_request(envelope, deps)
    if isinstance(event, RecordingAbsent):
        return await write_missed_call(envelope, deps)
    raise PermanentError(f"jira-writer does not handle {type(event).__name__}")


async def write_request(envelope: Envelope, deps: JiraWriterDeps) -> Sequence[Event]:
    event = envelope.event
    assert isinstance(event, CallAnalyzed)
    config = await deps.config.line(event.line_number)
    line = config.line
    site = jira_site(config)
    request_types = line.get("request_types") or {}
    request_type_id = str(request_types.get(event.analysis.intent) or line["request_type_id"])
    service_desk_id = str(line["service_desk_id"])

    entry = await deps.ledger.claim(event.tenant_id, event.call_sid)
    await ensure_request(
        deps,
        site,
        entry,
        service_desk_id,
        request_type_id,
        wanted(event, line.get("phone_field_id")),
        event.analysis.entities,
    )
    assert entry.issue_key is not None and entry.issue_id is not None
    tag_issue_key(entry.issue_key)
    await ensure_property(deps, site, entry, call_property(event))
    await ensure_comment(
        deps,
        site,
        entry,
        comment_marker(event.call_sid),
        transcript_comment(event, deps.max_comment_chars),
    )
    if line.get("attach_recording"):
        if _RECORDING_SID.match(event.recording_sid):
            await ensure_recording(deps, site, entry, config, service_desk_id, event.recording_sid)
        else:
            log.warning("recording not attached: the call has no recording SID")
    observe_call_to_ticket(event.tenant_id)
    return [
        ticket_created(
            event, entry, service_desk_id, request_type_id, event.analysis.summary, event.analysis.language
        )
    ]


async def write_missed_call(envelope: Envelope, deps: JiraWriterDeps) -> Sequence[Event]:
    event = envelope.event
    assert isinstance(event, RecordingAbsent)
    config = await deps.config.line(event.line_number)
    line = config.line
    if not line.get("ticket_on_absent_recording"):
        # The default: abandoned calls do not become ghost tickets.
        log.info("call without a message; the line makes no ticket for it", extra={"status": event.status})
        return []
    site = jira_site(config)
    request_type_id = str(line["request_type_id"])
    service_desk_id = str(line["service_desk_id"])

    entry = await deps.ledger.claim(event.tenant_id, event.call_sid)
    await ensure_request(
        deps,
        site,
        entry,
        service_desk_id,
        request_type_id,
        missed_call_wanted(event, line.get("phone_field_id")),
    )
    assert entry.issue_key is not None and entry.issue_id is not None
    tag_issue_key(entry.issue_key)
    await ensure_property(deps, site, entry, missed_call_property(event))
    return [
        ticket_created(
            event, entry, service_desk_id, request_type_id, MISSED_CALL_SUMMARY, line.get("language")
        )
    ]


def ticket_created(
    event: CallAnalyzed | RecordingAbsent,
    entry: LedgerEntry,
    service_desk_id: str,
    request_type_id: str,
    summary: str,
    language: str | None,
) -> TicketCreated:
    assert entry.issue_key is not None and entry.issue_id is not None
    return TicketCreated(
        **event.call_context(),
        issue_key=entry.issue_key,
        issue_id=entry.issue_id,
        service_desk_id=service_desk_id,
        request_type_id=request_type_id,
        summary=summary,
        language=language,
    )
