"""Whether a caller is on their tenant's block list (issue #16.5): asked of config-api, cached briefly.

Ingress asks only for tenants whose block list has entries (``blocks_callers`` in its runtime view),
and only about numbers (E.164): a tenant without a list costs the webhook nothing. The number goes
in the request body, never in a URL or a log line. Answers are cached per tenant and a keyed hash
of the number (a key of ingress's own, derived from the callback-context key: the cache never holds
the number), for ``cache_seconds``, and dropped when config-api announces a change of the tenant
(``config.changed``: a block or an unblock). Concurrent lookups of one caller share one request.

Fails open: when config-api cannot answer (unreachable, slow, an error), the call is taken as any
other and a warning logged (without the number); screening is never worth a lost support call. A
failure is not retried for ``RETRY_BACKOFF_SECONDS``, so a flood of calls does not pile onto a
config-api that is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import httpx
from pydantic import SecretStr

from voiceticket_common.caller_hash import CallerHasher
from voiceticket_common.config_client import cancel_all, remember_bounded

log = logging.getLogger(__name__)

MAX_CACHED = 4096
"""Answers kept at most (the oldest are forgotten first): anyone can call from any number."""
RETRY_BACKOFF_SECONDS = 1.0
_PURPOSE = b"voiceticket ingress block-list cache v1"


class BlockList(Protocol):
    """Whether ``caller_number`` is on ``tenant_id``'s block list (False when it cannot be told)."""

    async def blocks(self, tenant_id: str, caller_number: str) -> bool: ...

    async def aclose(self) -> None: ...


class ConfigApiBlockList:
    """``POST /v1/runtime/blocked-callers/check`` with ingress's token, cached (module docstring).

    Also a ``ConfigCache`` (``voiceticket_common.config_changes``): a change of a tenant drops its
    answers."""

    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        cache_key: SecretStr,
        cache_seconds: float = 30.0,
        client: httpx.AsyncClient | None = None,
        *,
        timeout_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/v1/runtime/blocked-callers/check"
        self._token = token
        self._hasher = CallerHasher(cache_key, _PURPOSE)  # the cache holds no number
        self._ttl = cache_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(1.0, timeout_seconds))
        )
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}  # -> (blocked, expires)
        self._inflight: dict[tuple[str, str], asyncio.Task[bool | None]] = {}
        self._failing_until = 0.0
        self._generation = 0

    def _cache_key(self, tenant_id: str, number: str) -> tuple[str, str]:
        return tenant_id, self._hasher.hash(tenant_id, number)

    async def blocks(self, tenant_id: str, caller_number: str) -> bool:
        key = self._cache_key(tenant_id, caller_number)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        if self._failing_until > now:
            return False  # failed a moment ago: open, without asking again
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, tenant_id, caller_number), name="block-list check")
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._settled(key, done))
        answer = await asyncio.shield(task)
        return bool(answer)

    def _settled(self, key: tuple[str, str], task: asyncio.Task[bool | None]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _load(self, key: tuple[str, str], tenant_id: str, number: str) -> bool | None:
        """The answer, cached; None (and a backoff) when config-api could not give one."""
        generation = self._generation
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.post(
                    self._url,
                    json={"tenant_id": tenant_id, "caller_number": number},
                    headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
                )
            blocked = response.json()["blocked"] if response.status_code == 200 else None
        except (httpx.HTTPError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            self._failed(type(exc).__name__)
            return None
        if not isinstance(blocked, bool):
            self._failed(f"status {response.status_code}")
            return None
        if generation == self._generation:  # not answered from before a change
            self._remember(key, blocked)
        return blocked

    def _failed(self, why: str) -> None:
        self._failing_until = self._clock() + RETRY_BACKOFF_SECONDS
        log.warning("block list unavailable: the call is taken unscreened", extra={"error_type": why})

    def _remember(self, key: tuple[str, str], blocked: bool) -> None:
        now = self._clock()
        entry = (blocked, now + self._ttl)
        remember_bounded(self._cache, key, entry, expired=lambda e: e[1] <= now, limit=MAX_CACHED)

    def invalidate(self, numbers: Iterable[str] = (), *, tenant_id: str | None = None) -> int:
        """Drop the answers of ``tenant_id`` (line numbers name no caller: they drop nothing)."""
        self._generation += 1
        self._inflight.clear()
        self._failing_until = 0.0
        if tenant_id is None:
            return 0
        dropped = [k for k in self._cache if k[0] == tenant_id]
        for k in dropped:
            del self._cache[k]
        return len(dropped)

    def invalidate_all(self) -> int:
        dropped = len(self._cache)
        self._cache.clear()
        self._generation += 1
        self._inflight.clear()
        self._failing_until = 0.0
        return dropped

    async def aclose(self) -> None:
        await cancel_all(self._inflight.values())
        await self._client.aclose()
