"""A caller's SMS reply as a comment on their request (two-way SMS, issue #16): ``sms.reply.routed``
in, ``sms.reply.commented`` out.

Jira is the source of truth for "still open": the request's status category is asked for first;
done (or the request gone) means ``request_closed`` and nothing is written (the notifier answers
the caller politely). Exactly once per inbound message: a row keyed by its MessageSid is claimed
before the comment and settled after it; an attempt that finds an unsettled claim (its predecessor
crashed) looks for the comment's marker on the request before writing again. The reply's text is
wiki-escaped like every text from outside.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import DateTime, String
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from voiceticket_common.bus import PermanentError
from voiceticket_common.events import Event, SmsReplyCommented, SmsReplyRouted
from voiceticket_common.events.v1 import SMS_REPLY_COMMENTED, SMS_REPLY_REQUEST_CLOSED
from voiceticket_common.ledger import SqlLedger, purge_rows, utcnow
from voiceticket_common.tracing import tag_issue_key

from .deps import JiraWriterDeps
from .jira_text import wiki_text
from .ledger import Base
from .site import jira_site

log = logging.getLogger(__name__)

CLAIMED = "claimed"


class SmsReplyRow(Base):
    __tablename__ = "jira_writer_sms_replies"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    issue_key: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # claimed | commented | request_closed
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlSmsReplies(SqlLedger):
    service = "jira-writer"  # the request ledger's migrations: one database, one version table
    metadata = Base.metadata

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(engine, clock)
        self._sessions = self._ledger.sessions

    async def claim(self, tenant_id: str, message_sid: str, issue_key: str) -> tuple[str, bool]:
        """The reply's state (``claimed`` or a settled outcome) and whether this attempt made the
        claim (False: an earlier attempt claimed it first and may have commented)."""
        async with self._sessions.begin() as session:
            fresh = await self._ledger.claim(
                session,
                SmsReplyRow,
                tenant_id=tenant_id,
                message_sid=message_sid,
                issue_key=issue_key,
                outcome=CLAIMED,
                updated_at=self.now(),
            )
            row = await session.get(SmsReplyRow, (tenant_id, message_sid))
            return (row.outcome if row is not None else CLAIMED), fresh

    async def settle(self, tenant_id: str, message_sid: str, outcome: str) -> None:
        async with self._sessions.begin() as session:
            row = await session.get(SmsReplyRow, (tenant_id, message_sid))
            if row is not None:
                row.outcome, row.updated_at = outcome, self.now()

    async def purge(self, older_than: timedelta, *, now: datetime, dry_run: bool = False) -> int:
        return await purge_rows(
            self._ledger, SmsReplyRow, SmsReplyRow.updated_at < now - older_than, dry_run=dry_run
        )


def reply_marker(message_sid: str) -> str:
    """What identifies the reply's comment on the request (the MessageSid is no personal data)."""
    return f"(SMS {message_sid})"


def reply_comment(event: SmsReplyRouted) -> str:
    return f"The caller replied by SMS {reply_marker(event.call_sid)}:\n\n{wiki_text(event.body)}"


async def comment_reply(event: SmsReplyRouted, deps: JiraWriterDeps) -> Sequence[Event]:
    tag_issue_key(event.issue_key)
    replies = deps.sms_replies
    if replies is None:
        raise PermanentError("jira-writer has no SMS reply ledger")
    state, fresh = await replies.claim(event.tenant_id, event.call_sid, event.issue_key)
    if state != CLAIMED:
        return [_outcome(event, state)]  # settled by an earlier delivery: the same outcome again
    config = await deps.config.line(event.line_number)
    site = jira_site(config)
    status = await deps.desk.request_status(site, event.issue_key)
    if status is None or status.done:
        await replies.settle(event.tenant_id, event.call_sid, SMS_REPLY_REQUEST_CLOSED)
        log.info("sms reply for a request that is no longer open: not commented")
        return [_outcome(event, SMS_REPLY_REQUEST_CLOSED)]
    marker = reply_marker(event.call_sid)
    if fresh or not await deps.desk.has_comment_containing(site, event.issue_key, marker):
        await deps.desk.add_internal_comment(site, event.issue_key, reply_comment(event))
    await replies.settle(event.tenant_id, event.call_sid, SMS_REPLY_COMMENTED)
    log.info("sms reply added to the request as a comment")
    return [_outcome(event, SMS_REPLY_COMMENTED)]


def _outcome(event: SmsReplyRouted, outcome: str) -> SmsReplyCommented:
    return SmsReplyCommented(
        tenant_id=event.tenant_id,
        call_sid=event.call_sid,
        line_number=event.line_number,
        caller_number=event.caller_number,
        issue_key=event.issue_key,
        outcome=outcome,
    )
