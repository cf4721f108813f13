"""Claim-once ledgers: a row inserted before a side effect that must happen once per call (a Jira
request, an SMS), so that a redelivered event finds it and does not do it again.

Inserting the row is the claim: ``INSERT … ON CONFLICT DO NOTHING`` lets exactly one attempt's
insert land, atomically, on Postgres (production) and on SQLite (embedded and local runs) alike;
both dialects spell it the same, but SQLAlchemy builds it from the dialect's own ``insert``.

A claim alone is not a lease: a claimed row says nothing about whether its claimer is still
working. ``LeasedCallClaim`` rows add one (ADR 3): the claimer holds the row until ``lease_until``;
another attempt meanwhile gets ``LeaseBusy`` (a ``TransientError``, ``Waiting``, whose ``retry_after`` is the
lease's remainder), and after expiry takes the row over with the next ``fencing_token``. Every write
of a holder is conditional on its token (``ClaimOnceLedger.fenced_update``): a stale holder's write
is refused with ``LeaseLost`` and it stops. Leases compare the services' clocks (UTC), so replicas'
clocks must agree to well within a lease.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    DateTime,
    Integer,
    MetaData,
    String,
    Text,
    delete,
    func,
    inspect,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as SqlTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .bus.errors import TransientError, Waiting
from .events import Event
from .sealing import SEALED, CallErased, CallKeys, Sealer, UnreadableSeal

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger(__name__)

Insert = postgresql.Insert | sqlite.Insert


class CallClaim:
    """Columns of a row claimed once per call: its key (tenant, CallSid) and when it last changed.

    A mixin for a service's mapped ledger class: ``class RequestRow(CallClaim, Base)``.
    """

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LeasedCallClaim(CallClaim):
    """A ``CallClaim`` held under a lease: who holds it, until when, and its fencing token.

    ``fencing_token`` grows by one with every acquisition, so a holder's token names its tenure;
    ``lease_owner`` and ``lease_until`` are None while nobody holds the row.
    """

    fencing_token: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LeaseBusy(Waiting):
    """Another attempt holds the row's lease: retry after ``retry_after`` seconds (its remainder).
    Waiting for it is bounded by the time budget, not the attempts (``Waiting``)."""


class LeaseLost(TransientError):
    """This attempt's lease was taken over: its write was refused and it must stop (a retry
    starts over and finds the new holder's lease or its result)."""


@dataclass(frozen=True)
class Lease:
    """One tenure of a leased row: ``token`` fences its writes; ``fresh`` when it made the claim."""

    token: int
    owner: str
    until: datetime
    fresh: bool


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every ledger time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class LedgerDatabaseError(TransientError):
    """The ledger's database failed mid-step (down, locked, timed out). Its transaction is rolled
    back, so nothing was claimed or changed: the step is retried like a provider's outage."""


