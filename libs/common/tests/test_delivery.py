from __future__ import annotations

import asyncio

import pytest

from voiceticket_common.bus import PermanentError, RetryPolicy, TransientError
from voiceticket_common.bus import envelope as wire
from voiceticket_common.bus.delivery import (
    DeadLettered,
    Delivered,
    backoff_delay,
    open_with_retries,
    run_handler,
)
from voiceticket_common.bus.errors import DependencyUnavailable
from voiceticket_common.events import CallAnalyzed
from voiceticket_common.ledger import LeaseBusy
from voiceticket_common.sealing import MemoryCallKeys, Sealer
from voiceticket_common.testing import call_transcribed


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def scripted(failures: list[Exception], events: list[CallAnalyzed]):  # type: ignore[no-untyped-def]
    """A handler that raises ``failures`` one call each, in order, then returns ``events``."""
    pending = list(failures)

    async def handler(_):  # type: ignore[no-untyped-def]
        if pending:
            raise pending.pop(0)
        return events

    return handler


async def test_transient_failures_are_retried_then_succeed(analyzed: CallAnalyzed) -> None:
    calls = 0

    async def handler(_):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TransientError("busy", retry_after=2.0)
        return [analyzed]

    sleeps = Sleeps()
    outcome = await run_handler(analyzed, handler, RetryPolicy(max_attempts=5), sleeps)
    assert isinstance(outcome, Delivered)
    assert outcome.attempts == 3
    assert sleeps.delays and all(d >= 2.0 for d in sleeps.delays), "Retry-After must never be undercut"


async def test_permanent_failure_dead_letters_at_once(analyzed: CallAnalyzed) -> None:
    async def handler(_):  # type: ignore[no-untyped-def]
        raise PermanentError("jira said no")

    outcome = await run_handler(analyzed, handler, RetryPolicy(), Sleeps())
    assert isinstance(outcome, DeadLettered)
    assert outcome.attempts == 1
    assert outcome.reason == "jira said no"


async def test_retries_are_bounded(analyzed: CallAnalyzed) -> None:
    async def handler(_):  # type: ignore[no-untyped-def]
        raise TransientError("down")

    sleeps = Sleeps()
    outcome = await run_handler(analyzed, handler, RetryPolicy(max_attempts=4), sleeps)
    assert isinstance(outcome, DeadLettered)
    assert outcome.attempts == 4
    assert len(sleeps.delays) == 3
    assert "retries exhausted" in outcome.reason


async def test_unexpected_exceptions_dead_letter_instead_of_stalling(analyzed: CallAnalyzed) -> None:
    async def handler(_):  # type: ignore[no-untyped-def]
        raise KeyError("bug")

    outcome = await run_handler(analyzed, handler, RetryPolicy(), Sleeps())
    assert isinstance(outcome, DeadLettered)
    assert outcome.error_type == "KeyError"


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(initial_backoff=1.0, max_backoff=4.0)
    for attempt in range(1, 10):
        assert 0 <= backoff_delay(policy, attempt, None) <= min(4.0, 2 ** (attempt - 1))
    assert backoff_delay(policy, 1, 30.0) == 30.0


async def test_config_api_out_of_reach_is_retried_past_the_attempts_within_the_time_budget(
    analyzed: CallAnalyzed,
) -> None:
    # A config-api restart: more failures than max_attempts allows for a provider's, then it is back.
    handler = scripted([DependencyUnavailable("config-api unreachable: ConnectError")] * 8, [analyzed])
    outcome = await run_handler(analyzed, handler, RetryPolicy(max_attempts=5), Sleeps())
    assert isinstance(outcome, Delivered) and outcome.attempts == 9


@pytest.mark.parametrize("then", ["lease-busy", "provider"])
async def test_an_outage_does_not_spend_the_attempts_of_what_comes_after_it(
    analyzed: CallAnalyzed, then: str
) -> None:
    """Chaos seed 402 (full): a redelivered SMS waited out config-api's restart (5 attempts), then
    found the first attempt's lease held and was dead-lettered at once, 'retries exhausted',
    although nothing had failed: the outage had spent its attempts. Waiting for config-api or for
    another attempt's lease is not a failure of this record; only real failures count."""
    after: Exception = (
        LeaseBusy("another attempt holds this call's lease for 5.0s more", retry_after=5.1)
        if then == "lease-busy"
        else TransientError("twilio send sms failed with HTTP 500")
    )
    handler = scripted(
        [DependencyUnavailable("config-api unreachable: ConnectError")] * 5 + [after] * 2, [analyzed]
    )
    outcome = await run_handler(analyzed, handler, RetryPolicy(max_attempts=5), Sleeps())
    assert isinstance(outcome, Delivered) and outcome.attempts == 8


