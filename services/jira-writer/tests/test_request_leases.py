"""Issue #11 point 15: a call's ledger row is held under a lease, so two deliveries of one call
(a rebalance, two replicas, a redelivery while the first attempt is still in a slow create) never
create two requests, even when Jira's search index lags behind the create.

The ledger runs on a clock the test moves (60 s lease, 15 s index lag); the fake desk's search
finds only what its index has caught up with. Nothing sleeps.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from jira_writer_testkit import CALL_SID, Crash, FakeServiceDesk, analyzed, deps

from voiceticket_common.bus import TransientError
from voiceticket_common.http import OutcomeUnknown, transport_error
from voiceticket_jira_writer.handlers import write_request
from voiceticket_jira_writer.ports import CreatedRequest


def lagging_desk() -> FakeServiceDesk:
    desk = FakeServiceDesk()
    desk.lagging_index = True
    return desk


async def test_a_second_delivery_during_a_slow_create_waits_and_creates_nothing(clocked_ledger) -> None:
    desk = lagging_desk()
    desk.create_gate = asyncio.Event()
    call = analyzed()
    first = asyncio.create_task(write_request(call, deps(desk, clocked_ledger)))
    await desk.create_started.wait()  # the first attempt is inside Jira's create

    with pytest.raises(TransientError) as busy:
        await write_request(call, deps(desk, clocked_ledger))
    assert busy.value.retry_after is not None and 59 <= busy.value.retry_after <= 61, (
        "retry when the first attempt's lease ends"
    )
    assert desk.searches == 0, "while the lease is live the second delivery does not even look"

    desk.create_gate.set()
    [created] = await first
    [again] = await write_request(call, deps(desk, clocked_ledger))  # the bus's retry
    assert len(desk.requests) == 1 and len(desk.comments) == 1 and len(desk.properties) == 1
    assert again.issue_key == created.issue_key == "HELP-1"


async def test_takeover_after_a_crash_waits_out_the_lagging_index_then_finds_the_request(
    clocked_ledger, clock
) -> None:
    desk = lagging_desk()
    desk.fail_on = "crash-after-create"
    call = analyzed()
    with pytest.raises(Crash):  # Jira created HELP-1; the process died before the ledger knew
        await write_request(call, deps(desk, clocked_ledger))

    with pytest.raises(TransientError) as busy:  # redelivered at once: the dead lease is still live
        await write_request(call, deps(desk, clocked_ledger))
    assert busy.value.retry_after is not None and busy.value.retry_after > 59

    clock.advance(61)  # the lease expired: this attempt takes over, searches, finds nothing yet
    with pytest.raises(TransientError) as lagging:
        await write_request(call, deps(desk, clocked_ledger))
    assert lagging.value.retry_after is not None and 13 <= lagging.value.retry_after <= 15
    assert len(desk.requests) == 1, "no second create while the index may still be catching up"

    clock.advance(15)
    desk.index()  # Jira's search shows HELP-1 now
    [event] = await write_request(call, deps(desk, clocked_ledger))
    assert event.issue_key == "HELP-1" and len(desk.requests) == 1
    assert len(desk.comments) == 1 and len(desk.properties) == 1
    assert desk.searches == 2, "searched once before the window ended and once after"


async def test_takeover_creates_once_the_window_passed_and_search_still_finds_nothing(
    clocked_ledger, clock
) -> None:
    # The earlier create failed at Jira (nothing was made): after the window, one request.
    desk = lagging_desk()
    desk.create_error = TransientError("jira create request failed with HTTP 503")
    call = analyzed()
    with pytest.raises(TransientError):
        await write_request(call, deps(desk, clocked_ledger))
    with pytest.raises(TransientError) as lagging:  # the retry: the failed create may exist
        await write_request(call, deps(desk, clocked_ledger))
    assert lagging.value.retry_after is not None and 14 <= lagging.value.retry_after <= 15
    clock.advance(15)
    [event] = await write_request(call, deps(desk, clocked_ledger))
    assert event.issue_key == "HELP-1" and len(desk.requests) == 1


async def test_a_stale_owner_whose_lease_was_taken_over_is_refused_and_stops(clocked_ledger, clock) -> None:
    desk = lagging_desk()
    desk.create_gate = asyncio.Event()
    call = analyzed()
    stale = asyncio.create_task(write_request(call, deps(desk, clocked_ledger)))
    await desk.create_started.wait()
    clock.advance(61)  # the first attempt is stuck in Jira past its lease; a second one takes over
    with pytest.raises(TransientError):  # ... and waits for the index, creating nothing
        await write_request(call, deps(desk, clocked_ledger))

    desk.create_gate.set()  # Jira answers the stale attempt at last
    with pytest.raises(TransientError, match="taken over"):
        await stale
    assert desk.properties == [] and desk.comments == [], "the stale owner stopped at its ledger write"

    clock.advance(15)
    desk.index()
    [event] = await write_request(call, deps(desk, clocked_ledger))
    assert event.issue_key == "HELP-1" and len(desk.requests) == 1
    assert len(desk.properties) == 1 and len(desk.comments) == 1


async def test_every_ledger_write_is_fenced_by_the_lease_token(clocked_ledger, clock) -> None:
    first = await clocked_ledger.claim("acme", CALL_SID)
    clock.advance(61)
    second = await clocked_ledger.claim("acme", CALL_SID)
    assert (first.fresh, second.fresh) == (True, False)
    assert second.token > first.token, "a takeover gets a new fencing token"

    with pytest.raises(TransientError, match="taken over"):
        await clocked_ledger.record_created(first, CreatedRequest("10001", "HELP-1"))
    with pytest.raises(TransientError, match="taken over"):
        await clocked_ledger.mark(first, property_set=True, comment_added=True)
    await clocked_ledger.release(first)  # a stale release gives nothing back

    await clocked_ledger.record_created(second, CreatedRequest("10002", "HELP-2"))
    await clocked_ledger.release(second)
    row = await clocked_ledger.claim("acme", CALL_SID)
    assert (row.issue_key, row.property_set, row.comment_added) == ("HELP-2", False, False)


async def test_a_live_lease_is_not_taken_by_a_second_claim(clocked_ledger, clock) -> None:
    await clocked_ledger.claim("acme", CALL_SID)
    clock.advance(59)
    with pytest.raises(TransientError) as busy:
        await clocked_ledger.claim("acme", CALL_SID)
    assert busy.value.retry_after is not None and 1 <= busy.value.retry_after <= 1.5


async def test_a_create_that_got_no_answer_keeps_the_full_window_so_a_late_request_is_found(
    clocked_ledger, clock
) -> None:
    # The create timed out: Jira got it and makes the request 20 s later. A retry that waited
    # only the index lag (15 s) from the timeout searched too early and created a second request
    # (the chaos suite's duplicate); an unanswered create keeps the lease's end plus the lag.
    desk = lagging_desk()
    late: list = []

    async def timed_out(site, draft):  # type: ignore[no-untyped-def]
        late.append(draft)
        raise OutcomeUnknown("jira create request failed: ReadTimeout")

    desk.create_request = timed_out  # type: ignore[method-assign]
    call = analyzed()
    with pytest.raises(TransientError):
        await write_request(call, deps(desk, clocked_ledger))
    await the_late_request_is_found(desk, clocked_ledger, clock, call, late)


async def the_late_request_is_found(desk, clocked_ledger, clock, call, late) -> None:  # type: ignore[no-untyped-def]
    """After a create whose outcome is unknown: the next attempt waits the lease the create ran
    in plus the index lag; Jira makes the request meanwhile; the attempt then finds it, creating
    none."""
    del desk.create_request  # the desk answers creates again
    with pytest.raises(TransientError) as waiting:
        await write_request(call, deps(desk, clocked_ledger))
    assert waiting.value.retry_after is not None and waiting.value.retry_after > 70, (
        "until the lease the create ran in ends, plus the index lag"
    )
    clock.advance(20)
    desk.requests.extend(late)  # Jira made the request after all
    desk.index()
    clock.advance(56)
    [event] = await write_request(call, deps(desk, clocked_ledger))
    assert event.issue_key == "HELP-1" and len(desk.requests) == 1


def test_only_a_request_that_never_left_is_an_answered_failure() -> None:
    request = httpx.Request("POST", "https://acme.atlassian.net/rest/servicedeskapi/request")
    assert not isinstance(
        transport_error(httpx.ConnectError("refused", request=request), "jira", "create"), OutcomeUnknown
    )
    for lost in (
        httpx.ReadTimeout("slow", request=request),
        httpx.RemoteProtocolError("closed", request=request),
    ):
        assert isinstance(transport_error(lost, "jira", "create"), OutcomeUnknown)


async def test_a_create_cancelled_in_flight_keeps_the_full_window_so_a_late_request_is_found(
    clocked_ledger, clock
) -> None:
    # The attempt was cancelled (its partition handed back on a rebalance, or a SIGTERM) while
    # the create was at Jira: cancelling does not call the request back. Giving the lease back
    # with only the index lag let the next attempt search before the request was indexed and
    # create a second one; a cancelled create is as unanswered as a timed-out one.
    desk = lagging_desk()
    late: list = []
    at_jira = asyncio.Event()

    async def held(site, draft):  # type: ignore[no-untyped-def]
        late.append(draft)
        at_jira.set()
        await asyncio.Event().wait()  # Jira is slow: the attempt is cancelled first

    desk.create_request = held  # type: ignore[method-assign]
    call = analyzed()
    attempt = asyncio.create_task(write_request(call, deps(desk, clocked_ledger)))
    await at_jira.wait()
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    await the_late_request_is_found(desk, clocked_ledger, clock, call, late)