def _is_outage(exc: BaseException) -> bool:
    """A database failure that a retry can outlast, as opposed to a bug (a constraint, bad SQL)."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, SqlTimeoutError | OSError)


class LedgerSessions:
    """Sessions on a ledger's engine (``async_sessionmaker``'s two forms) whose database outages
    come out as ``LedgerDatabaseError``: retried by the bus, never a dead letter for a call whose
    Jira request already exists. The message names the error's type only: a statement's
    parameters may be personal data."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._maker = async_sessionmaker(engine, expire_on_commit=False)

    def __call__(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        return self._session(begin=False)

    def begin(self) -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        """A session in a transaction, committed at the end of the block (rolled back on error)."""
        return self._session(begin=True)

    @contextlib.asynccontextmanager
    async def _session(self, *, begin: bool) -> AsyncIterator[AsyncSession]:
        try:
            if begin:
                async with self._maker.begin() as session:
                    yield session
            else:
                async with self._maker() as session:
                    yield session
        except (SQLAlchemyError, OSError) as exc:
            if not _is_outage(exc):
                raise
            kind = type(getattr(exc, "orig", None) or exc).__name__
            raise LedgerDatabaseError(f"ledger database unavailable ({kind})") from None


class ClaimOnceLedger:
    """Sessions, schema and claims for a service's ledger tables (``metadata``); ``service``:
    whose migrations (``voiceticket_common.migrations``) make those tables."""

    def __init__(self, engine: AsyncEngine, metadata: MetaData, service: str | None = None) -> None:
        self._engine = engine
        self._metadata = metadata
        self._service = service
        self.sessions = LedgerSessions(engine)

    async def create_schema(self) -> None:
        """Upgrade the service's tables to its newest migration (Alembic; a database made by
        ``create_all`` before migrations is adopted). Tables of no service (a test's own) are
        created from ``metadata`` if missing."""
        if self._service is not None:
            from .migrations import upgrade

            await upgrade(self._engine, self._service)
            return
        async with self._engine.begin() as conn:
            await conn.run_sync(self._metadata.create_all)

    def insert(self, table: type[Any]) -> Insert:
        """An INSERT into ``table`` (a mapped class) with the engine's ON CONFLICT clauses."""
        if self._engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    async def claim(self, session: AsyncSession, table: type[Any], **row: object) -> bool:
        """Insert ``row`` unless its key is already there: True when this attempt made the claim."""
        # On the session's connection: in its transaction, and the cursor's rowcount is the answer.
        connection = await session.connection()
        result = await connection.execute(self.insert(table).values(**row).on_conflict_do_nothing())
        return result.rowcount == 1

    async def acquire(
        self,
        session: AsyncSession,
        table: type[Any],
        key: Mapping[str, object],
        *,
        now: datetime,
        duration: timedelta,
        **initial: object,
    ) -> Lease:
        """Claim ``key``'s row (a ``LeasedCallClaim``) with ``initial`` values, or take over its
        expired or released lease; ``LeaseBusy`` while another attempt's lease is live.

        Both are single conditional statements, atomic on Postgres (the row lock re-checks the
        condition) and SQLite (one writer at a time): of two racing attempts exactly one wins.
        """
        owner, until = str(uuid.uuid4()), now + duration
        lease = {"fencing_token": 1, "lease_owner": owner, "lease_until": until, "updated_at": now}
        if await self.claim(session, table, **key, **initial, **lease):
            return Lease(1, owner, until, fresh=True)
        connection = await session.connection()
        taken = await connection.execute(
            update(table)
            .where(*_matches(table, key), (table.lease_until.is_(None)) | (table.lease_until <= now))
            .values(
                fencing_token=table.fencing_token + 1, lease_owner=owner, lease_until=until, updated_at=now
            )
        )
        row = (
            await connection.execute(
                select(table.fencing_token, table.lease_until).where(*_matches(table, key))
            )
        ).one()
        if taken.rowcount == 1:
            return Lease(int(row.fencing_token), owner, until, fresh=False)
        remaining = (as_utc(row.lease_until) - now).total_seconds()
        raise LeaseBusy(
            f"another attempt holds this call's lease for {remaining:.1f}s more",
            retry_after=max(remaining, 0.0) + 0.1,
        )

    async def fenced_update(
        self,
        session: AsyncSession,
        table: type[Any],
        key: Mapping[str, object],
        token: int,
        **values: object,
    ) -> None:
        """Update ``key``'s row only while ``token`` is still its fencing token; ``LeaseLost`` if not."""
        connection = await session.connection()
        result = await connection.execute(
            update(table).where(*_matches(table, key), table.fencing_token == token).values(**values)
        )
        if result.rowcount != 1:
            raise LeaseLost("the lease on this call was taken over by another attempt; stopping")


def _matches(table: type[Any], key: Mapping[str, object]) -> list[Any]:
    return [getattr(table, column) == value for column, value in key.items()]


class SqlLedger:
    """Base of a service's ledger: the service's tables (``metadata``) on one engine, migrated by
    ``service``'s migrations (None: created from ``metadata``, for a test's own tables)."""

    metadata: ClassVar[MetaData]
    service: ClassVar[str | None] = None

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        self._ledger = ClaimOnceLedger(engine, self.metadata, self.service)
        self._clock = clock

    def now(self) -> datetime:
        """The ledger's clock (UTC; injectable, so tests move time instead of sleeping)."""
        return self._clock()

    async def create_schema(self) -> None:
        await self._ledger.create_schema()

    @classmethod
    async def with_schema(cls, engine: AsyncEngine, **options: Any) -> Self:
        """The ledger on ``engine`` (``options`` go to the constructor), its tables migrated to head."""
        ledger = cls(engine, **options)
        await ledger.create_schema()
        return ledger


class Held(Protocol):
    """A leased row as the attempt holding it knows it: its key and its tenure's fencing token."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def call_sid(self) -> str: ...

    @property
    def token(self) -> int: ...


class LeasedLedger(SqlLedger):
    """Base of a ledger of ``LeasedCallClaim`` rows (``table``), held for ``lease`` at a time."""

    table: ClassVar[type[LeasedCallClaim]]

    def __init__(
        self,
        engine: AsyncEngine,
        lease: timedelta = timedelta(seconds=60),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(engine, clock)
        self.lease = lease

    async def _update(self, held: Held, **changes: object) -> None:
        """Write ``changes`` to ``held``'s row, fenced by its token (``LeaseLost`` if taken over)."""
        key = {"tenant_id": held.tenant_id, "call_sid": held.call_sid}
        async with self._ledger.sessions.begin() as session:
            await self._ledger.fenced_update(
                session, self.table, key, held.token, **changes, updated_at=self.now()
            )

    async def _release(self, held: Held, **changes: object) -> None:
        """Give ``held``'s lease back (with ``changes``); a lease already taken over is left be."""
        try:
            await self._update(held, lease_owner=None, lease_until=None, **changes)
        except LeaseLost:
            pass  # someone else holds the row now: nothing of ours to give back

    async def _purge_unheld(
        self, older_than: timedelta, now: datetime | None, *where: Any, dry_run: bool
    ) -> int:
        """Delete the rows last touched more than ``older_than`` before ``now`` (default: the
        ledger's clock) that nobody holds and that match ``where``; returns how many (would) go."""
        now = now or self.now()
        table = self.table
        return await purge_rows(
            self._ledger,
            table,
            table.updated_at < now - older_than,
            lease_free(table, now),
            *where,
            dry_run=dry_run,
        )


async def purge_rows(ledger: ClaimOnceLedger, table: type[Any], *where: Any, dry_run: bool = False) -> int:
    """Delete ``table``'s rows matching ``where`` (retention); with ``dry_run`` only count them.

    Returns how many rows were (or would be) deleted. One statement, so it is safe while the
    service runs: a row being worked on is excluded by the caller's conditions (its lease)."""
    async with ledger.sessions.begin() as session:
        if dry_run:
            return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)
        result = await session.execute(delete(table).where(*where))
        return int(getattr(result, "rowcount", 0) or 0)