async def test_a_lease_held_elsewhere_is_waited_for_until_the_time_budget(analyzed: CallAnalyzed) -> None:
    async def handler(_):  # type: ignore[no-untyped-def]
        raise LeaseBusy("another attempt holds this call's lease", retry_after=0.01)

    policy = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.02, max_total_seconds=0.3)
    outcome = await run_handler(analyzed, handler, policy)
    assert isinstance(outcome, DeadLettered) and outcome.attempts > 2


async def test_real_failures_stay_bounded_by_the_attempts_after_an_outage(analyzed: CallAnalyzed) -> None:
    outage = [DependencyUnavailable("config-api unreachable: ConnectError")] * 3
    handler = scripted(outage + [TransientError("jira create failed with HTTP 503")] * 10, [analyzed])
    outcome = await run_handler(analyzed, handler, RetryPolicy(max_attempts=4), Sleeps())
    assert isinstance(outcome, DeadLettered) and outcome.attempts == 3 + 4


async def test_config_api_out_of_reach_still_ends_with_the_time_budget(analyzed: CallAnalyzed) -> None:
    async def handler(_):  # type: ignore[no-untyped-def]
        raise DependencyUnavailable("config-api unreachable: ConnectError")

    policy = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.02, max_total_seconds=0.3)
    outcome = await run_handler(analyzed, handler, policy)
    assert isinstance(outcome, DeadLettered) and outcome.attempts > 2, (
        "the budget, not the attempts, ended it"
    )


class KeysBackAfter:
    """Call keys whose server is out of reach for the first ``outage`` fetches."""

    def __init__(self, keys: MemoryCallKeys, outage: int) -> None:
        self.keys, self.outage, self.fetches = keys, outage, 0

    async def key_for_sealing(self, event):  # type: ignore[no-untyped-def]
        return await self.keys.key_for_sealing(event)

    async def key_for_opening(self, tenant_id: str, call_sid: str):  # type: ignore[no-untyped-def]
        self.fetches += 1
        if self.fetches <= self.outage:
            raise DependencyUnavailable("config-api unreachable for a call key: ConnectError")
        return await self.keys.key_for_opening(tenant_id, call_sid)

    async def erased(self, tenant_id: str, call_sid: str) -> bool:
        return await self.keys.erased(tenant_id, call_sid)


async def test_a_sealed_record_waits_out_a_config_api_restart_instead_of_being_dead_lettered() -> None:
    keys = MemoryCallKeys()
    event = call_transcribed(transcript="My VPN is down.")
    _, value, headers = await wire.seal_record(wire.envelope_for(event, "test"), Sealer(keys))
    restarting = KeysBackAfter(keys, outage=8)
    opened = await open_with_retries(
        value, headers, Sealer(restarting), RetryPolicy(max_attempts=5), Sleeps()
    )
    assert opened.event == event and restarting.fetches == 9


@pytest.mark.parametrize(
    "replacement",
    [
        AttributeError("'NoneType' object has no attribute 'send'"),
        PermanentError("closed"),
        TransientError("closed"),
    ],
    ids=["unexpected", "permanent", "transient"],
)
async def test_a_cancelled_handler_is_handed_back_even_if_its_clean_up_raises(
    analyzed: CallAnalyzed, replacement: Exception
) -> None:
    """A partition handed back (rebalance, SIGTERM) cancels the handler; a library whose clean-up
    raises while it is cancelled (a client closed under it) replaces the CancelledError with its
    own error. That record was handed back, not failed: dead-lettering it (and committing past it)
    would lose the call that the partition's next owner was to redo (chaos seed 303)."""
    started = asyncio.Event()

    async def handler(_):  # type: ignore[no-untyped-def]
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise replacement from None
        return [analyzed]

    running = asyncio.create_task(run_handler(analyzed, handler, RetryPolicy(max_attempts=5), Sleeps()))
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
