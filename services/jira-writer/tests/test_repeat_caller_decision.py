"""Repeat callers in jira-writer: the call onto the caller's open request, or a new request."""

from __future__ import annotations

import pytest
from jira_writer_testkit import CALL_SID, CALLER, FakeServiceDesk, analyzed, deps, handle
from pydantic import SecretStr

from voiceticket_common.bus import TransientError
from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.events import TicketCreated
from voiceticket_common.sealing import MemoryCallKeys
from voiceticket_jira_writer.ledger import SqlRequestLedger
from voiceticket_jira_writer.ports import RequestStatus
from voiceticket_jira_writer.repeat_callers import CALLER_HASH_PURPOSE, RepeatCallers

SECOND_CALL = "CA" + "5" * 32


class StatusDesk(FakeServiceDesk):
    """The fake desk, answering a request's status: open unless ``resolve()``d, gone when deleted."""

    def __init__(self, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.done: set[str] = set()
        self.deleted: set[str] = set()
        self.status_reads: list[str] = []

    async def request_status(self, site, key):  # type: ignore[no-untyped-def]
        self.status_reads.append(key)
        if key in self.deleted:
            return None
        index = int(key.split("-")[1])
        summary = self.requests[index - 1].fields["summary"]
        return RequestStatus(str(10000 + index), key, summary, key in self.done)


def repeat_deps(desk: StatusDesk, ledger: SqlRequestLedger, keys: MemoryCallKeys | None = None, **line):  # type: ignore[no-untyped-def]
    built = deps(desk, ledger, **{"repeat_callers": "comment", "repeat_window_hours": 72, **line})
    built.repeat = RepeatCallers(
        ledger, CallerHasher(SecretStr("k"), CALLER_HASH_PURPOSE), keys or MemoryCallKeys()
    )
    return built


def second(**changes):  # type: ignore[no-untyped-def]
    return analyzed(**changes).model_copy(update={"call_sid": SECOND_CALL})


async def test_same_matter_goes_onto_the_open_request_as_a_comment(ledger) -> None:
    desk = StatusDesk()
    handler_deps = repeat_deps(desk, ledger)
    [first] = await handle(analyzed(), handler_deps)
    assert isinstance(first, TicketCreated) and not first.added_to_existing
    [again] = await handle(second(summary="VPN down again", description="Still no VPN."), handler_deps)
    assert isinstance(again, TicketCreated)
    assert again.issue_key == "HELP-1" and again.added_to_existing
    assert len(desk.requests) == 1, "no second request"
    assert len(desk.properties) == 1, "the first call's property is not overwritten"
    [(k1, c1), (k2, c2)] = desk.comments
    assert k1 == k2 == "HELP-1"
    assert f"call {SECOND_CALL}" in c2 and "Repeat call" in c2 and "Still no VPN." in c2
    assert "The VPN is down. Account 12345678." in c2, "the new transcript"


async def test_redelivery_follows_the_recorded_decision(ledger) -> None:
    desk = StatusDesk()
    handler_deps = repeat_deps(desk, ledger)
    await handle(analyzed(), handler_deps)
    desk.fail_on = "comment"  # the repeat call's comment fails once: the bus redelivers
    with pytest.raises(TransientError):
        await handle(second(), handler_deps)
    assert len(desk.comments) == 1
    desk.done.add("HELP-1")  # resolved meanwhile: the decision taken stands
    [again] = await handle(second(), handler_deps)
    assert again.issue_key == "HELP-1" and again.added_to_existing
    assert len(desk.requests) == 1 and len(desk.comments) == 2
    [_] = await handle(second(), handler_deps)  # and once more, after it finished
    assert len(desk.comments) == 2, "exactly one comment per call"


async def test_another_matter_makes_a_new_request(ledger) -> None:
    desk = StatusDesk()
    handler_deps = repeat_deps(desk, ledger)
    await handle(analyzed(), handler_deps)
    other = second(summary="Printer out of toner", description="The printer needs toner.", entities=[])
    other = other.model_copy(update={"transcript": "The printer on floor three is out of toner."})
    [event] = await handle(other, handler_deps)
    assert event.issue_key == "HELP-2" and not event.added_to_existing
    assert len(desk.requests) == 2


async def test_a_resolved_or_deleted_request_is_not_a_candidate(ledger) -> None:
    desk = StatusDesk()
    handler_deps = repeat_deps(desk, ledger)
    await handle(analyzed(), handler_deps)
    desk.done.add("HELP-1")
    [event] = await handle(second(), handler_deps)
    assert event.issue_key == "HELP-2" and not event.added_to_existing
    desk.deleted.add("HELP-2")
    third = analyzed().model_copy(update={"call_sid": "CA" + "6" * 32})
    [event] = await handle(third, handler_deps)
    assert event.issue_key == "HELP-3", "HELP-1 is done, HELP-2 gone"


async def test_outside_the_window_or_line_off_or_withheld_number_is_a_new_request(ledger, clock) -> None:
    desk = StatusDesk()
    await handle(analyzed(), repeat_deps(desk, ledger))
    [off] = await handle(second(), repeat_deps(desk, ledger, repeat_callers="off"))
    assert off.issue_key == "HELP-2" and desk.status_reads == [], "off: Jira is not even asked"
    anonymous = analyzed().model_copy(update={"call_sid": "CA" + "7" * 32, "caller_number": "anonymous"})
    [event] = await handle(anonymous, repeat_deps(desk, ledger))
    assert event.issue_key == "HELP-3"


async def test_the_window_counts_from_the_earlier_request(clocked_ledger, clock) -> None:
    desk = StatusDesk()
    await handle(analyzed(), repeat_deps(desk, clocked_ledger, repeat_window_hours=2))
    clock.advance(2 * 3600 + 1)
    [event] = await handle(second(), repeat_deps(desk, clocked_ledger, repeat_window_hours=2))
    assert event.issue_key == "HELP-2" and desk.status_reads == []


async def test_an_erased_earlier_call_is_forgotten(ledger) -> None:
    desk = StatusDesk()
    keys = MemoryCallKeys()
    handler_deps = repeat_deps(desk, ledger, keys)
    await handle(analyzed(), handler_deps)
    keys.erase("acme", CALL_SID)
    [event] = await handle(second(), handler_deps)
    assert event.issue_key == "HELP-2" and desk.status_reads == []
    hasher = CallerHasher(SecretStr("k"), CALLER_HASH_PURPOSE)
    remaining = await ledger.recent_requests(
        "acme", hasher.hash("acme", CALLER), ledger.now().replace(year=2000)
    )
    assert [r.call_sid for r in remaining] == [SECOND_CALL], "the erased call's row is gone"


async def test_the_index_holds_a_keyed_hash_never_the_number(ledger, tmp_path) -> None:
    desk = StatusDesk()
    await handle(analyzed(), repeat_deps(desk, ledger))
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("ledger.db*"))  # the database and its WAL
    assert CALLER.encode() not in raw and CALLER[1:].encode() not in raw
    hashed = CallerHasher(SecretStr("k"), CALLER_HASH_PURPOSE).hash("acme", CALLER)
    assert hashed.encode() in raw and hashed != CallerHasher(SecretStr("other"), CALLER_HASH_PURPOSE).hash(
        "acme", CALLER
    )
