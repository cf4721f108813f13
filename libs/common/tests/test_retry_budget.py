"""In-handler retries within a budget: Retry-After honoured, permanent errors untouched."""

from __future__ import annotations

import pytest

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.retry_budget import BudgetExhausted, RetryBudget, within_budget


class Clock:
    """A fake monotonic clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(*outcomes: object):  # type: ignore[no-untyped-def]
    remaining = list(outcomes)
    calls = []

    async def call() -> object:
        calls.append(1)
        outcome = remaining.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    call.calls = calls  # type: ignore[attr-defined]
    return call


async def test_succeeds_after_transient_failures_waiting_at_least_retry_after() -> None:
    clock = Clock()
    call = failing(TransientError("429", retry_after=3.0), TransientError("503"), "ok")
    result = await within_budget(call, RetryBudget(attempts=5, seconds=60), "stt", clock.sleep, clock)
    assert result == "ok"
    assert len(call.calls) == 3
    assert clock.sleeps[0] >= 3.0


async def test_attempts_are_bounded_and_the_last_error_is_kept() -> None:
    clock = Clock()
    call = failing(*[TransientError(f"503 #{i}") for i in range(10)])
    with pytest.raises(BudgetExhausted) as info:
        await within_budget(call, RetryBudget(attempts=3, seconds=600), "llm", clock.sleep, clock)
    assert len(call.calls) == 3 and info.value.attempts == 3
    assert "503 #2" in str(info.value.last)
    assert len(clock.sleeps) == 2


async def test_a_retry_after_beyond_the_budget_ends_retries_early_instead_of_undercutting() -> None:
    clock = Clock()
    call = failing(TransientError("429", retry_after=120.0), "never reached")
    with pytest.raises(BudgetExhausted):
        await within_budget(call, RetryBudget(attempts=5, seconds=30), "llm", clock.sleep, clock)
    assert clock.sleeps == [] and len(call.calls) == 1


async def test_permanent_errors_propagate_at_once() -> None:
    clock = Clock()
    call = failing(PermanentError("401 bad key"), "never reached")
    with pytest.raises(PermanentError):
        await within_budget(call, RetryBudget(), "llm", clock.sleep, clock)
    assert len(call.calls) == 1 and clock.sleeps == []
