"""The bus port: what services need from a message broker, whatever the adapter."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..events import Event
from .envelope import Envelope

Handler = Callable[[Envelope], Awaitable[Sequence[Event]]]
"""A handler gets one delivered envelope and returns the events to publish as its outcome.

The bus publishes those events, then marks the input as consumed, so a crash in between
redelivers the input (at-least-once); handlers are idempotent per (tenant, CallSid, step).
"""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and full jitter; Retry-After wins when longer."""

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    max_total_seconds: float = 120.0


class EventPublisher(Protocol):
    async def publish(self, event: Event, *, discriminator: str = "") -> None:
        """Publish ``event`` keyed by its CallSid; returns when the broker acknowledged it."""


class EventBus(EventPublisher, Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def consume(
        self,
        group: str,
        event_types: Sequence[type[Event]],
        handler: Handler,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        """Deliver events of ``event_types`` to ``handler`` until cancelled.

        Failures are retried per ``retry``; permanent failures, malformed records and exhausted
        retries go to the group's dead-letter topic so a poison message never stalls a partition.
        """


def dead_letter_topic(group: str) -> str:
    return f"voiceticket.dlq.{group}"
