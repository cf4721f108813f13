"""Runtime configuration from config-api, least privilege per service, cached for a short time.

Each service asks with its token and parses the answer into its own view
(``voiceticket_common.runtime_views``).

The cache is built not to collapse under load (a flood of webhooks once kept ingress down for
minutes: the view expired, every waiting request fetched it itself, the fetches timed out on the
flooded loop and the cache never refilled):

* **one fetch per number in flight**: concurrent lookups of a number share it;
* **stale while revalidate**: past ``cache_seconds`` the cached view is still answered while one
  background refresh runs; its result (a new view, or a 404 that removes the line) is what
  the following lookups get. While config-api fails (unreachable, 5xx, timeout) the cached view
  is served for up to ``max_stale_seconds`` more, then lookups fail transient as before;
* **a failed fetch is not retried at once**: for ``RETRY_BACKOFF_SECONDS`` after it, lookups get
  the stale view or, with none, fail transient without asking (no retry storm);
* **unknown numbers are remembered** for ``unknown_line_seconds``, so a flood of calls to a
  number that is no line asks config-api once, not per call;
* **a short timeout** (``timeout_seconds`` for the whole lookup): a slow config-api costs one
  lookup a few seconds, never the caller's whole webhook budget;
* **dropped on change**: ``invalidate`` (numbers, or a tenant's lines) and ``invalidate_all``
  forget cached views, remembered unknown numbers and failures, and detach fetches in flight (what
  they bring back is not kept), so the next lookup asks config-api. The services call them when
  config-api announces a change (``config.changed``, ``voiceticket_common.config_changes``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic import SecretStr, ValidationError

from .bus.errors import DependencyUnavailable, PermanentError, TransientError
from .http import raise_for_provider_status
from .runtime_views import RuntimeView

log = logging.getLogger(__name__)

ViewT = TypeVar("ViewT", bound=RuntimeView)
ViewT_co = TypeVar("ViewT_co", bound=RuntimeView, covariant=True)
K = TypeVar("K")
V = TypeVar("V")

MAX_REMEMBERED_NUMBERS = 4096
"""Numbers remembered as unknown, or as failing, at most: anyone can send webhooks for any
``To``, so the memory they take is bounded (the oldest are forgotten first)."""
RETRY_BACKOFF_SECONDS = 1.0
"""After a failed fetch of a number, this long passes before the next: meanwhile its stale view
is served, or, with none to serve, lookups fail at once (no retry storm on a recovering
config-api)."""


class RuntimeConfig(Protocol[ViewT_co]):
    """Where a service looks up a line and its tenant (config-api, or a static fake)."""

    async def line(self, number: str) -> ViewT_co: ...

    async def aclose(self) -> None: ...


class UnknownLine(PermanentError):
    """The number belongs to no configured line."""


@dataclass(frozen=True)
class _Cached(Generic[ViewT]):
    view: ViewT
    fetched_at: float


class RuntimeConfigClient(Generic[ViewT]):
    """``GET /v1/runtime/lines/{number}`` parsed into the service's view ``view``, cached (see the
    module docstring for how)."""

    def __init__(
        self,
        view: type[ViewT],
        base_url: str,
        token: SecretStr,
        cache_seconds: float = 30.0,
        client: httpx.AsyncClient | None = None,
        *,
        max_stale_seconds: float = 300.0,
        unknown_line_seconds: float = 5.0,
        timeout_seconds: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._view = view
        self._base = base_url.rstrip("/")
        self._token = token
        self._ttl = cache_seconds
        self._max_stale = max_stale_seconds
        self._unknown_ttl = unknown_line_seconds
        self._timeout = timeout_seconds
        self._clock = clock
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(1.0, timeout_seconds))
        )
        self._cache: dict[str, _Cached[ViewT]] = {}
        self._unknown: dict[str, float] = {}  # number -> when it may be asked again
        self._failing: dict[str, float] = {}  # number -> when a failed fetch may be tried again
        self._inflight: dict[str, asyncio.Task[ViewT]] = {}
        self._generation = 0
        """Bumped by every invalidation: a fetch that started before one does not store its answer."""

    async def line(self, number: str) -> ViewT:
        now = self._clock()
        if self._unknown.get(number, now) > now:
            raise UnknownLine("the called number belongs to no configured line")
        failing_until = self._failing.get(number, now)
        cached = self._cache.get(number)
        if cached is not None:
            age = now - cached.fetched_at
            if age < self._ttl:
                return cached.view
            if age < self._ttl + self._max_stale:
                if failing_until <= now:
                    self._fetch(number)  # in the background; this lookup does not wait for it
                return cached.view
        if failing_until > now and number not in self._inflight:
            raise DependencyUnavailable(
                "config-api unavailable: the last lookup failed a moment ago", retry_after=failing_until - now
            )
        # Nothing to serve: wait for the one fetch in flight. Shielded, so a caller that gives
        # up (a cancelled request) does not cancel the fetch the others are waiting for.
        return await asyncio.shield(self._fetch(number))

    def _fetch(self, number: str) -> asyncio.Task[ViewT]:
        """The fetch of ``number`` in flight, started if there is none."""
        task = self._inflight.get(number)
        if task is None:
            task = asyncio.create_task(self._load(number), name="config-api line lookup")
            self._inflight[number] = task
            task.add_done_callback(lambda done: self._settled(number, done))
        return task

    def _settled(self, number: str, task: asyncio.Task[ViewT]) -> None:
        if self._inflight.get(number) is task:
            del self._inflight[number]
        if not task.cancelled() and isinstance(task.exception(), TransientError):
            # Retrieved here, so a background refresh nobody awaited does not warn at exit.
            log.warning("config-api lookup failed", extra={"error_type": type(task.exception()).__name__})

    def invalidate(self, numbers: Iterable[str] = (), *, tenant_id: str | None = None) -> int:
        """Forget what is known of ``numbers`` and of every cached line of ``tenant_id``: the next
        lookup of each asks config-api. Returns how many cached views were dropped."""
        numbers = set(numbers)
        if tenant_id is not None:
            numbers |= {n for n, cached in self._cache.items() if cached.view.tenant_id == tenant_id}
        dropped = 0
        for number in numbers:
            dropped += self._cache.pop(number, None) is not None
            self._unknown.pop(number, None)
            self._failing.pop(number, None)
        self._detach_fetches()
        return dropped

    def invalidate_all(self) -> int:
        """Forget every cached view and remembered answer (a change that could not be read)."""
        dropped = len(self._cache)
        self._cache.clear()
        self._unknown.clear()
        self._failing.clear()
        self._detach_fetches()
        return dropped

    def _detach_fetches(self) -> None:
        # Fetches in flight may have been answered before the change: their waiters get that
        # answer, but it is not stored, and the next lookup starts a fetch of its own.
        self._generation += 1
        self._inflight.clear()

    async def _load(self, number: str) -> ViewT:
        generation = self._generation
        try:
            view = await self._get(number)
        except UnknownLine:
            if generation != self._generation:
                raise  # answered before a change: not remembered
            # Gone (a tenant or line deleted) or never there: forget the view, remember the answer.
            self._cache.pop(number, None)
            self._failing.pop(number, None)
            if self._unknown_ttl > 0:
                now = self._clock()
                remember_bounded(self._unknown, number, now + self._unknown_ttl, expired=lambda t: t <= now)
            raise
        except TransientError:
            now = self._clock()
            remember_bounded(self._failing, number, now + RETRY_BACKOFF_SECONDS, expired=lambda t: t <= now)
            raise
        except PermanentError:
            self._cache.pop(number, None)  # config-api refused us or sent nonsense: serve nothing old
            self._failing.pop(number, None)
            raise
        if generation != self._generation:
            return view  # answered before a change: this caller gets it, nobody after
        self._cache[number] = _Cached(view, self._clock())
        self._unknown.pop(number, None)
        self._failing.pop(number, None)
        return view

    async def _get(self, number: str) -> ViewT:
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client.get(
                    f"{self._base}/v1/runtime/lines/{number}",
                    headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
                )
        except (httpx.HTTPError, TimeoutError) as exc:
            raise DependencyUnavailable(f"config-api unreachable: {type(exc).__name__}") from None
        if response.status_code == 404:
            raise UnknownLine("the called number belongs to no configured line")
        raise_for_provider_status(response, "config-api", "line lookup")
        return parse_view(self._view, response.json())

    async def aclose(self) -> None:
        await cancel_all(self._inflight.values())
        await self._client.aclose()


def remember_bounded(
    table: dict[K, V], key: K, value: V, *, expired: Callable[[V], bool], limit: int = MAX_REMEMBERED_NUMBERS
) -> None:
    """``table[key] = value``, the table kept within ``limit`` entries (``expired`` entries go
    first, then the oldest: the dict stays in insertion order, oldest first)."""
    if len(table) >= limit:
        for old in [k for k, v in table.items() if expired(v)]:
            del table[old]
        while len(table) >= limit:
            del table[next(iter(table))]
    table.pop(key, None)
    table[key] = value


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` (a cache's single-flight lookups, when it closes) and wait until they end."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def parse_view(view: type[ViewT], body: object) -> ViewT:
    """``body`` as ``view``; a body that does not fit is permanent (a retry gets the same one)."""
    try:
        return view.model_validate(body)
    except ValidationError as exc:
        # Locations and messages only: the input holds the tenant's credentials.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise PermanentError(f"config-api sent an invalid {view.role} view: {problems}") from None
