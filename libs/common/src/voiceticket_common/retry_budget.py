"""A provider call retried inside one handler run, within a time budget.

The bus retries a failed handler as a whole and dead-letters it when its policy is spent. For the
two providers the product can work around (speech-to-text and the language model) that would lose
the call, so their handlers retry the provider call here instead and, when the budget is spent,
carry on degraded (DESIGN §3: transcript or analysis missing, request marked for triage).
``PermanentError`` (a bad key, a refused request) is never retried and still dead-letters.

The budget is time, not a count: a rate limit (OpenAI's per-minute limits reset within 60 s) or a
brief outage is waited out with full-jitter exponential backoff, a server's Retry-After honoured,
until ``RetryBudget.seconds`` have passed since the first attempt; the last retry is made at the
deadline rather than given up early. ``attempts`` is only a generous cap on the calls made. An
answer the provider was paid for but that was unusable (``AnswerRejected``, e.g. an off-schema
analysis) is retried too, but at most ``rejected_answers`` times, so a model that keeps answering
off-schema costs a few completions, not a minute of them.

A handler run can last ``seconds`` plus one provider timeout (the last attempt starts at most at
the deadline): ``fits_poll_interval`` checks that against the Kafka consumer's poll interval. The
consumer keeps polling while its records run, so this now bounds the rebalance timeout (how long
the group waits for a member to hand its work back), not one record's time; the check stays as a
sane upper bound on a record's retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from opentelemetry import trace

from .bus.errors import TransientError
from .tracing import record_failure

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


POLL_INTERVAL_SECONDS = 300.0
"""The Kafka consumer's ``max_poll_interval_ms`` with the default ``RetryPolicy`` (``bus/kafka.py``:
the policy's ``max_total_seconds`` plus this). The consumer polls while records run (paused at its
in-flight limit), so it is the group's rebalance timeout, and a record's retries stay within it."""


@dataclass(frozen=True)
class RetryBudget:
    """Retries for ``seconds`` from the first attempt (the time spent in calls included), with
    full-jitter backoff from ``initial_backoff`` up to ``max_backoff``, never shorter than a
    server's Retry-After; at most ``attempts`` calls, of which at most ``rejected_answers`` may end
    in ``AnswerRejected``. ``clock`` measures the seconds (a test's fake clock, advanced by its
    fake sleep, so that a budget of minutes is spent without waiting)."""

    attempts: int = 40
    seconds: float = 120.0
    initial_backoff: float = 1.0
    max_backoff: float = 15.0
    rejected_answers: int = 4
    clock: Callable[[], float] = field(default=time.monotonic, compare=False, repr=False)


class AnswerRejected(TransientError):
    """The provider answered (and charged for it) but the answer is unusable; another try may do
    better (models are not deterministic), within ``RetryBudget.rejected_answers``."""


class BudgetExhausted(Exception):
    """Every attempt the budget allowed failed transiently; ``last`` is the final failure."""

    def __init__(self, what: str, attempts: int, last: TransientError, seconds: float = 0.0) -> None:
        super().__init__(f"{what}: {attempts} attempt(s) in {seconds:.1f} s failed, budget spent ({last})")
        self.attempts = attempts
        self.seconds = seconds
        """Seconds from the first attempt until the retries ended."""
        self.last = last


def next_delay(budget: RetryBudget, attempt: int, retry_after: float | None) -> float:
    ceiling = min(budget.max_backoff, budget.initial_backoff * (2 ** (attempt - 1)))
    delay = random.uniform(0, ceiling)
    return delay if retry_after is None else max(delay, retry_after)


def fits_poll_interval(budget_seconds: float, timeout_seconds: float, what: str) -> None:
    """Raise ``ValueError`` unless a run of ``budget_seconds`` plus a last attempt of
    ``timeout_seconds`` ends well inside the consumer's poll interval (a minute to spare)."""

    longest = budget_seconds + timeout_seconds
    if longest > POLL_INTERVAL_SECONDS - 60:
        raise ValueError(
            f"{what}: a retry budget of {budget_seconds:g} s plus a {timeout_seconds:g} s timeout may hold "
            f"a record {longest:g} s, too close to the consumer's {POLL_INTERVAL_SECONDS:g} s poll "
            f"interval (a rebalance would redeliver it); keep the sum at most {POLL_INTERVAL_SECONDS - 60:g} s"
        )


async def within_budget(
    call: Callable[[], Awaitable[T]],
    budget: RetryBudget,
    what: str,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] | None = None,
) -> T:
    """Await ``call()`` until it succeeds; retry ``TransientError`` while the budget lasts.

    A backoff that would overrun the deadline is shortened to it, so the last try is made at the
    deadline; a Retry-After past the deadline ends the retries instead of undercutting the server.
    When the seconds, the attempts or the rejected answers are spent, ``BudgetExhausted`` is raised
    and the caller decides how to degrade. Any other exception propagates unchanged.
    """

    clock = clock or budget.clock
    span = trace.get_current_span()
    started = clock()
    attempt = rejected = 0
    while True:
        attempt += 1
        try:
            return await call()
        except TransientError as exc:
            rejected += isinstance(exc, AnswerRejected)
            spent = clock() - started
            remaining = budget.seconds - spent
            delay = next_delay(budget, attempt, exc.retry_after)
            if exc.retry_after is None:
                delay = min(delay, max(remaining, 0.0))
            if (
                attempt >= budget.attempts
                or rejected >= budget.rejected_answers
                or remaining <= 0
                or delay > remaining
            ):
                record_failure(span, exc, retrying=False)
                log.warning(
                    "provider call failed, retry budget spent",
                    extra={"what": what, "attempts": attempt, "spent_s": round(spent, 2), "error": str(exc)},
                )
                raise BudgetExhausted(what, attempt, exc, spent) from exc
            record_failure(span, exc, retrying=True)
            log.warning(
                "provider call failed, retrying within budget",
                extra={"what": what, "attempt": attempt, "delay_s": round(delay, 2), "error": str(exc)},
            )
            await sleep(delay)
