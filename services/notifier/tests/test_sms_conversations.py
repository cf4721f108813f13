"""Two-way SMS and status texts in the notifier: STOP/START/HELP remembered and answered, replies
routed to the request we last texted the caller about, a polite answer without one, one status
text per transition (a redelivered webhook sends nothing more), and the erased caller's number
unreadable in the conversation row."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from voiceticket_common.call_context import DEVELOPMENT_KEY
from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.db import create_engine
from voiceticket_common.events import (
    RequestStatusChanged,
    SmsAnswered,
    SmsReceived,
    SmsReplyCommented,
    SmsReplyRouted,
    StatusTextSent,
    TicketCreated,
)
from voiceticket_common.runtime_views import DEFAULT_SMS_HELP_TEXT, NotifierView
from voiceticket_common.sealing import MemoryCallKeys
from voiceticket_common.testing import StaticRuntimeConfig
from voiceticket_notifier.conversations import SqlConversations
from voiceticket_notifier.handlers import CALLER_HASH_PURPOSE, NotifierDeps, notify_caller
from voiceticket_notifier.ledger import SqlSmsLedger
from voiceticket_notifier.ports import Sms, SmsReceipt
from voiceticket_notifier.replies import (
    NO_OPEN_REQUEST_TEXT,
    answer_closed_request,
    answer_sms,
    status_claim,
    text_status,
    wanted,
)

LINE = "+15005550006"
CALLER = "+14155550100"
KEY = SecretStr(DEVELOPMENT_KEY)
CALL = "CA" + "1" * 32


class FakeSms:
    def __init__(self) -> None:
        self.sent: list[Sms] = []

    async def send(self, account: Any, sms: Sms) -> SmsReceipt:
        self.sent.append(sms)
        return SmsReceipt(message_sid="SM" + f"{len(self.sent):032x}", segments=1)

    async def find_sent(self, account: Any, sms: Sms, marker: str, since: Any) -> SmsReceipt | None:
        return None


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqlSmsLedger, SqlConversations]]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'sms.db'}")
    ledger = await SqlSmsLedger.with_schema(engine)
    conversations = await SqlConversations.with_schema(engine)
    yield ledger, conversations
    await engine.dispose()


def deps(
    stores: tuple[SqlSmsLedger, SqlConversations], sms: FakeSms, keys: MemoryCallKeys, **line: object
) -> NotifierDeps:
    fields = {"sms_enabled": True, "sms_replies": True, "status_texts": ["resolved"], **line}
    config = StaticRuntimeConfig.of(
        NotifierView,
        {LINE: ("acme", fields, {"twilio_account_sid": "AC" + "a" * 32, "twilio_auth_token": "tok"})},
    )
    ledger, conversations = stores
    return NotifierDeps(
        config=config,
        sender=sms,
        ledger=ledger,
        hasher=CallerHasher(KEY, CALLER_HASH_PURPOSE),
        conversations=conversations,
        keys=keys,
    )


def ticket() -> TicketCreated:
    return TicketCreated(
        tenant_id="acme",
        call_sid=CALL,
        line_number=LINE,
        caller_number=CALLER,
        issue_key="HELP-7",
        issue_id="10007",
        service_desk_id="4",
        request_type_id="41",
        summary="VPN down",
    )


def text(body: str, n: int = 1, keyword: str | None = None, by_twilio: bool = False) -> SmsReceived:
    return SmsReceived(
        tenant_id="acme",
        call_sid="SM" + f"{n:032x}",
        line_number=LINE,
        caller_number=CALLER,
        body=body,
        keyword=keyword,
        keyword_answered_by_twilio=by_twilio,
    )


def resolved(
    changelog: str = "10001", to_status: str = "Resolved", category: str = "done"
) -> RequestStatusChanged:
    return RequestStatusChanged.of(
        tenant_id="acme",
        issue_key="HELP-7",
        changelog_id=changelog,
        to_status=to_status,
        to_category=category,
    )


async def texted(d: NotifierDeps, keys: MemoryCallKeys) -> None:
    await keys.key_for_sealing(ticket())  # ingress made the call's key
    [sent] = await notify_caller(ticket(), d)
    assert sent.event_type == "notification.sent"


async def test_a_reply_goes_to_the_request_we_last_texted_the_caller_about(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    d = deps(stores, sms, keys)
    await texted(d, keys)
    [routed] = await answer_sms(text("It works again, thanks"), d)
    assert isinstance(routed, SmsReplyRouted)
    assert (routed.issue_key, routed.request_call_sid, routed.body) == (
        "HELP-7",
        CALL,
        "It works again, thanks",
    )
    assert len(sms.sent) == 1  # only the ticket's SMS: a routed reply is not answered


async def test_a_reply_with_no_request_gets_one_polite_answer_even_when_redelivered(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    d = deps(stores, sms, keys)
    [answered] = await answer_sms(text("hello?"), d)
    assert isinstance(answered, SmsAnswered) and answered.action == "no_open_request"
    assert answered.reply_message_sid is not None
    assert await answer_sms(text("hello?"), d) == []
    assert [(s.to, s.body, s.from_number) for s in sms.sent] == [(CALLER, NO_OPEN_REQUEST_TEXT, LINE)]


async def test_replies_are_not_read_on_a_line_without_sms_replies(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    d = deps(stores, sms, keys, sms_replies=False)
    await texted(d, keys)
    [answered] = await answer_sms(text("any news?"), d)
    assert isinstance(answered, SmsAnswered) and answered.action == "none"
    assert len(sms.sent) == 1


async def test_stop_silences_the_next_ticket_sms_and_start_lifts_it(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    d = deps(stores, sms, keys)
    [stopped] = await answer_sms(text("STOP", 1, keyword="stop"), d)
    assert isinstance(stopped, SmsAnswered) and stopped.action == "opted_out"
    [failed] = await notify_caller(ticket(), d)
    assert failed.event_type == "notification.failed" and sms.sent == []
    [started] = await answer_sms(text("start", 2, keyword="start"), d)
    assert isinstance(started, SmsAnswered) and started.action == "opted_in"
    later = ticket().model_copy(update={"call_sid": "CA" + "2" * 32})
    await keys.key_for_sealing(later)
    [sent] = await notify_caller(later, d)
    assert sent.event_type == "notification.sent" and len(sms.sent) == 1


async def test_help_is_answered_with_the_lines_text_unless_twilio_answered_it(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    d = deps(stores, sms, keys, sms_help_text="Acme support: reply to talk to us.")
    [answered] = await answer_sms(text("HELP", 1, keyword="help"), d)
    assert isinstance(answered, SmsAnswered) and answered.action == "help"
    [twilios] = await answer_sms(text("HELP", 2, keyword="help", by_twilio=True), d)
    assert isinstance(twilios, SmsAnswered) and twilios.action == "none"
    assert [s.body for s in sms.sent] == ["Acme support: reply to talk to us."]


async def test_help_without_a_line_text_gets_the_default(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    await answer_sms(text("INFO", 1, keyword="help"), deps(stores, sms, keys))
    assert [s.body for s in sms.sent] == [DEFAULT_SMS_HELP_TEXT]


async def test_a_closed_request_gets_the_polite_answer(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    d = deps(stores, sms, keys)
    closed = SmsReplyCommented(
        tenant_id="acme", call_sid="SM" + "9" * 32, line_number=LINE, caller_number=CALLER,
        issue_key="HELP-7", outcome="request_closed",
    )  # fmt: skip
    [answered] = await answer_closed_request(closed, d)
    assert isinstance(answered, SmsAnswered) and answered.action == "no_open_request"
    commented = closed.model_copy(update={"outcome": "commented", "call_sid": "SM" + "8" * 32})
    assert await answer_closed_request(commented, d) == []
    assert [s.body for s in sms.sent] == [NO_OPEN_REQUEST_TEXT]


async def test_one_status_text_per_transition(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    d = deps(stores, sms, keys)
    await texted(d, keys)
    [sent] = await text_status(resolved(), d)
    assert isinstance(sent, StatusTextSent) and sent.outcome == "sent" and sent.message_sid
    assert await text_status(resolved(), d) == []  # the webhook delivered twice
    assert [s.body for s in sms.sent[1:]] == ["Your support request HELP-7 is now: Resolved."]
    assert sms.sent[1].to == CALLER
    # a later transition is a text of its own
    [again] = await text_status(resolved("10002", "Closed"), d)
    assert isinstance(again, StatusTextSent) and len(sms.sent) == 3


async def test_no_status_text_for_statuses_the_line_does_not_list(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    d = deps(stores, sms, keys, status_texts=[])
    await texted(d, keys)
    assert await text_status(resolved(), d) == []
    assert await text_status(resolved("10003", "In progress", "indeterminate"), d) == []
    assert len(sms.sent) == 1


async def test_no_status_text_for_an_erased_caller_or_an_unknown_request(stores: Any) -> None:
    sms, keys = FakeSms(), MemoryCallKeys()
    d = deps(stores, sms, keys)
    await texted(d, keys)
    other = RequestStatusChanged.of(tenant_id="acme", issue_key="HELP-99", changelog_id="1", to_status="Resolved",
                                    to_category="done")  # fmt: skip
    assert await text_status(other, d) == []
    keys.erase("acme", CALL)
    assert await text_status(resolved(), d) == []
    assert len(sms.sent) == 1


def test_which_transitions_a_line_wants() -> None:
    assert wanted(["resolved"], resolved())
    assert not wanted(["resolved"], resolved(to_status="In progress", category="indeterminate"))
    assert wanted(
        ["Waiting for customer"], resolved(to_status="waiting FOR customer", category="indeterminate")
    )
    assert not wanted([], resolved())
    assert status_claim(resolved()) != status_claim(resolved("10002"))
    assert len(status_claim(resolved())) == 34
