"""Running a handler with bounded retries: the part every bus adapter shares."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..events import Event
from ..metrics import dropped
from ..sealing import Sealer
from ..tracing import record_failure
from .envelope import Envelope, Headers, MalformedMessage, dead_letter_headers, open_record
from .errors import PermanentError, TransientError, Waiting
from .port import FollowHandler, Handler, RetryPolicy

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Delivered:
    events: Sequence[Event]
    attempts: int


@dataclass(frozen=True)
class DeadLettered:
    reason: str
    error_type: str
    attempts: int

    def headers(self, original: Headers | None, *, topic: str, group: str) -> Headers:
        """The record's headers in the dead-letter topic: the original ones and this reason."""

        return dead_letter_headers(
            original,
            topic=topic,
            group=group,
            error_type=self.error_type,
            error=self.reason,
            attempts=self.attempts,
        )


def backoff_delay(policy: RetryPolicy, attempt: int, retry_after: float | None) -> float:
    """Full-jitter exponential backoff; a server's Retry-After is never undercut."""

    ceiling = min(policy.max_backoff, policy.initial_backoff * (2 ** (attempt - 1)))
    delay = random.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


async def run_handler(
    event: Event,
    handler: Handler,
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
) -> Delivered | DeadLettered:
    """Call ``handler`` until it succeeds, fails permanently, or the retry budget is spent."""

    from opentelemetry import trace

    span = trace.get_current_span()
    started = time.monotonic()
    attempt = failures = 0
    while True:
        attempt += 1
        try:
            events = await handler(event)
            return Delivered(events=events, attempts=attempt)
        except PermanentError as exc:
            _handed_back(exc)
            record_failure(span, exc, retrying=False)
            return DeadLettered(reason=str(exc), error_type=type(exc).__name__, attempts=attempt)
        except TransientError as exc:
            _handed_back(exc)
            delay = backoff_delay(policy, attempt, exc.retry_after)
            elapsed = time.monotonic() - started
            failures += not isinstance(exc, Waiting)
            if out_of_retries(policy, failures, elapsed + delay, exc):
                record_failure(span, exc, retrying=False)
                return DeadLettered(
                    reason=f"retries exhausted: {exc}", error_type=type(exc).__name__, attempts=attempt
                )
            record_failure(span, exc, retrying=True)
            log.warning(
                "transient failure, retrying",
                extra={"attempt": attempt, "delay_s": round(delay, 2), "error": str(exc)},
            )
            await sleep(delay)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an unexpected bug: dead-letter it rather than stall the partition
            _handed_back(exc)
            log.exception("handler failed unexpectedly", extra={"error_type": type(exc).__name__})
            record_failure(span, exc, retrying=False)
            return DeadLettered(
                reason=f"unexpected {type(exc).__name__}", error_type=type(exc).__name__, attempts=attempt
            )


def _handed_back(exc: BaseException) -> None:
    """Raise CancelledError if this task is being cancelled: its record was handed back (a
    rebalance, a SIGTERM), whatever error a library's clean-up raised in place of the cancel (a
    client closed under it). Such a record is neither failed nor retried here: dead-lettering it
    and committing past it would lose the call its partition's next owner is to redo."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError() from exc


def out_of_retries(policy: RetryPolicy, failures: int, waited_by_next: float, exc: TransientError) -> bool:
    """Whether a transient failure ends the retries: past the time budget, or (unless the record
    is only waiting, ``Waiting``: config-api out of reach, another attempt's lease) past the
    attempts. ``failures``: the attempts that failed on their own, waits not counted."""
    if waited_by_next > policy.max_total_seconds:
        return True
    return failures >= policy.max_attempts and not isinstance(exc, Waiting)


# -- sealed records (voiceticket_common.sealing): what both adapters do with erased calls --------


async def open_with_retries(
    value: bytes | None,
    headers: Headers | None,
    sealer: Sealer | None,
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
) -> Envelope:
    """The record as an envelope, its sealed fields opened; the call keys' server being out of
    reach is retried like a handler's transient failure, then the record is dead-lettered (it
    holds only sealed fields). Raises CallErased for a record of an erased call (dropped)."""

    started, attempt = time.monotonic(), 0
    while True:
        attempt += 1
        try:
            return await open_record(value, headers, sealer)
        except TransientError as exc:
            delay = backoff_delay(policy, attempt, exc.retry_after)
            if out_of_retries(policy, attempt, time.monotonic() - started + delay, exc):
                raise MalformedMessage(f"the call's data key stayed out of reach: {exc}") from None
            log.warning("call key out of reach, retrying", extra={"attempt": attempt, "error": str(exc)})
            await sleep(delay)


async def is_erased(sealer: Sealer | None, event: Event) -> bool:
    """Whether ``event``'s call was erased (or its tenant removed): then its record is dropped
    rather than dead-lettered, whatever the handler's failure was (it had lost its data)."""

    if sealer is None:
        return False
    try:
        return await sealer.keys.erased(event.tenant_id, event.call_sid)
    except TransientError:
        return False


def drop_erased(group: str, topic: str) -> None:
    """Count and log a record dropped because its call's data key is destroyed."""

    dropped(group, "call_erased")
    log.info("record of an erased call dropped", extra={"group": group, "topic": topic})


# -- followers (port.EventFollower): what both adapters do with a record they follow ------------


async def follow_record(
    value: bytes | None, headers: Headers | None, sealer: Sealer | None, handler: FollowHandler, topic: str
) -> None:
    """Open one followed record and give it to ``handler``; what cannot be read, or fails, is
    logged and skipped (a follower has no dead-letter topic, and its state expires anyway)."""

    try:
        envelope = await open_record(value, headers, sealer)
        await handler(envelope.event)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - skipped: see the docstring
        dropped("follower", "unreadable" if isinstance(exc, MalformedMessage) else "handler_failed")
        log.warning("followed record skipped", extra={"topic": topic, "error_type": type(exc).__name__})
