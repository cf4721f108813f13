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

    async def dead_letters(self, group: str) -> list[DeadLetter]:
        """What ``group`` dead-lettered so far, oldest first."""

    async def replay(self, letter: DeadLetter) -> None:
        """Deliver a dead letter again (after the cause was fixed); handlers are idempotent."""


@dataclass(frozen=True)
class DeadLetter:
    """A record a consumer group gave up on, with the reason, ready to inspect or replay."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    original_topic: str
    error_type: str
    error: str
    attempts: int

    @classmethod
    def from_record(
        cls, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> DeadLetter:
        attrs = {k: v.decode("utf-8", "replace") for k, v in headers}
        return cls(
            key=key,
            value=value,
            headers=[(k, v) for k, v in headers if not k.startswith("dlq_")],
            original_topic=attrs.get("dlq_original_topic", ""),
            error_type=attrs.get("dlq_error_type", ""),
            error=attrs.get("dlq_error", ""),
            attempts=int(attrs.get("dlq_attempts", "0") or 0),
        )


def dead_letter_topic(group: str) -> str:
    return f"voiceticket.dlq.{group}"
