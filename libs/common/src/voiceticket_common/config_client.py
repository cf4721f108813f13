"""Runtime configuration from config-api, least privilege per service, cached for a short time.

Each service asks with its token and parses the answer into its own view
(``voiceticket_common.runtime_views``).
"""

from __future__ import annotations

import time
from typing import Generic, Protocol, TypeVar

import httpx
from pydantic import SecretStr, ValidationError

from .bus.errors import PermanentError, TransientError
from .http import raise_for_provider_status
from .runtime_views import RuntimeView

ViewT = TypeVar("ViewT", bound=RuntimeView)
ViewT_co = TypeVar("ViewT_co", bound=RuntimeView, covariant=True)


class RuntimeConfig(Protocol[ViewT_co]):
    """Where a service looks up a line and its tenant (config-api, or a static fake)."""

    async def line(self, number: str) -> ViewT_co: ...

    async def aclose(self) -> None: ...


class UnknownLine(PermanentError):
    """The number belongs to no configured line."""


class RuntimeConfigClient(Generic[ViewT]):
    """``GET /v1/runtime/lines/{number}`` parsed into the service's view ``view``."""

    def __init__(
        self,
        view: type[ViewT],
        base_url: str,
        token: SecretStr,
        cache_seconds: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._view = view
        self._base = base_url.rstrip("/")
        self._token = token
        self._ttl = cache_seconds
        self._client = client or httpx.AsyncClient(timeout=10.0)
        self._cache: dict[str, tuple[float, ViewT]] = {}

    async def line(self, number: str) -> ViewT:
        cached = self._cache.get(number)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            response = await self._client.get(
                f"{self._base}/v1/runtime/lines/{number}",
                headers={"Authorization": f"Bearer {self._token.get_secret_value()}"},
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"config-api unreachable: {type(exc).__name__}") from None
        if response.status_code == 404:
            raise UnknownLine("the called number belongs to no configured line")
        raise_for_provider_status(response, "config-api", "line lookup")
        config = parse_view(self._view, response.json())
        self._cache[number] = (time.monotonic() + self._ttl, config)
        return config

    async def aclose(self) -> None:
        await self._client.aclose()


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
