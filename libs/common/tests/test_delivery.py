from __future__ import annotations

from voiceticket_common.bus import PermanentError, RetryPolicy, TransientError
from voiceticket_common.bus.delivery import DeadLettered, Delivered, backoff_delay, run_handler
from voiceticket_common.events import CallAnalyzed


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


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
