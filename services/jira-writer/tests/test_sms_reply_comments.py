"""A caller's SMS reply as an internal comment on their request, while Jira says it is open;
``request_closed`` and nothing written once its status category is done; exactly once per
MessageSid, also when an attempt crashed after the comment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jira_writer_testkit import CALLER, LINE, FakeServiceDesk, handle

from voiceticket_common.db import create_engine
from voiceticket_common.events import SmsReplyCommented, SmsReplyRouted
from voiceticket_common.runtime_views import JiraWriterView
from voiceticket_common.testing import StaticRuntimeConfig
from voiceticket_jira_writer.deps import JiraWriterDeps
from voiceticket_jira_writer.ledger import SqlRequestLedger
from voiceticket_jira_writer.ports import RequestStatus
from voiceticket_jira_writer.sms_replies import SqlSmsReplies, reply_marker

MESSAGE_SID = "SM" + "5" * 32


class StatusDesk(FakeServiceDesk):
    def __init__(self, done: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.done = done
        self.status_asks = 0

    async def request_status(self, site: Any, key: str) -> RequestStatus | None:
        self.status_asks += 1
        return RequestStatus(issue_id="10007", issue_key=key, summary="VPN down", done=self.done)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqlRequestLedger, SqlSmsReplies]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jira.db'}")
    yield await SqlRequestLedger.with_schema(engine), await SqlSmsReplies.with_schema(engine)
    await engine.dispose()


def deps(desk: StatusDesk, stores: tuple[SqlRequestLedger, SqlSmsReplies]) -> JiraWriterDeps:
    line = {"service_desk_id": "4", "request_type_id": "40", "language": "en"}
    tenant = {"jira_base_url": "https://acme.atlassian.net", "jira_auth": "basic", "jira_email": "bot@acme.test",
              "jira_api_token": "t"}  # fmt: skip
    config = StaticRuntimeConfig.of(JiraWriterView, {LINE: ("acme", line, tenant)})
    return JiraWriterDeps(config=config, desk=desk, ledger=stores[0], sms_replies=stores[1])


def reply(body: str = "Still broken, *urgent* {color:red}x{color}") -> SmsReplyRouted:
    return SmsReplyRouted(
        tenant_id="acme", call_sid=MESSAGE_SID, line_number=LINE, caller_number=CALLER, issue_key="HELP-7",
        request_call_sid="CA" + "1" * 32, body=body,
    )  # fmt: skip


async def test_a_reply_to_an_open_request_is_one_escaped_internal_comment(stores: Any) -> None:
    desk = StatusDesk()
    d = deps(desk, stores)
    [outcome] = await handle(reply(), d)
    assert isinstance(outcome, SmsReplyCommented) and outcome.outcome == "commented"
    [(key, body)] = desk.comments
    assert key == "HELP-7" and reply_marker(MESSAGE_SID) in body
    assert "\\*urgent\\*" in body and "\\{color:red\\}" in body  # markup from outside is escaped
    # redelivered: the same outcome, no second comment, Jira not asked again
    [again] = await handle(reply(), d)
    assert again.outcome == "commented" and len(desk.comments) == 1 and desk.status_asks == 1


async def test_a_reply_to_a_done_request_writes_nothing(stores: Any) -> None:
    desk = StatusDesk(done=True)
    [outcome] = await handle(reply(), deps(desk, stores))
    assert isinstance(outcome, SmsReplyCommented) and outcome.outcome == "request_closed"
    assert desk.comments == []


async def test_a_crash_after_the_comment_does_not_comment_twice(stores: Any) -> None:
    desk = StatusDesk(fail_on="after-comment")
    d = deps(desk, stores)
    with pytest.raises(Exception, match="after-comment failed"):
        await handle(reply(), d)
    [outcome] = await handle(reply(), d)
    assert outcome.outcome == "commented" and len(desk.comments) == 1
