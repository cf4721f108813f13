"""Flow control toward providers: at most N calls at once per (tenant, provider), in this process.

A burst of calls, handled concurrently by the bus, must not hammer one customer's Jira or spend
their OpenAI quota in a second: each call to a provider holds one of the tenant's slots for that
provider, and a call over the limit waits, first come first served. The limits are the tenant's
``provider_concurrency`` from config-api, read from the service's runtime view on every
acquisition, so a changed limit applies to the next calls (waiters included) without a restart.

A slot is held for one provider request, not across a retry's backoff: callers acquire it inside
each attempt, so a 429's Retry-After is waited out without a slot and other calls go on. The
limit is per process (per replica): N replicas allow N times the limit (docs/operations.md).

Nothing here touches the event loop at import: futures are made by the loop that waits, and a
(tenant, provider) with nothing held and nobody waiting is forgotten.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal, get_args

from . import metrics

Provider = Literal["speech_to_text", "llm", "jira", "sms"]
"""The providers a tenant's ``provider_concurrency`` limits."""
PROVIDERS: tuple[Provider, ...] = get_args(Provider)


@dataclass
class _Gate:
    """One (tenant, provider): slots in use, the current limit, and who waits, oldest first."""

    limit: int | None
    in_use: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)

    def has_room(self) -> bool:
        return self.limit is None or self.in_use < self.limit


class ProviderLimits:
    """A registry of resizable per-(tenant, provider) semaphores; ``limits`` is the process's one.

    ``async with limits.slot(tenant_id, "jira", 4): ...`` holds one of the tenant's four Jira
    slots for the block; ``limit=None`` means unlimited (the slot is counted, never waited for).
    The limit given by the latest acquisition wins: raising it lets waiters in at once, lowering
    it lets no new call in until enough held slots are given back (held ones are not revoked).
    """

    def __init__(self) -> None:
        self._gates: dict[tuple[str, Provider], _Gate] = {}

    @asynccontextmanager
    async def slot(self, tenant_id: str, provider: Provider, limit: int | None) -> AsyncIterator[None]:
        if limit is not None and limit < 1:
            raise ValueError(f"a {provider} concurrency limit must be at least 1 or None, not {limit}")
        key = (tenant_id, provider)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate(limit)
        else:
            gate.limit = limit
            self._admit(gate)  # a raised limit lets those already waiting in first
        started = time.perf_counter()
        if gate.waiters or not gate.has_room():
            await self._wait(key, gate)
        else:
            gate.in_use += 1
        metrics.provider_slot_wait(provider, time.perf_counter() - started)
        self._observe(key, gate)
        try:
            yield
        finally:
            self._release(key, gate)

    def in_use(self, tenant_id: str, provider: Provider) -> int:
        """Slots held now (for tests and diagnostics)."""
        gate = self._gates.get((tenant_id, provider))
        return gate.in_use if gate else 0

    def waiting(self, tenant_id: str, provider: Provider) -> int:
        gate = self._gates.get((tenant_id, provider))
        return len(gate.waiters) if gate else 0

    async def _wait(self, key: tuple[str, Provider], gate: _Gate) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        gate.waiters.append(waiter)
        self._observe(key, gate)
        try:
            await waiter  # granted: ``_admit`` counted the slot as ours
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release(key, gate)  # granted, then cancelled before it ran: give it back
            else:  # never granted: nothing to give back
                if waiter in gate.waiters:  # (a release may have skipped it already)
                    gate.waiters.remove(waiter)
                self._observe(key, gate)
                self._forget_if_idle(key, gate)
            raise

    def _release(self, key: tuple[str, Provider], gate: _Gate) -> None:
        gate.in_use -= 1
        self._admit(gate)
        self._observe(key, gate)
        self._forget_if_idle(key, gate)

    @staticmethod
    def _observe(key: tuple[str, Provider], gate: _Gate) -> None:
        tenant_id, provider = key
        metrics.provider_slots(provider, tenant_id, gate.in_use, len(gate.waiters))

    @staticmethod
    def _admit(gate: _Gate) -> None:
        while gate.waiters and gate.has_room():
            waiter = gate.waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                gate.in_use += 1
                waiter.set_result(None)

    def _forget_if_idle(self, key: tuple[str, Provider], gate: _Gate) -> None:
        if gate.in_use == 0 and not gate.waiters and self._gates.get(key) is gate:
            del self._gates[key]


limits = ProviderLimits()
"""The process's registry: every handler of a service shares it, so the limit holds across the
records the bus handles at once (and across services in the embedded runtime's one process,
where each provider is called by one service only)."""
