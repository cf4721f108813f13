"""What a running consumer reports about itself, for the probes (``voiceticket_common.health``).

Both adapters answer ``consumer_progress(group)`` with a ``ConsumerProgress`` snapshot read from
the figures they keep anyway (no I/O); the Kafka adapter also answers ``ping``, a cheap metadata
request to the cluster. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ConsumerProgress:
    """One consumer group member's state, as the liveness and readiness checks read it."""

    settled: bool
    """The member has joined its group and no rebalance is under way (embedded: it holds the
    group's consumer slot)."""
    partitions: int | None
    """Partitions assigned to this member (None: the adapter has none, the embedded log)."""
    in_flight: int
    """Records taken and not finished (running, or waiting behind their key)."""
    lag: int
    """Records known to wait on the assigned partitions and not taken yet (fetched high-water
    marks minus what was taken; 0 where unknown)."""
    last_poll: float | None
    """When the member last asked its log for records (None: not yet)."""
    last_progress: float | None
    """When a record last finished, or the member last went from nothing held to some work
    (None: never)."""
    partition_lags: Mapping[tuple[str, int], int] = field(default_factory=dict)
    """Per assigned (topic, partition): records behind its end (the last stable offset, or the
    high-water mark) from the offset this member committed or would commit now, in-flight records
    included. Only partitions this member holds right now, and only where both ends are known
    (fetched at least once); empty on the embedded log. ``voiceticket_consumer_lag`` is this."""


@runtime_checkable
class ReportsProgress(Protocol):
    """A bus whose consumers report their progress (both adapters)."""

    def consumer_progress(self, group: str) -> ConsumerProgress | None:
        """``group``'s member in this process, or None when this process is not consuming it."""


@runtime_checkable
class Pingable(Protocol):
    """A bus with a broker to reach (Kafka)."""

    async def ping(self) -> None:
        """Ask the cluster for its metadata; raises when no broker answers (the caller bounds
        the time it waits)."""
