"""Fakes of the shared ports, for unit tests and the sandboxed demo: they record what they got."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from .config_client import UnknownLine, ViewT, parse_view
from .events import CallTranscribed, Event, RecordingCompleted, TicketCreated

T = TypeVar("T")

LINE = "+15005550006"
"""The support line the unit tests call."""
CALLER = "+14155550100"
"""Who calls it."""
CALL_SID = "CA" + "1" * 32
RECORDING_SID = "RE" + "2" * 32


class RecordingPublisher:
    """An EventPublisher that keeps what was published."""

    def __init__(self) -> None:
        self.published: list[Event] = []

    async def publish(self, event: Event, *, discriminator: str = "") -> None:
        self.published.append(event)


class StaticRuntimeConfig(Generic[ViewT]):
    """Runtime config from a dict of line number -> the service's view of that line."""

    def __init__(self, views: Mapping[str, ViewT]) -> None:
        self._lines = dict(views)
        self.lookups: list[str] = []

    @classmethod
    def of(
        cls, view: type[ViewT], lines: Mapping[str, tuple[str, Mapping[str, object], Mapping[str, object]]]
    ) -> StaticRuntimeConfig[ViewT]:
        """From number -> (tenant_id, line fields, tenant fields), parsed as config-api's answer is."""
        return cls(
            {
                number: parse_view(
                    view, {"tenant_id": tenant_id, "line": {"number": number, **line}, "tenant": tenant}
                )
                for number, (tenant_id, line, tenant) in lines.items()
            }
        )

    async def line(self, number: str) -> ViewT:
        self.lookups.append(number)
        try:
            return self._lines[number]
        except KeyError:
            raise UnknownLine("the called number belongs to no configured line") from None

    async def aclose(self) -> None:
        pass


class RecordingSleep:
    """An ``asyncio.sleep`` stand-in that returns at once and keeps the delays asked for."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Outcomes(Generic[T]):
    """Outcomes to give in turn, the last one repeating; an exception among them is raised."""

    def __init__(self, *outcomes: T | Exception) -> None:
        self.outcomes: list[T | Exception] = list(outcomes)

    def next(self) -> T:
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def _call(defaults: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    base = {"tenant_id": "acme", "call_sid": CALL_SID, "line_number": LINE, "caller_number": CALLER}
    return {**base, **defaults, **fields}


def recording_completed(**fields: Any) -> RecordingCompleted:
    """A tenant "acme" call's finished recording; ``fields`` override the defaults."""
    recording = {
        "account_sid": "AC" + "a" * 32,
        "recording_sid": RECORDING_SID,
        "recording_url": "https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE",
        "duration_seconds": 9,
    }
    return RecordingCompleted(**_call(recording, fields))


def call_transcribed(**fields: Any) -> CallTranscribed:
    """A tenant "acme" call's transcript; ``fields`` override the defaults."""
    transcript = {
        "recording_sid": RECORDING_SID,
        "duration_seconds": 12,
        "transcript": "Hello, my VPN is down.",
        "model": "whisper-1",
    }
    return CallTranscribed(**_call(transcript, fields))


def ticket_created(**fields: Any) -> TicketCreated:
    """The ticket made for a tenant "acme" call; ``fields`` override the defaults."""
    ticket = {
        "issue_key": "HELP-1",
        "issue_id": "1",
        "service_desk_id": "4",
        "request_type_id": "41",
        "summary": "s",
    }
    return TicketCreated(**_call(ticket, fields))
