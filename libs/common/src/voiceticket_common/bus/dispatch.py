"""Typed dispatch: each event class goes to the handler written for exactly that class."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..events import Event
from .errors import PermanentError

E = TypeVar("E", bound=Event)
D = TypeVar("D")


@dataclass(frozen=True)
class Route(Generic[E, D]):
    """``handler(event: E, deps: D)`` handles the events of class ``event_type``."""

    event_type: type[E]
    handler: Callable[[E, D], Awaitable[Sequence[Event]]]
    produces: Sequence[type[Event]] = ()
    """The event classes the handler may return (their topics are provisioned up front)."""

    async def __call__(self, event: Event, deps: D) -> Sequence[Event]:
        if not isinstance(event, self.event_type):
            raise PermanentError(
                f"{type(event).__name__} routed to the handler of {self.event_type.__name__}"
            )
        return await self.handler(event, deps)


def on(
    event_type: type[E],
    handler: Callable[[E, D], Awaitable[Sequence[Event]]],
    *,
    produces: Sequence[type[Event]] = (),
) -> Route[E, D]:
    """``on(CallAnalyzed, write_request, produces=[TicketCreated])``: the type checker holds the
    class and the handler together."""

    return Route(event_type, handler, tuple(produces))


class Dispatcher(Generic[D]):
    """The bus's handler for a consumer: finds the route of the event's class, passes the deps."""

    def __init__(self, routes: Sequence[Route[Any, D]], deps: D) -> None:
        self._routes = {route.event_type: route for route in routes}
        if len(self._routes) != len(routes):
            raise ValueError("two routes for one event class")
        self._deps = deps

    @property
    def event_types(self) -> list[type[Event]]:
        return list(self._routes)

    async def __call__(self, event: Event) -> Sequence[Event]:
        route = self._routes.get(type(event))
        if route is None:
            raise PermanentError(f"no handler for {type(event).__name__}")
        return await route(event, self._deps)