def lease_free(table: type[Any], now: datetime) -> Any:
    """Nobody holds ``table``'s row (a ``LeasedCallClaim``): never held, released or expired."""
    return (table.lease_until.is_(None)) | (table.lease_until <= now)


# --- outcome ledgers (ADR 8) ---------------------------------------------------------------------


class LedgerUnavailable(Exception):
    """An outcome ledger could not be read or written (its database is down); the handler goes on
    without it: the work is done (again) rather than the call delayed or lost."""


class OutcomeRow(CallClaim):
    """Columns of a kept outcome: the event as produced and when it stops being served.

    A mixin for a service's mapped outcome class, which adds the rest of its key:
    ``class AnalysisRow(OutcomeRow, Base)``.
    """

    outcome: Mapped[str] = mapped_column(Text)
    """The produced event (JSON), its personal fields sealed under the call's data key when the
    ledger has the keys (``OutcomeLedger(keys=...)``): erasing the call makes the row unreadable."""
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    metadata: ClassVar[MetaData]
    """The service's own (the declarative base's, ``outcome_table``)."""


def outcome_table(tablename: str, key_column: str, length: int) -> type[OutcomeRow]:
    """A service's outcome table, on metadata of its own: the ``OutcomeRow`` columns and the rest
    of its key, ``key_column`` (a string of ``length``)."""

    class Base(DeclarativeBase):
        pass

    name = "".join(part.title() for part in tablename.split("_")) + "Row"
    columns = {"__tablename__": tablename, key_column: mapped_column(String(length), primary_key=True)}
    return type(name, (OutcomeRow, Base), columns)


K = TypeVar("K", bound="DataclassInstance")
K_contra = TypeVar("K_contra", contravariant=True)
E = TypeVar("E", bound=BaseModel)

PURGE_BATCH = 100
"""Expired outcome rows deleted per kept outcome: more than one, so deletion keeps up with new rows."""


