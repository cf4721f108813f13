"""Adapters that own connections open and close with ``async with``."""

from __future__ import annotations

from typing import Self


class AsyncResource:
    """A client that holds connections: ``async with Adapter(...) as adapter`` closes it on exit."""

    async def aclose(self) -> None:
        """Release the connections; subclasses close what they opened."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
