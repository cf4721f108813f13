"""Retention in jira-writer: the recording deleted at Twilio after the ticket (a recorded step, 404
counts as done) or N days later by the scheduled purge, and old ledger rows purged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from jira_writer_testkit import (
    ACCOUNT_SID,
    BASIC_FIELDS,
    LINE,
    RECORDING_SID,
    FakeRecordings,
    FakeServiceDesk,
    analyzed,
    handle,
)

from voiceticket_common.runtime_views import JiraWriterView
from voiceticket_common.testing import FakeClock, StaticRuntimeConfig
from voiceticket_common.twilio import TwilioAccount
from voiceticket_jira_writer.bootstrap import SERVICE
from voiceticket_jira_writer.deps import JiraWriterDeps, RecordingRetention
from voiceticket_jira_writer.ledger import SqlRequestLedger
from voiceticket_jira_writer.ports import CreatedRequest
from voiceticket_jira_writer.settings import JiraWriterSettings


class FakeDeleter:
    """Twilio's DELETE: True the first time, then 404 (False), as Twilio answers."""

    def __init__(self) -> None:
        self.deleted: list[tuple[str, str]] = []
        self.calls = 0

    async def delete(self, account: TwilioAccount, recording_sid: str) -> bool:
        self.calls += 1
        if (account.account_sid, recording_sid) in self.deleted:
            return False
        self.deleted.append((account.account_sid, recording_sid))
        return True


def retention_deps(
    ledger: SqlRequestLedger, deleter: FakeDeleter, retention: Any, *, attach: bool = False
) -> JiraWriterDeps:
    line = {"service_desk_id": "4", "request_type_id": "40", "attach_recording": attach, "language": "en"}
    tenant = {
        "jira_base_url": "https://acme.atlassian.net",
        "jira_email": "bot@acme.test",
        "jira_api_token": "t",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": "twilio-token",
        "recording_retention": retention,
    }
    config = StaticRuntimeConfig.of(JiraWriterView, {LINE: ("acme", line, tenant)})
    desk = FakeServiceDesk(BASIC_FIELDS)
    return JiraWriterDeps(
        config=config,
        desk=desk,
        ledger=ledger,
        recordings=FakeRecordings(),
        recording_retention=RecordingRetention(ledger, deleter),
    )


async def test_after_ticket_the_recording_is_deleted_once_after_the_attachment(
    clocked_ledger: SqlRequestLedger,
) -> None:
    deleter = FakeDeleter()
    deps = retention_deps(clocked_ledger, deleter, "delete_after_ticket", attach=True)
    await handle(analyzed(), deps)
    assert deleter.deleted == [(ACCOUNT_SID, RECORDING_SID)]
    assert deps.desk.attachments, "attached first, then deleted"  # type: ignore[attr-defined]
    await handle(analyzed(), deps)  # a redelivery: the ledger says it is done
    assert deleter.calls == 1


async def test_after_ticket_a_recording_already_gone_counts_as_deleted(
    clocked_ledger: SqlRequestLedger,
) -> None:
    deleter = FakeDeleter()
    deleter.deleted.append((ACCOUNT_SID, RECORDING_SID))  # Twilio answers 404
    deps = retention_deps(clocked_ledger, deleter, "delete_after_ticket")
    await handle(analyzed(), deps)
    assert await clocked_ledger.due_recording_deletions(clocked_ledger.now()) == []


async def test_keep_deletes_nothing(clocked_ledger: SqlRequestLedger) -> None:
    deleter = FakeDeleter()
    await handle(analyzed(), retention_deps(clocked_ledger, deleter, "keep"))
    assert deleter.calls == 0


async def test_after_n_days_the_scheduled_purge_deletes_it(
    clocked_ledger: SqlRequestLedger, clock: FakeClock
) -> None:
    deleter = FakeDeleter()
    deps = retention_deps(clocked_ledger, deleter, 30)
    await handle(analyzed(), deps)
    assert deleter.calls == 0, "not yet: 30 days"
    settings = JiraWriterSettings()
    assert SERVICE.purge is not None
    early = await SERVICE.purge(settings, deps, clock() + timedelta(days=29), False)
    assert early["recordings_deleted"] == 0 and deleter.calls == 0
    clock.advance(timedelta(days=30, seconds=1).total_seconds())
    dry = await SERVICE.purge(settings, deps, clock(), True)
    assert dry["recordings_due"] == 1 and deleter.calls == 0
    done = await SERVICE.purge(settings, deps, clock(), False)
    assert done["recordings_deleted"] == 1 and deleter.deleted == [(ACCOUNT_SID, RECORDING_SID)]
    again = await SERVICE.purge(settings, deps, clock(), False)
    assert again["recordings_due"] == 0 and deleter.calls == 1


async def test_old_finished_rows_go_fresh_and_pending_ones_stay(
    clocked_ledger: SqlRequestLedger, clock: FakeClock
) -> None:
    old = await clocked_ledger.claim("acme", "CA" + "a" * 32)
    await clocked_ledger.release(old)
    pending = await clocked_ledger.claim("acme", "CA" + "b" * 32)
    await clocked_ledger.schedule_recording_deletion(
        pending, RECORDING_SID, LINE, clock() + timedelta(days=90)
    )
    await clocked_ledger.release(pending)
    clock.advance(timedelta(days=31).total_seconds())
    fresh = await clocked_ledger.claim("acme", "CA" + "c" * 32)
    await clocked_ledger.release(fresh)
    assert await clocked_ledger.purge(timedelta(days=30), dry_run=True) == 1
    assert await clocked_ledger.purge(timedelta(days=30)) == 1
    assert await clocked_ledger.purge(timedelta(days=30)) == 0
    assert not (await clocked_ledger.claim("acme", "CA" + "c" * 32)).fresh, "the fresh row stayed"
    assert (await clocked_ledger.claim("acme", "CA" + "a" * 32)).fresh, "the old row went"


async def test_the_purge_counts_the_repeat_caller_index_it_removes(
    clocked_ledger: SqlRequestLedger, clock: FakeClock
) -> None:
    # docs/operations.md: jira-writer's purge line has a `callers` count
    old = await clocked_ledger.claim("acme", "CA" + "d" * 32)
    await clocked_ledger.remember_request(old, "h" * 64, CreatedRequest("10001", "HELP-1"))
    await clocked_ledger.release(old)
    clock.advance(timedelta(days=20).total_seconds())
    recent = await clocked_ledger.claim("acme", "CA" + "e" * 32)
    await clocked_ledger.remember_request(recent, "h" * 64, CreatedRequest("10002", "HELP-2"))
    await clocked_ledger.release(recent)
    clock.advance(timedelta(days=11).total_seconds())
    deps = retention_deps(clocked_ledger, FakeDeleter(), "keep")
    assert SERVICE.purge is not None
    dry = await SERVICE.purge(JiraWriterSettings(), deps, clock(), True)
    assert dry["callers"] == 1
    done = await SERVICE.purge(JiraWriterSettings(), deps, clock(), False)
    assert done["callers"] == 1 and done["requests"] == 1
    left = await clocked_ledger.recent_requests("acme", "h" * 64, since=clock() - timedelta(days=60))
    assert [r.issue_key for r in left] == ["HELP-2"], "the index row younger than the retention stays"
    again = await SERVICE.purge(JiraWriterSettings(), deps, clock(), False)
    assert again["callers"] == 0