class OutcomeSettings(Protocol):
    """A service's outcome retentions (seconds): ``retention`` and ``degraded_retention``."""

    @property
    def outcome_retention_seconds(self) -> float: ...

    @property
    def degraded_outcome_seconds(self) -> float: ...


class HasOutcomes(Protocol):
    """A service's deps holding its outcome ledger (None when it keeps none)."""

    @property
    def outcomes(self) -> object: ...


async def purge_outcomes(settings: object, deps: HasOutcomes, now: datetime, dry_run: bool) -> dict[str, int]:
    """A ``ConsumerService.purge`` for a service whose own data is its outcome ledger: rows past
    their expiry go (they hold personal data)."""
    del settings
    outcomes = deps.outcomes
    if not isinstance(outcomes, OutcomeLedger):
        raise TypeError("the purge needs the SQL outcome ledger")
    return {"outcomes": await outcomes.purge(now, dry_run=dry_run)}


class OutcomeStore(Protocol[K_contra, E]):
    """The event each input produced, kept for a while so a duplicate re-emits it (ADR 8)."""

    async def find(self, key: K_contra) -> E | None:
        """The stored outcome for ``key``, unless none is stored or it has expired."""

    async def keep(self, key: K_contra, outcome: E, *, final: bool) -> E:
        """Store ``outcome`` (for the retention if ``final``, else for the short degraded time)
        unless a live one is already stored, and return the stored one: first writer wins."""


