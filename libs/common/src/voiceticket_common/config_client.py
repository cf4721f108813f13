"""Runtime configuration from config-api, least privilege per service, cached for a short time."""

from __future__ import annotations

import time
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from .bus.errors import PermanentError, TransientError
from .http import raise_for_provider_status


class LineConfig(BaseModel):
    """What one service may know about a support line and its tenant."""

    model_config = ConfigDict(extra="allow", frozen=True)

    tenant_id: str
    line: dict[str, Any]
    tenant: dict[str, Any]

    def secret(self, name: str) -> SecretStr:
        value = self.tenant.get(name)
        if not value:
            raise PermanentError(f"tenant {self.tenant_id} has no {name} configured")
        return SecretStr(str(value))


class RuntimeConfig(Protocol):
    """Where a service looks up a line and its tenant (config-api, or a static fake)."""

    async def line(self, number: str) -> LineConfig: ...


class UnknownLine(PermanentError):
    """The number belongs to no configured line."""


class RuntimeConfigClient:
    def __init__(
        self,
        base_url: str,
        token: SecretStr,
        cache_seconds: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._ttl = cache_seconds
        self._client = client or httpx.AsyncClient(timeout=10.0)
        self._cache: dict[str, tuple[float, LineConfig]] = {}

    async def line(self, number: str) -> LineConfig:
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
        config = LineConfig.model_validate(response.json())
        self._cache[number] = (time.monotonic() + self._ttl, config)
        return config

    def invalidate(self) -> None:
        self._cache.clear()

    async def aclose(self) -> None:
        await self._client.aclose()
