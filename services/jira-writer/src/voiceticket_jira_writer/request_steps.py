"""The steps of writing one call to Jira, each done once per call whatever is redelivered.

Each step is recorded in the ledger after Jira confirmed it. A step the ledger does not confirm
may still have happened (the process died between Jira's answer and the ledger write), so on a
redelivery each one looks before it writes: the request by the CallSid in its description (ADR 3),
the comment by its marker, the attachment by its file name.

Only the holder of the call's lease acts (``ledger.claim``), and it renews the lease before each
write to Jira, so a holder whose lease was taken over stops at its next step (``LeaseLost``). A
create runs within the lease; a later attempt that finds neither a recorded key nor a request in
search creates only once that create would be searchable (``create_settles_at``), and until then
retries with a Retry-After, searching again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.events import Entity
from voiceticket_common.http import OutcomeUnknown
from voiceticket_common.runtime_views import JiraWriterView

from .customers import customer_account
from .deps import JiraWriterDeps
from .field_values import Wanted, request_field_values
from .ports import (
    CreatedRequest,
    JiraSite,
    LedgerEntry,
    RecordingGone,
    RecordingTooLarge,
    RequestDraft,
    RequestTypeFields,
)
from .request_content import PROPERTY_KEY

log = logging.getLogger(__name__)


async def ensure_request(
    deps: JiraWriterDeps,
    site: JiraSite,
    entry: LedgerEntry,
    service_desk_id: str,
    request_type_id: str,
    wanted: Wanted,
    entities: Sequence[Entity] = (),
) -> CreatedRequest:
    """Exactly one request per call: create it, or find the one an interrupted attempt created."""
    if entry.issue_key is not None and entry.issue_id is not None:
        return CreatedRequest(issue_id=entry.issue_id, issue_key=entry.issue_key)
    if not entry.fresh:
        existing = await deps.desk.find_request_for_call(site, entry.call_sid)
        if existing is not None:
            log.warning(
                "recovered request from an interrupted attempt", extra={"issue_key": existing.issue_key}
            )
            await deps.ledger.record_created(entry, existing)
            return existing
        settles = entry.create_settles_at
        wait = (settles - deps.ledger.now()).total_seconds() if settles is not None else 0.0
        if wait > 0:
            # An earlier attempt started a create whose request Jira's search may not show yet.
            log.info("an earlier attempt's request may not be searchable yet; searching again later")
            raise TransientError(
                f"not creating a second request until {wait:.1f}s have passed", retry_after=wait
            )
    deadline = await deps.ledger.begin_create(entry)
    try:
        # The create must end within the lease, so a takeover's wait covers any request it made.
        async with asyncio.timeout((deadline - deps.ledger.now()).total_seconds()):
            created = await _create(deps, site, service_desk_id, request_type_id, wanted, entities)
    except TimeoutError:
        entry.create_outcome_unknown = True
        raise TransientError("jira create request did not finish within the lease") from None
    except (OutcomeUnknown, asyncio.CancelledError):
        # No answer: Jira may still make the request. A cancelled attempt (a partition handed
        # back, a SIGTERM) is the same: the create it sent is not called back by cancelling.
        entry.create_outcome_unknown = True
        raise
    log.info("jsm request created", extra={"issue_key": created.issue_key})
    await deps.ledger.record_created(entry, created)
    return created


async def _create(
    deps: JiraWriterDeps,
    site: JiraSite,
    service_desk_id: str,
    request_type_id: str,
    wanted: Wanted,
    entities: Sequence[Entity],
) -> CreatedRequest:
    meta, cached = await deps.fields.get(site, service_desk_id, request_type_id)

    async def draft(fields: RequestTypeFields) -> RequestDraft:
        values = request_field_values(wanted, fields, request_type_id)
        on_behalf = await customer_account(deps.desk, site, service_desk_id, fields, entities)
        return RequestDraft(service_desk_id, request_type_id, values, raise_on_behalf_of=on_behalf)

    try:
        return await deps.desk.create_request(site, await draft(meta))
    except PermanentError:
        if not cached:
            raise
        # The request type may have changed since its fields were cached: try once with the
        # current list, and give up as before if it did not change.
        fresh = await deps.fields.refresh(site, service_desk_id, request_type_id)
        if fresh == meta:
            raise
        log.info("request type changed since its fields were cached; creating with the current ones")
        return await deps.desk.create_request(site, await draft(fresh))


async def ensure_property(
    deps: JiraWriterDeps, site: JiraSite, entry: LedgerEntry, request: CreatedRequest, value: dict[str, Any]
) -> None:
    # Setting a property is idempotent in Jira, so a redelivery may simply set it again.
    if entry.property_set:
        return
    await deps.desk.set_issue_property(site, request.issue_key, PROPERTY_KEY, value)
    await deps.ledger.mark(entry, property_set=True)


async def ensure_comment(
    deps: JiraWriterDeps, site: JiraSite, entry: LedgerEntry, request: CreatedRequest, marker: str, body: str
) -> None:
    if entry.comment_added:
        return
    await deps.ledger.renew(entry)
    if entry.fresh or not await deps.desk.has_comment_containing(site, request.issue_key, marker):
        await deps.desk.add_internal_comment(site, request.issue_key, body)
    await deps.ledger.mark(entry, comment_added=True)


def recording_filename(call_sid: str) -> str:
    """Our attachment's name; a redelivery finds an interrupted attempt's upload by it."""
    return f"call-{call_sid}.wav"


async def ensure_recording(
    deps: JiraWriterDeps,
    site: JiraSite,
    entry: LedgerEntry,
    request: CreatedRequest,
    config: JiraWriterView,
    service_desk_id: str,
    recording_sid: str,
) -> None:
    """Attach the recording as an internal attachment, once.

    The recording is a nice-to-have beside the request: when it cannot be attached for good (too
    large, deleted at Twilio, refused by Jira, no Twilio credentials) the reason is logged and the
    request goes on without it. Transient failures are retried like every other step.
    """
    if entry.attachment_added:
        return
    filename = recording_filename(entry.call_sid)
    await deps.ledger.renew(entry)
    if not entry.fresh and filename in await deps.desk.attachment_names(site, request.issue_key):
        await deps.ledger.mark(entry, attachment_added=True)
        return
    account = config.recording_account()
    if deps.recordings is None or account is None:
        log.error("recording not attached: no Twilio account configured for jira-writer")
    else:
        try:
            async with deps.recordings.download(account, recording_sid, filename) as upload:
                await deps.desk.attach_internal(site, service_desk_id, request.issue_key, upload)
            log.info("recording attached", extra={"issue_key": request.issue_key, "bytes": upload.size})
        except (RecordingTooLarge, RecordingGone) as exc:
            log.warning("recording not attached", extra={"issue_key": request.issue_key, "reason": str(exc)})
        except PermanentError as exc:
            log.warning("recording not attached", extra={"issue_key": request.issue_key, "reason": str(exc)})
    await deps.ledger.mark(entry, attachment_added=True)
