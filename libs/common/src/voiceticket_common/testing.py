"""Fakes of the shared ports, for unit tests and the sandboxed demo: they record what they got."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, NoReturn, TypeVar

from sqlalchemy import func, select

from .config_client import UnknownLine, ViewT, parse_view
from .db import open_engine
from .events import CallTranscribed, Event, RecordingCompleted, TicketCreated
from .ledger import LedgerSessions, LedgerUnavailable

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


class VirtualClock:
    """A monotonic clock that only its ``sleep`` advances: minutes of retries without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.delays: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds


async def cancelled(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has stopped; its cancellation is not an error."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


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


class FakeClock:
    """A ledger's clock, moved by the test instead of sleeping."""

    def __init__(self, start: datetime = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class DownLedger:
    """An outcome ledger whose database is unreachable: every lookup and every write fails."""

    async def find(self, key: object) -> NoReturn:
        raise LedgerUnavailable("OperationalError")

    async def keep(self, key: object, outcome: object, *, final: bool) -> NoReturn:
        raise LedgerUnavailable("OperationalError")


@asynccontextmanager
async def outcome_ledger(
    ledger_type: Callable[..., Any], database_url: str, clock: Callable[[], datetime]
) -> AsyncIterator[Any]:
    """A service's outcome ledger keeping outcomes 24 h (degraded ones 5 min), its schema created."""

    async with open_engine(database_url) as engine:
        ledger = ledger_type(engine, timedelta(hours=24), timedelta(minutes=5), clock=clock)
        await ledger.create_schema()
        yield ledger


async def count_rows(sessions: LedgerSessions, table: type[Any]) -> int:
    """How many rows ``table`` holds."""

    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def check_purge_deletes_expired_rows_only(
    database_url: str,
    ledger_type: Callable[..., Any],
    row_type: Callable[..., Any],
    key: Callable[[int], Mapping[str, str]],
) -> None:
    """150 expired outcome rows and a live one (``key(i)``: the row's own key columns): the purge
    deletes all the expired ones, not one bounded batch, and the live one once it expires."""

    now = datetime(2025, 1, 1, tzinfo=UTC)
    async with open_engine(database_url) as engine:
        ledger = ledger_type(engine, clock=lambda: now)
        await ledger.create_schema()
        async with ledger._ledger.sessions.begin() as session:
            for i, expires in enumerate([now - timedelta(hours=1)] * 150 + [now + timedelta(hours=1)]):
                session.add(
                    row_type(
                        tenant_id="acme",
                        call_sid=f"CA{i:032d}",
                        outcome="{}",
                        expires_at=expires,
                        updated_at=now,
                        **key(i),
                    )
                )
        assert await ledger.purge(dry_run=True) == 150
        assert await ledger.purge() == 150, "all of them, not one bounded batch"
        assert await ledger.purge(now + timedelta(hours=2)) == 1


async def check_ledger_in_database(
    adapters: Callable[[Any, Any], AbstractAsyncContextManager[Any]],
    settings: Any,
    config: Any,
    ledger_type: type[Any],
    retentions: tuple[timedelta, timedelta],
) -> None:
    """The service's adapters keep its outcome ledger, with these (final, degraded) retentions."""

    async with adapters(settings, config) as built:
        assert isinstance(built.outcomes, ledger_type)
        assert (built.outcomes.retention, built.outcomes.degraded_retention) == retentions
