"""Request-type field lists, cached per (site, credentials, service desk, request type) for a while.

Admins change request types rarely; asking Jira once per call would double the writes' rate-limit
cost. A create refused with a cached list is retried once with a fresh one (see handlers).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .ports import JiraSite, RequestTypeFields, ServiceDesk

Key = tuple[str, str, str, str, str]


class RequestTypeFieldCache:
    def __init__(
        self, desk: ServiceDesk, ttl_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._desk = desk
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[Key, tuple[float, RequestTypeFields]] = {}

    @staticmethod
    def _key(site: JiraSite, service_desk_id: str, request_type_id: str) -> Key:
        # What a request type shows can depend on the caller's permissions (canRaiseOnBehalfOf).
        return (site.base_url.rstrip("/"), site.auth, site.email, service_desk_id, request_type_id)

    async def get(
        self, site: JiraSite, service_desk_id: str, request_type_id: str
    ) -> tuple[RequestTypeFields, bool]:
        """The field list and whether it came from the cache."""
        key = self._key(site, service_desk_id, request_type_id)
        cached = self._entries.get(key)
        if cached and cached[0] > self._clock():
            return cached[1], True
        return await self.refresh(site, service_desk_id, request_type_id), False

    async def refresh(self, site: JiraSite, service_desk_id: str, request_type_id: str) -> RequestTypeFields:
        fields = await self._desk.request_type_fields(site, service_desk_id, request_type_id)
        key = self._key(site, service_desk_id, request_type_id)
        self._entries[key] = (self._clock() + self._ttl, fields)
        return fields
