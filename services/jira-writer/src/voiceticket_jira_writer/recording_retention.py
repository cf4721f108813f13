"""Recording retention: deleting the call's recording at Twilio, per the tenant's
``recording_retention`` (``keep``, ``delete_after_ticket`` or N days).

``delete_after_ticket``: a step of writing the request, after the request and its attachment are
done. It is recorded in the ledger like every step (scheduled, then deleted), so a redelivery
skips it; a recording Twilio no longer has (404) counts as deleted. N days: the step only records
the recording SID and when it is due; the scheduled purge (``purge``) deletes it then, and also
retries a ``delete_after_ticket`` deletion that could not be done at the time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.runtime_views import JiraWriterView

from .deps import JiraWriterDeps
from .ledger import SqlRequestLedger
from .ports import LedgerEntry, RecordingDeleter

log = logging.getLogger(__name__)


async def ensure_recording_retention(
    deps: JiraWriterDeps, entry: LedgerEntry, config: JiraWriterView, recording_sid: str, line_number: str
) -> None:
    """Schedule (N days) or do (after ticket) the deletion of the call's recording, once."""
    days = config.recording_retention_days()
    after_ticket = config.deletes_recording_after_ticket()
    if not after_ticket and days is None:
        return  # keep: Twilio's own retention applies
    retention = deps.recording_retention
    if retention is None:
        log.error("recording not deleted: jira-writer has no Twilio client for recording retention")
        return
    state = await retention.ledger.recording_state(entry)
    if state.deleted:
        return
    now = retention.ledger.now()
    if not state.scheduled:
        due = now if after_ticket else now + timedelta(days=days or 0)
        await retention.ledger.schedule_recording_deletion(entry, recording_sid, line_number, due)
    if not after_ticket:
        return
    account = config.recording_account()
    if account is None:
        # Left scheduled: the purge retries once config-api serves the account.
        log.error("recording not deleted: no Twilio account configured for jira-writer")
        return
    gone = not await retention.deleter.delete(account, recording_sid)
    await retention.ledger.mark_recording_deleted(entry)
    log.info("recording deleted at twilio", extra={"already_gone": gone})


@dataclass
class RecordingPurge:
    deleted: int = 0
    already_gone: int = 0
    failed: int = 0
    due: int = 0
    failures: list[str] = field(default_factory=list)


async def delete_due_recordings(
    ledger: SqlRequestLedger,
    config: RuntimeConfig[JiraWriterView],
    deleter: RecordingDeleter | None,
    now: datetime,
    *,
    dry_run: bool = False,
) -> RecordingPurge:
    """Delete the recordings whose retention ended (N days, or an after-ticket deletion not done)."""
    report = RecordingPurge()
    due = await ledger.due_recording_deletions(now)
    report.due = len(due)
    if dry_run or deleter is None:
        return report
    for item in due:
        try:
            view = await config.line(item.line_number)
            account = view.recording_account()
            if account is None:
                raise PermanentError("no Twilio account served for the line")
            if await deleter.delete(account, item.recording_sid):
                report.deleted += 1
            else:
                report.already_gone += 1
            await ledger.record_recording_deleted(item.tenant_id, item.call_sid)
        except (PermanentError, TransientError) as exc:
            # Left due: the next purge tries again. The reason names no personal data.
            report.failed += 1
            report.failures.append(type(exc).__name__)
            log.warning("recording not deleted yet", extra={"reason": str(exc)})
    return report
