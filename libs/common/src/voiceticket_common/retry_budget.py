"""A provider call retried inside one handler run, within a budget of attempts and seconds.

The bus retries a failed handler as a whole and dead-letters it when its policy is spent. For the
two providers the product can work around (speech-to-text and the language model) that would lose
the call, so their handlers retry the provider call here instead and, when the budget is spent,
carry on degraded (DESIGN §3: transcript or analysis missing, request marked for triage).
``PermanentError`` (a bad key, a refused request) is never retried and still dead-letters.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry import trace

from .bus.errors import TransientError
from .tracing import record_failure

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryBudget:
    """At most ``attempts`` calls and ``seconds`` of waiting between them; full-jitter backoff
    from ``initial_backoff`` up to ``max_backoff``, never shorter than a server's Retry-After."""

    attempts: int = 4
    seconds: float = 60.0
    initial_backoff: float = 1.0
    max_backoff: float = 15.0


class BudgetExhausted(Exception):
    """Every attempt the budget allowed failed transiently; ``last`` is the final failure."""

    def __init__(self, what: str, attempts: int, last: TransientError) -> None:
        super().__init__(f"{what}: {attempts} attempt(s) failed, budget spent ({last})")
        self.attempts = attempts
        self.last = last


def next_delay(budget: RetryBudget, attempt: int, retry_after: float | None) -> float:
    ceiling = min(budget.max_backoff, budget.initial_backoff * (2 ** (attempt - 1)))
    delay = random.uniform(0, ceiling)
    return delay if retry_after is None else max(delay, retry_after)


async def within_budget(
    call: Callable[[], Awaitable[T]],
    budget: RetryBudget,
    what: str,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Await ``call()`` until it succeeds; retry ``TransientError`` while the budget lasts.

    A wait the budget cannot afford (a long Retry-After, or the seconds used up) ends the retries
    early rather than undercutting the server: ``BudgetExhausted`` is raised and the caller decides
    how to degrade. Any other exception propagates unchanged.
    """

    span = trace.get_current_span()
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return await call()
        except TransientError as exc:
            delay = next_delay(budget, attempt, exc.retry_after)
            spent = clock() - started
            if attempt >= budget.attempts or spent + delay > budget.seconds:
                record_failure(span, exc, retrying=False)
                raise BudgetExhausted(what, attempt, exc) from exc
            record_failure(span, exc, retrying=True)
            log.warning(
                "provider call failed, retrying within budget",
                extra={"what": what, "attempt": attempt, "delay_s": round(delay, 2), "error": str(exc)},
            )
            await sleep(delay)
