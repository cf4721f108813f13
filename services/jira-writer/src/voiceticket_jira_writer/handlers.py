"""Calls in, exactly one JSM request per call out.

``call.analyzed``: the request with fields from the analysis, the call property, the transcript as
an internal comment and, when the line wants it, the recording. ``call.recording.absent``: nothing,
unless the line asks for a ticket for calls without a message (``ticket_on_absent_recording``).

Each delivery works on the call under its ledger lease (``_leased``): a concurrent delivery of the
same call (a rebalance, a second replica) gets a TransientError with Retry-After and acts only once
the lease is given back or has expired. The lease is given back when the handler ends, however it
ends; a crashed process's lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from voiceticket_common.events import (
    CallAnalyzed,
    ConsentDeclined,
    Entity,
    Event,
    RecordingAbsent,
    TicketCreated,
)
from voiceticket_common.metrics import observe_call_to_ticket
from voiceticket_common.runtime_views import SCREENING_SCREENED_REQUEST, JiraWriterLine
from voiceticket_common.tracing import tag_issue_key

from .deps import JiraWriterDeps
from .field_values import Wanted
from .jira_text import jira_summary
from .missed_call import MISSED_CALL_SUMMARY, missed_call_property, missed_call_wanted
from .ports import CreatedRequest, JiraSite, LedgerEntry
from .recording_retention import ensure_recording_retention
from .repeat_callers import ensure_repeat_decision, remember_request, repeat_call_comment, repeat_enabled
from .request_content import call_property, comment_marker, transcript_comment, wanted
from .request_steps import ensure_comment, ensure_property, ensure_recording, ensure_request
from .site import jira_site

__all__ = ["JiraWriterDeps", "write_missed_call", "write_request"]

log = logging.getLogger(__name__)

_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")

CallEvent = CallAnalyzed | RecordingAbsent | ConsentDeclined
"""The events a request is written for (``declined_call`` writes for ``call.consent.declined``)."""


async def write_request(event: CallAnalyzed, deps: JiraWriterDeps) -> Sequence[Event]:
    config = await deps.config.line(event.line_number)
    line = config.line
    site = jira_site(config)
    target = request_target(event, line)
    async with _leased(event, deps) as entry:
        existing = await ensure_repeat_decision(deps.repeat, deps.desk, site, entry, event, line)
        if existing is not None:
            # A repeat caller about their open request: the call goes onto it, no new request.
            request = existing
            tag_issue_key(request.issue_key)
            body = repeat_call_comment(event, deps.max_comment_chars)
        else:
            request = await _open_request(
                entry, deps, site, target, wanted(event, line.phone_field_id), event.analysis.entities
            )
            if deps.repeat is not None and repeat_enabled(line, event, deps.repeat):
                await remember_request(deps.repeat, entry, event, request)
            await ensure_property(deps, site, entry, request, call_property(event))
            body = transcript_comment(event, deps.max_comment_chars)
        await ensure_comment(deps, site, entry, request, comment_marker(event.call_sid), body)
        if line.attach_recording:
            if _RECORDING_SID.match(event.recording_sid):
                await ensure_recording(
                    deps, site, entry, request, config, target.service_desk_id, event.recording_sid
                )
            else:
                log.warning("recording not attached: the call has no recording SID")
        if _RECORDING_SID.match(event.recording_sid):
            # After the request and its attachment: the tenant's recording_retention.
            await ensure_recording_retention(deps, entry, config, event.recording_sid, event.line_number)
    observe_call_to_ticket(event.tenant_id)
    # The SMS quotes the summary: the same cleaned text the request got, not the model's raw words.
    summary = jira_summary(event.analysis.summary)
    written_in = event.ticket_language or event.analysis.language  # the SMS follows it
    created = ticket_created(event, request, target, summary, written_in)
    return [created.model_copy(update={"added_to_existing": existing is not None})]


async def write_missed_call(event: RecordingAbsent, deps: JiraWriterDeps) -> Sequence[Event]:
    config = await deps.config.line(event.line_number)
    line = config.line
    if not line.ticket_on_absent_recording:
        # The default: abandoned calls do not become ghost tickets.
        log.info("call without a message; the line makes no ticket for it", extra={"status": event.status})
        return []
    site = jira_site(config)
    target = RequestTarget(line.service_desk_id, line.request_type_id)
    async with _leased(event, deps) as entry:
        request = await _open_request(
            entry, deps, site, target, missed_call_wanted(event, line.phone_field_id)
        )
        await ensure_property(deps, site, entry, request, missed_call_property(event))
    return [ticket_created(event, request, target, MISSED_CALL_SUMMARY, line.language)]


@dataclass(frozen=True)
class RequestTarget:
    """Where the call's request goes: the service desk and the request type."""

    service_desk_id: str
    request_type_id: str


def request_target(event: CallAnalyzed, line: JiraWriterLine) -> RequestTarget:
    """The intent's request type (the line's default for an unmapped one); a screened call on a
    ``screened_request`` line goes to the screened request type instead, whatever its intent; the
    caller's IVR menu choice names a request type that wins over the intent too."""
    if event.screened and line.screening_action == SCREENING_SCREENED_REQUEST:
        return RequestTarget(line.service_desk_id, line.screened_request_type_id or line.request_type_id)
    if event.ivr_choice is not None and event.ivr_choice.request_type_id:
        return RequestTarget(line.service_desk_id, event.ivr_choice.request_type_id)
    return RequestTarget(
        line.service_desk_id, line.request_types.get(event.analysis.intent) or line.request_type_id
    )


@asynccontextmanager
async def _leased(event: CallEvent, deps: JiraWriterDeps) -> AsyncIterator[LedgerEntry]:
    """The call's ledger row under this attempt's lease, given back when the block ends.

    ``LeaseBusy`` (another attempt holds it) and ``LeaseLost`` (it was taken over) are
    TransientErrors: the bus retries, and the retry finds the holder's result or its expired lease.
    A crash gives nothing back: the lease expires and a redelivery takes over.
    """
    entry = await deps.ledger.claim(event.tenant_id, event.call_sid)
    try:
        yield entry
    except (Exception, asyncio.CancelledError):
        # A failure or a shutdown: give the lease back so the retry need not wait it out. (A
        # dying process, SystemExit or a kill, leaves it to expire.)
        await deps.ledger.release(entry)
        raise
    await deps.ledger.release(entry)


async def _open_request(
    entry: LedgerEntry,
    deps: JiraWriterDeps,
    site: JiraSite,
    target: RequestTarget,
    fields: Wanted,
    entities: Sequence[Entity] = (),
) -> CreatedRequest:
    """Make sure the call's one request exists."""

    request = await ensure_request(
        deps, site, entry, target.service_desk_id, target.request_type_id, fields, entities
    )
    tag_issue_key(request.issue_key)
    return request


def ticket_created(
    event: CallEvent,
    request: CreatedRequest,
    target: RequestTarget,
    summary: str,
    language: str | None,
) -> TicketCreated:
    return TicketCreated(
        **event.call_context(),
        issue_key=request.issue_key,
        issue_id=request.issue_id,
        service_desk_id=target.service_desk_id,
        request_type_id=target.request_type_id,
        summary=summary,
        language=language,
    )
