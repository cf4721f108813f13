"""In-handler retries within a budget: Retry-After honoured, permanent errors untouched."""

from __future__ import annotations

import random

import pytest

from voiceticket_common.bus import PermanentError, RetryPolicy, TransientError
from voiceticket_common.retry_budget import (
    POLL_INTERVAL_SECONDS,
    AnswerRejected,
    BudgetExhausted,
    RetryBudget,
    fits_poll_interval,
    within_budget,
)
from voiceticket_common.testing import VirtualClock


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
    clock = VirtualClock()
    call = failing(TransientError("429", retry_after=3.0), TransientError("503"), "ok")
    result = await within_budget(call, RetryBudget(attempts=5, seconds=60), "stt", clock.sleep, clock)
    assert result == "ok"
    assert len(call.calls) == 3
    assert clock.delays[0] >= 3.0


async def test_attempts_are_bounded_and_the_last_error_is_kept() -> None:
    clock = VirtualClock()
    call = failing(*[TransientError(f"503 #{i}") for i in range(10)])
    with pytest.raises(BudgetExhausted) as info:
        await within_budget(call, RetryBudget(attempts=3, seconds=600), "llm", clock.sleep, clock)
    assert len(call.calls) == 3 and info.value.attempts == 3
    assert "503 #2" in str(info.value.last)
    assert len(clock.delays) == 2


async def test_a_retry_after_beyond_the_budget_ends_retries_early_instead_of_undercutting() -> None:
    clock = VirtualClock()
    call = failing(TransientError("429", retry_after=120.0), "never reached")
    with pytest.raises(BudgetExhausted):
        await within_budget(call, RetryBudget(attempts=5, seconds=30), "llm", clock.sleep, clock)
    assert clock.delays == [] and len(call.calls) == 1


async def test_permanent_errors_propagate_at_once() -> None:
    clock = VirtualClock()
    call = failing(PermanentError("401 bad key"), "never reached")
    with pytest.raises(PermanentError):
        await within_budget(call, RetryBudget(), "llm", clock.sleep, clock)
    assert len(call.calls) == 1 and clock.delays == []


class RateLimitedFor:
    """A provider answering 429 without Retry-After until ``seconds`` of ``clock`` have passed,
    each call taking ``latency`` seconds."""

    def __init__(self, clock: VirtualClock, seconds: float, latency: float = 0.0) -> None:
        self.clock, self.seconds, self.latency = clock, seconds, latency
        self.calls: list[float] = []

    async def __call__(self) -> str:
        self.calls.append(self.clock.now)
        self.clock.now += self.latency
        if self.clock.now < self.seconds:
            raise TransientError("openai analysis failed with HTTP 429")
        return "ok"


@pytest.mark.parametrize("seed", range(20))
async def test_a_429_without_retry_after_for_40_s_is_waited_out_by_the_default_budget(seed: int) -> None:
    random.seed(seed)
    clock = VirtualClock()
    call = RateLimitedFor(clock, 40.0, latency=0.3)
    assert await within_budget(call, RetryBudget(clock=clock), "llm", clock.sleep) == "ok"
    assert clock.now >= 40.0 and len(call.calls) < RetryBudget().attempts
    assert max(clock.delays) <= RetryBudget().max_backoff


@pytest.mark.parametrize("seed", range(20))
async def test_past_the_time_budget_the_retries_end_with_a_last_try_at_the_deadline(seed: int) -> None:
    random.seed(seed)
    clock = VirtualClock()
    call = RateLimitedFor(clock, float("inf"))
    with pytest.raises(BudgetExhausted) as info:
        await within_budget(call, RetryBudget(clock=clock), "llm", clock.sleep)
    assert call.calls[-1] == pytest.approx(120.0)  # the last try at the deadline, not before it
    assert info.value.seconds == pytest.approx(120.0) and info.value.attempts == len(call.calls)
    assert 8 <= len(call.calls) < RetryBudget().attempts  # time, not the attempts cap, ended it


async def test_time_spent_in_calls_counts_against_the_budget() -> None:
    clock = VirtualClock()
    call = RateLimitedFor(clock, float("inf"), latency=50.0)  # every call times out after 50 s
    with pytest.raises(BudgetExhausted) as info:
        await within_budget(call, RetryBudget(seconds=120, clock=clock), "llm", clock.sleep)
    assert len(call.calls) == 3 and max(call.calls) <= 120.0
    assert info.value.seconds <= 120.0 + 50.0


async def test_retry_after_within_the_budget_is_honoured_however_often_it_comes() -> None:
    clock = VirtualClock()
    call = failing(*[TransientError("429", retry_after=20.0)] * 5, "ok")
    assert await within_budget(call, RetryBudget(clock=clock), "llm", clock.sleep) == "ok"
    assert clock.delays == [20.0] * 5


async def test_a_retry_after_past_the_remaining_budget_ends_the_retries_there() -> None:
    clock = VirtualClock()
    call = failing(*[TransientError("429", retry_after=50.0)] * 5, "never reached")
    with pytest.raises(BudgetExhausted) as info:
        await within_budget(call, RetryBudget(seconds=120, clock=clock), "llm", clock.sleep)
    assert clock.delays == [50.0, 50.0] and info.value.attempts == 3  # a third wait would end at 150 s


async def test_rejected_answers_are_retried_only_a_few_times_whatever_the_time_left() -> None:
    clock = VirtualClock()
    call = failing(*[AnswerRejected("off-schema")] * 10)
    with pytest.raises(BudgetExhausted) as info:
        await within_budget(call, RetryBudget(clock=clock), "llm", clock.sleep)
    assert len(call.calls) == RetryBudget().rejected_answers == 4
    assert isinstance(info.value.last, AnswerRejected)


async def test_rate_limits_between_rejected_answers_do_not_count_as_answers() -> None:
    clock = VirtualClock()
    outcomes = [TransientError("429"), AnswerRejected("off-schema")] * 3 + ["ok"]
    call = failing(*outcomes)
    assert await within_budget(call, RetryBudget(clock=clock), "llm", clock.sleep) == "ok"
    assert len(call.calls) == 7


def test_the_budget_plus_a_timeout_must_stay_inside_the_poll_interval() -> None:
    fits_poll_interval(120, 60, "analysis")
    fits_poll_interval(90, 120, "speech-to-text")
    with pytest.raises(ValueError, match="poll interval"):
        fits_poll_interval(200, 60, "analysis")


def test_the_bus_poll_interval_is_the_one_the_budgets_are_checked_against() -> None:
    # bus/kafka.py: max_poll_interval_ms=max(300_000, int(retry.max_total_seconds * 1000) + 60_000)
    assert max(300.0, RetryPolicy().max_total_seconds + 60) == POLL_INTERVAL_SECONDS
