"""Cached config dropped when config-api announces a change (``config.changed``).

Every replica of every service that caches runtime views follows ``config.changed`` itself: the
bus's ``follow`` (no consumer group, every partition, no commits), because each replica holds its
own cache and each must drop it; a consumer group would give each change to one replica only.
Nothing is replayed after a restart, and nothing needs to be: a starting replica has an empty
cache. While the follower is down (the broker unreachable), the cache's own expiry
(``config_cache_seconds``) still bounds how stale a view gets; when it comes back, everything is
dropped, since changes may have been missed meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Protocol

from .bus.port import EventFollower
from .events import ConfigChanged, ConfigChangeKind, Event

log = logging.getLogger(__name__)

RESTART_DELAY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""How long a failed follower waits before following again (the last one repeats)."""


class ConfigCache(Protocol):
    """What can drop cached config (``RuntimeConfigClient``)."""

    def invalidate(self, numbers: Iterable[str] = (), *, tenant_id: str | None = None) -> int: ...

    def invalidate_all(self) -> int: ...


def drop_changed(cache: ConfigCache, event: ConfigChanged) -> int:
    """Drop what ``event`` made stale: the lines it names, and for a change of the tenant itself
    (its settings, a credential, its removal) every cached line of that tenant too."""
    whole_tenant = event.kind is not ConfigChangeKind.LINE
    return cache.invalidate(event.line_numbers, tenant_id=event.tenant_id if whole_tenant else None)


class ConfigChangeFollower:
    """Follows ``config.changed`` on a bus and drops the changed entries of ``caches``."""

    def __init__(self, bus: EventFollower, *caches: ConfigCache, service: str) -> None:
        self._bus = bus
        self._caches = caches
        self._service = service
        self.seen = 0
        """``config.changed`` events handled so far (tests, probes)."""
        self.latest_version = 0
        """The highest ``config_version`` seen."""

    async def handle(self, event: Event) -> None:
        if not isinstance(event, ConfigChanged):
            return
        dropped = sum(drop_changed(cache, event) for cache in self._caches)
        self.seen += 1
        self.latest_version = max(self.latest_version, event.config_version)
        log.info(
            "config changed: cached views dropped",
            extra={
                "service": self._service,
                "config_version": event.config_version,
                "kind": event.kind.value,
                "dropped": dropped,
            },
        )

    async def run(self) -> None:
        """Follow until cancelled; a failed follow is started again after a pause, dropping
        everything first (changes may have gone by unseen)."""
        failures = 0
        while True:
            try:
                await self._bus.follow([ConfigChanged], self.handle)
                raise RuntimeError("following ended")  # it ends only by failing or being cancelled
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker away: follow again, caches dropped
                delay = RESTART_DELAY_SECONDS[min(failures, len(RESTART_DELAY_SECONDS) - 1)]
                failures += 1
                log.warning(
                    "following config changes failed; following again",
                    extra={"service": self._service, "error_type": type(exc).__name__, "delay_s": delay},
                )
                await asyncio.sleep(delay)
                for cache in self._caches:
                    cache.invalidate_all()


@contextlib.asynccontextmanager
async def invalidating(
    bus: object, cache: ConfigCache, service: str, *more: ConfigCache
) -> AsyncIterator[ConfigChangeFollower | None]:
    """While open, ``cache`` (and ``more``) drops what ``config.changed`` on ``bus`` announces; a
    bus that cannot be followed (a test's recording publisher) leaves the caches to their expiry
    (yields None)."""
    if not isinstance(bus, EventFollower):
        yield None
        return
    follower = ConfigChangeFollower(bus, cache, *more, service=service)
    task = asyncio.create_task(follower.run(), name=f"{service} config changes")
    try:
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