class OutcomeLedger(SqlLedger, Generic[K, E]):
    """Produced events kept per input (``row``, keyed by the dataclass ``K``'s fields), so that a
    duplicate input re-emits its event (``E``) instead of paying for the work again (ADR 8).

    One row per key, written once the outcome exists: there is no in-flight claim, so a failed or
    crashed attempt leaves nothing that could block its retry. Rows hold personal data and expire:
    after ``retention``, or after ``degraded_retention`` for an outcome kept with ``final=False``
    (made while a dependency was down), so a duplicate after the recovery does the work again.
    Expired rows are never served and are deleted in bounded batches (``PURGE_BATCH``) whenever an
    outcome is kept, all at once when the schema is created, and by the scheduled ``purge``.

    With ``keys`` (the service's access to the call data keys), the personal fields of each kept
    event are sealed as on the bus (``voiceticket_common.sealing``): a row of an erased call no
    longer opens and counts as not kept.
    """

    row: type[OutcomeRow]
    """The service's table (``outcome_table``); its metadata is the ledger's."""
    event: type[E]
    unreadable = "stored outcome unreadable; producing it again"
    """Logged when a stored outcome no longer parses (written by an incompatible version)."""

    def __init__(
        self,
        engine: AsyncEngine,
        retention: timedelta = timedelta(hours=24),
        degraded_retention: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utcnow,
        keys: CallKeys | None = None,
    ) -> None:
        super().__init__(engine, clock)
        self.retention = retention
        self.degraded_retention = min(degraded_retention, retention)
        self._sealer = Sealer(keys) if keys is not None else None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "row" in cls.__dict__:
            cls.metadata = cls.row.metadata

    @classmethod
    async def opened(
        cls, engine: AsyncEngine, settings: OutcomeSettings, keys: CallKeys | None = None
    ) -> Self:
        """The ledger on ``engine`` with the service's retentions, its tables migrated to head;
        ``keys``: seal what it keeps under the call data keys."""
        return await cls.with_schema(
            engine,
            retention=timedelta(seconds=settings.outcome_retention_seconds),
            degraded_retention=timedelta(seconds=settings.degraded_outcome_seconds),
            keys=keys,
        )

    async def create_schema(self) -> None:
        await super().create_schema()
        async with self._ledger.sessions.begin() as session:
            await session.execute(delete(self.row).where(self.row.expires_at <= self.now()))

    async def find(self, key: K) -> E | None:
        row = self.row
        try:
            async with self._ledger.sessions.begin() as session:
                stored = (
                    await session.execute(
                        select(row.outcome).where(*_matches(row, asdict(key)), row.expires_at > self.now())
                    )
                ).scalar_one_or_none()
        except (SQLAlchemyError, OSError, LedgerDatabaseError) as exc:
            raise LedgerUnavailable(type(exc).__name__) from exc
        return await self._parsed(stored)

    async def keep(self, key: K, outcome: E, *, final: bool) -> E:
        row, now, columns = self.row, self.now(), asdict(key)
        written = {
            "outcome": await self._stored(outcome),
            "expires_at": now + (self.retention if final else self.degraded_retention),
            "updated_at": now,
        }
        insert = self._ledger.insert(row).values(**columns, **written)
        # Insert, or replace a row that has expired (never a live one: the first writer wins).
        upsert = insert.on_conflict_do_update(
            index_elements=list(columns),
            set_={name: insert.excluded[name] for name in written},
            where=row.expires_at <= now,
        )
        try:
            async with self._ledger.sessions.begin() as session:
                await self._purge_batch(session, now)
                await session.execute(upsert)
                stored = (
                    await session.execute(select(row.outcome).where(*_matches(row, columns)))
                ).scalar_one()
        except (SQLAlchemyError, OSError, LedgerDatabaseError) as exc:
            raise LedgerUnavailable(type(exc).__name__) from exc
        return await self._parsed(stored) or outcome

    async def purge(self, now: datetime | None = None, *, dry_run: bool = False) -> int:
        """Delete every expired row (the scheduled purge; ``keep`` only deletes a bounded batch);
        returns how many (would) go."""
        return await purge_rows(
            self._ledger, self.row, self.row.expires_at <= (now or self.now()), dry_run=dry_run
        )

    async def _purge_batch(self, session: AsyncSession, now: datetime) -> None:
        """Delete up to ``PURGE_BATCH`` expired rows (bounded: a backlog drains over a few calls)."""
        pk = tuple(inspect(self.row).primary_key)
        expired = select(*pk).where(self.row.expires_at <= now).limit(PURGE_BATCH)
        await session.execute(delete(self.row).where(tuple_(*pk).in_(expired)))

    @property
    def _purpose(self) -> str:
        return f"ledger:{getattr(self.row, '__tablename__', self.row.__name__)}"

    async def _stored(self, outcome: E) -> str:
        if self._sealer is None or not isinstance(outcome, Event):
            return outcome.model_dump_json()
        try:
            return (await self._sealer.seal(outcome, purpose=self._purpose)).decode()
        except (CallErased, TransientError) as exc:
            raise LedgerUnavailable(type(exc).__name__) from exc

    async def _parsed(self, stored: str | None) -> E | None:
        if stored is None:
            return None
        try:
            data = json.loads(stored)
            if isinstance(data, dict) and SEALED in data:
                if self._sealer is None:
                    raise UnreadableSeal("sealed, and this ledger has no keys")
                data = await self._sealer.open(data, purpose=self._purpose)
            return self.event.model_validate(data)
        except CallErased:  # the call was erased: nothing is kept for it any more
            return None
        except TransientError as exc:  # the keys are out of reach: as if the ledger were down
            raise LedgerUnavailable(type(exc).__name__) from exc
        except (ValidationError, ValueError):  # an incompatible version's, or unreadable: redo it
            log.warning(self.unreadable)
            return None


async def stored_outcome(
    outcomes: OutcomeStore[K_contra, E] | None, key: K_contra, name: str, doing: str
) -> E | None:
    """``key``'s kept outcome from ``outcomes`` (the ``name`` ledger), or None: none is kept, or
    there is no ledger, or it is unavailable (then the work is done again, ``doing``)."""
    if outcomes is None:
        return None
    try:
        stored = await outcomes.find(key)
    except LedgerUnavailable as exc:
        log.warning(f"{name} ledger unavailable; {doing}", extra={"error": str(exc)})
        return None
    if stored is not None:
        log.info(f"input already seen; the stored {name} is re-emitted")
    return stored


async def kept_outcome(
    outcomes: OutcomeStore[K_contra, E] | None, key: K_contra, outcome: E, name: str, *, final: bool
) -> E:
    """``outcome`` as kept in ``outcomes`` (a concurrent attempt's, if it stored first); ``outcome``
    itself when there is no ledger or it is unavailable. ``final=False``: kept only briefly."""
    if outcomes is None:
        return outcome
    try:
        return await outcomes.keep(key, outcome, final=final)
    except LedgerUnavailable as exc:
        log.warning(f"{name} ledger unavailable; outcome not kept", extra={"error": str(exc)})
        return outcome
