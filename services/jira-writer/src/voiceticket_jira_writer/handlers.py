"""analysis -> exactly one JSM request with its call property and internal transcript comment."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from voiceticket_common.bus import Envelope
from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.events import CallAnalyzed, Event, TicketCreated
from voiceticket_common.metrics import observe_call_to_ticket
from voiceticket_common.tracing import tag_issue_key

from .ports import JiraSite, RequestDraft, RequestLedger, ServiceDesk
from .request_content import PROPERTY_KEY, call_property, comment_marker, request_fields, transcript_comment

log = logging.getLogger(__name__)


@dataclass
class JiraWriterDeps:
    config: RuntimeConfig
    desk: ServiceDesk
    ledger: RequestLedger
    max_comment_chars: int = 30_000


async def write_request(envelope: Envelope, deps: JiraWriterDeps) -> Sequence[Event]:
    event = envelope.event
    assert isinstance(event, CallAnalyzed)
    config = await deps.config.line(event.line_number)
    line = config.line
    site = JiraSite(
        base_url=str(config.tenant.get("jira_base_url") or ""),
        email=str(config.tenant.get("jira_email") or ""),
        api_token=config.secret("jira_api_token"),
    )
    request_types = line.get("request_types") or {}
    request_type_id = str(request_types.get(event.analysis.intent) or line["request_type_id"])
    service_desk_id = str(line["service_desk_id"])

    entry = await deps.ledger.claim(event.tenant_id, event.call_sid)
    if entry.issue_key is None:
        existing = None if entry.fresh else await deps.desk.find_request_for_call(site, event.call_sid)
        if existing is None:
            draft = RequestDraft(
                service_desk_id, request_type_id, request_fields(event, line.get("phone_field_id"))
            )
            existing = await deps.desk.create_request(site, draft)
            log.info("jsm request created", extra={"issue_key": existing.issue_key})
        else:
            log.warning(
                "recovered request from an interrupted attempt", extra={"issue_key": existing.issue_key}
            )
        await deps.ledger.record_created(entry, existing)
    assert entry.issue_key is not None and entry.issue_id is not None
    tag_issue_key(entry.issue_key)
    if not entry.property_set:
        await deps.desk.set_issue_property(site, entry.issue_key, PROPERTY_KEY, call_property(event))
        await deps.ledger.mark(entry, property_set=True)
    if not entry.comment_added:
        # A previous attempt may have died after Jira stored the comment: look before writing.
        if entry.fresh or not await deps.desk.has_comment_containing(
            site, entry.issue_key, comment_marker(event.call_sid)
        ):
            await deps.desk.add_internal_comment(
                site, entry.issue_key, transcript_comment(event, deps.max_comment_chars)
            )
        await deps.ledger.mark(entry, comment_added=True)
    observe_call_to_ticket(event.tenant_id)
    return [
        TicketCreated(
            tenant_id=event.tenant_id,
            call_sid=event.call_sid,
            line_number=event.line_number,
            caller_number=event.caller_number,
            issue_key=entry.issue_key,
            issue_id=entry.issue_id,
            service_desk_id=service_desk_id,
            request_type_id=request_type_id,
            summary=event.analysis.summary,
            language=event.analysis.language,
        )
    ]
