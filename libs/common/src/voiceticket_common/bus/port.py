"""The bus port: what services need from a message broker, whatever the adapter.

It speaks events, dead letters as values and topic provisioning; records, headers and partitions
stay inside the adapters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable

from ..events import Event

Handler = Callable[[Event], Awaitable[Sequence[Event]]]
"""A handler gets one delivered event and returns the events to publish as its outcome.

The bus publishes those events, then marks the input as consumed, so a crash in between
redelivers the input (at-least-once); handlers are idempotent per (tenant, CallSid, step).
Services do not write these by hand: ``dispatch.Dispatcher`` routes each event class to its
typed handler.
"""


DEFAULT_MAX_IN_FLIGHT = 16
"""Records one consumer holds at once (running, or waiting behind an earlier record of their key)."""
DEFAULT_DRAIN_SECONDS = 15.0
"""How long a consumer that stops or loses partitions lets its records finish before handing the
rest back (within Kubernetes' default 30 s termination grace)."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter; Retry-After wins when longer."""

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    max_total_seconds: float = 120.0


@dataclass(frozen=True)
class TopicRetention:
    """How long the bus keeps records. Events carry personal data (numbers, transcripts), so they
    are kept only as long as a lagging consumer or a replay could need them; dead letters wait
    for an operator and get longer. Retention wins over consumption, as in Kafka: a consumer that
    lags by more than ``events`` loses those records."""

    events: timedelta = timedelta(days=7)
    dead_letters: timedelta = timedelta(days=14)


@dataclass(frozen=True)
class DeadLetter:
    """A record a consumer group gave up on, with the reason, ready to inspect or replay.

    It names the call and the event type but holds no payload: payloads carry personal data and
    stay in the dead-letter topic until replayed or expired.
    """

    letter_id: str
    """The adapter's handle for this letter (what ``replay`` finds it by)."""
    consumer_group: str
    call_sid: str
    """The record's key: the CallSid ("" when a bad producer sent none)."""
    event_type: str
    """The CloudEvents type the record claimed ("" when it had none)."""
    original_topic: str
    error_type: str
    error: str
    attempts: int


class EventPublisher(Protocol):
    async def publish(self, event: Event, *, discriminator: str = "") -> None:
        """Publish ``event`` keyed by its CallSid; returns when the broker acknowledged it."""


class EventBus(EventPublisher, Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def ensure_topics(
        self, event_types: Sequence[type[Event]], dead_letter_groups: Sequence[str] = ()
    ) -> None:
        """Provision the topics of ``event_types`` and the dead-letter topics of the groups."""

    async def consume(
        self,
        group: str,
        event_types: Sequence[type[Event]],
        handler: Handler,
        retry: RetryPolicy = RetryPolicy(),
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
    ) -> None:
        """Deliver events of ``event_types`` to ``handler`` until cancelled.

        Up to ``max_in_flight`` events are handled at once: those of one key (a CallSid) strictly
        one after another, in the order they were published, those of different keys in
        parallel. An event counts as consumed only once its outcome is published and every
        event before it (of that partition) is consumed too, so a crash redelivers whatever was
        not. Cancelled, the consumer stops fetching, lets what it holds finish for up to
        ``drain_seconds``, records what completed, and hands the rest back (redelivered).

        Failures are retried per ``retry`` (a retrying event holds up only its own key);
        permanent failures, malformed records and exhausted retries go to the group's
        dead-letter topic so a poison message never stalls a partition.
        """

    async def dead_letters(self, group: str) -> list[DeadLetter]:
        """What ``group`` dead-lettered so far, oldest first."""

    async def replay(self, letter: DeadLetter) -> None:
        """Deliver a dead letter again (after the cause was fixed); handlers are idempotent."""


FollowHandler = Callable[[Event], Awaitable[None]]
"""What a follower does with each event it reads (it publishes nothing)."""

FOLLOW_LOOKBACK_SECONDS = 5.0
"""How far before ``follow`` was called it starts reading: an event published while the follower
was being set up is not missed (one read twice is harmless to what followers do)."""


@runtime_checkable
class EventFollower(Protocol):
    """A bus every replica of a service can read in full, without a consumer group."""

    async def follow(self, event_types: Sequence[type[Event]], handler: FollowHandler) -> None:
        """Give ``handler`` every event of ``event_types`` published from shortly before this call
        (``FOLLOW_LOOKBACK_SECONDS``) on, until cancelled: in every process that follows, each
        reads every record (no group, no commits, nothing redelivered after a restart). A record
        that cannot be read, or whose handler fails, is logged and skipped (never dead-lettered):
        followers keep derived state, such as caches, that another way bounds (their expiry)."""


def dead_letter_topic(group: str) -> str:
    return f"voiceticket.dlq.{group}"
