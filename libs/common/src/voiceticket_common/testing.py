"""Fakes of the shared ports, for unit tests and the sandboxed demo: they record what they got."""

from __future__ import annotations

from typing import Any

from .config_client import LineConfig, UnknownLine
from .events import Event


class RecordingPublisher:
    """An EventPublisher that keeps what was published."""

    def __init__(self) -> None:
        self.published: list[Event] = []

    async def publish(self, event: Event, *, discriminator: str = "") -> None:
        self.published.append(event)


class StaticRuntimeConfig:
    """Runtime config from a dict of line number -> (tenant_id, line fields, tenant fields)."""

    def __init__(self, lines: dict[str, tuple[str, dict[str, Any], dict[str, Any]]]) -> None:
        self._lines = {
            number: LineConfig(tenant_id=tenant_id, line={"number": number, **line}, tenant=tenant)
            for number, (tenant_id, line, tenant) in lines.items()
        }
        self.lookups: list[str] = []

    async def line(self, number: str) -> LineConfig:
        self.lookups.append(number)
        try:
            return self._lines[number]
        except KeyError:
            raise UnknownLine("the called number belongs to no configured line") from None

    async def aclose(self) -> None:
        pass
