"""The audit log: who changed what, when, and with which outcome (issue #10, point 5).

Every admin change (and every privacy operation) is one row of ``audit_events``, written in the
same transaction as the change itself (``Audit.commit``), so a change is never without its entry.
A request that does not get that far (401, 403, 404, 409, 422, 400, 500) is recorded by
``add_audit_middleware`` instead, in its own transaction; on read-only routes only the refusals of
the token (401, 403) are recorded. Each route names its action in ``openapi_extra``
(``audited("tenant.create")``, shown in the OpenAPI document as ``x-audit-action``).

What an entry holds, and what it never holds:

* ``actor``: the acting token's name (``auth.Identity.actor``: ``admin`` for
  CONFIG_API_ADMIN_TOKEN, the name of a named or API-created token, including a read-only one
  that was refused), ``anonymous`` without a known token; never the token.
* ``target``: ``tenant:<id>``, ``line:<ref>``, ``token:<name>`` (an admin token) or
  ``master-key``. A line's number is the tenant's
  personal data, so only its reference (``voiceticket_common.privacy.phone_ref``, as in the logs)
  is stored; ``GET /v1/audit?target=+14155550100`` maps a number to its reference.
* ``details``: field and credential *names*, flags and counts; never a value of a credential, not
  even masked, nor any other field's value.

Append-only: the application never updates or deletes an entry, except ``purge_audit`` (the
retention, ``CONFIG_API_AUDIT_RETENTION_DAYS``). The database refuses UPDATE on the table (a
trigger, SQLite and Postgres); refusing DELETE to everything but the purge is the operator's
(a role with INSERT and SELECT only for config-api, and the purge run under another one), see
docs/operations.md.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from opentelemetry import trace
from sqlalchemy import DDL, JSON, BigInteger, DateTime, Integer, String, delete, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.middleware.base import RequestResponseEndpoint

from voiceticket_common.privacy import phone_ref

from .auth import ANONYMOUS, app_tokens, request_identity
from .db import Base, utcnow
from .schemas import E164_RE, TENANT_ID_PATTERN

log = logging.getLogger("voiceticket_config_api.audit")

DEFAULT_RETENTION_DAYS = 400
ACTION_KEY = "x-audit-action"
READ_ACTIONS = (
    "tenant.list",
    "tenant.get",
    "line.list",
    "line.get",
    "audit.list",
    "token.list",
    "block_list.list",
)
"""Read-only actions: recorded only when the token is refused (401, 403)."""
MASTER_KEY_TARGET = "master-key"
_TENANT_ID_RE = re.compile(TENANT_ID_PATTERN)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(200), index=True)
    # No foreign key: an entry outlives its tenant.
    tenant_id: Mapped[str | None] = mapped_column(String(63), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # success | refused | error
    status_code: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(128))
    trace_id: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# Append-only in the database as well: UPDATE is refused (DELETE stays possible for the purge).
_table = AuditEvent.__table__
_APPEND_ONLY_DDL = (  # (dialect, statement), run in this order after the table is created
    (
        "sqlite",
        "CREATE TRIGGER IF NOT EXISTS audit_events_append_only BEFORE UPDATE ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    ),
    (
        "postgresql",
        "CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$",
    ),
    (
        "postgresql",
        "CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
    ),
)
for _dialect, _statement in _APPEND_ONLY_DDL:
    event.listen(
        _table,
        "after_create",
        DDL(_statement).execute_if(dialect=_dialect),  # type: ignore[no-untyped-call]
    )


def audited(action: str) -> dict[str, Any]:
    """``openapi_extra=`` of a route whose requests are audited as ``action``."""
    return {ACTION_KEY: action}


def tenant_target(tenant_id: str) -> str:
    return f"tenant:{tenant_id}" if _TENANT_ID_RE.match(tenant_id) else "tenant:<invalid>"


def line_target(number: str) -> str:
    return f"line:{phone_ref(number)}"


def target_filter(value: str) -> str:
    """A ``target`` filter as stored: an E.164 number becomes its line's reference."""
    return line_target(value) if E164_RE.match(value) else value


def outcome_of(status_code: int) -> str:
    if status_code < 400:
        return "success"
    return "refused" if status_code < 500 else "error"


@dataclass
class _Pending:
    """What a handler learnt about its target before it failed (for the middleware's entry)."""

    target: str | None = None
    tenant_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    recorded: bool = False


def _pending(request: Request) -> _Pending:
    pending: _Pending | None = getattr(request.state, "audit", None)
    if pending is None:
        pending = _Pending()
        request.state.audit = pending
    return pending


_LOC_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def note_invalid(request: Request, locs: list[list[Any]]) -> None:
    """Record which fields a 422 refused (``details.invalid``): names and indexes only, any other
    part of a location (a dict key, which is input) is ``*``."""
    parts = [
        ".".join(str(p) if isinstance(p, int) or _LOC_PART.match(str(p)) else "*" for p in loc)
        for loc in locs[:20]
    ]
    _pending(request).details["invalid"] = sorted(set(parts))


def _route_action(request: Request) -> str | None:
    extra = getattr(request.scope.get("route"), "openapi_extra", None) or {}
    action = extra.get(ACTION_KEY)
    return action if isinstance(action, str) else None


def _actor(request: Request) -> str:
    identity = request_identity(request)
    if identity is None:  # auth did not run (e.g. a 400 before it) or refused the token
        identity = app_tokens(request).identify_header(request.headers.get("authorization"))
    return ANONYMOUS if identity is None else identity.actor


def _trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def _request_id(request: Request) -> str | None:
    value = request.headers.get("x-request-id", "")
    return value if _REQUEST_ID_RE.match(value) else None


def _path_target(request: Request) -> tuple[str | None, str | None]:
    params = request.scope.get("path_params") or {}
    if "number" in params:
        return line_target(str(params["number"])), None
    if "tenant_id" in params:
        tenant_id = str(params["tenant_id"])
        valid = bool(_TENANT_ID_RE.match(tenant_id))
        return tenant_target(tenant_id), tenant_id if valid else None
    return None, None


def _event(request: Request, action: str, status_code: int, pending: _Pending) -> AuditEvent:
    target, tenant_id = pending.target, pending.tenant_id
    if target is None:
        target, path_tenant = _path_target(request)
        tenant_id = tenant_id or path_tenant
    return AuditEvent(
        at=utcnow(),
        actor=_actor(request),
        action=action,
        target=target,
        tenant_id=tenant_id,
        outcome=outcome_of(status_code),
        status_code=status_code,
        request_id=_request_id(request),
        trace_id=_trace_id(),
        details=dict(pending.details),
    )


def log_event(entry: AuditEvent) -> None:
    """One JSON log line per entry (the ``audit`` field), with the actor; nothing secret."""
    fields = {
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target": entry.target,
        "tenant_id": entry.tenant_id,
        "outcome": entry.outcome,
        "status_code": entry.status_code,
        "request_id": entry.request_id,
        "details": entry.details,
    }
    log.info(
        "audit: %s %s by %s: %s %d",
        entry.action,
        entry.target or "-",
        entry.actor,
        entry.outcome,
        entry.status_code,
        extra={"audit": fields},
    )


class Audit:
    """The audit entry of one admin change, committed with the change (``commit``)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._pending = _pending(request)

    def about(self, target: str | None = None, tenant_id: str | None = None, **details: Any) -> None:
        """What the change is about, known so far (also used if the request fails later)."""
        if target is not None:
            self._pending.target = target
        if tenant_id is not None:
            self._pending.tenant_id = tenant_id
        self._pending.details.update(details)

    async def commit(
        self, session: AsyncSession, status_code: int, action: str | None = None, **details: Any
    ) -> None:
        """Add the success entry and commit it together with the session's changes."""
        self._pending.details.update(details)
        chosen = action or _route_action(self._request)
        if chosen is None:
            raise RuntimeError("Audit.commit on a route without audited(action)")
        entry = _event(self._request, chosen, status_code, self._pending)
        session.add(entry)
        await session.commit()
        self._pending.recorded = True
        log_event(entry)


def get_audit(request: Request) -> Audit:
    return Audit(request)


AuditDep = Annotated[Audit, Depends(get_audit)]


async def _write(request: Request, action: str, status_code: int) -> None:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    entry = _event(request, action, status_code, _pending(request))
    try:
        async with sessions() as session:
            session.add(entry)
            await session.commit()
    except Exception as exc:  # noqa: BLE001 - the answer stands; the failure is logged
        log.error("audit entry %s (%d) could not be written: %s", action, status_code, type(exc).__name__)
        return
    log_event(entry)


def add_audit_middleware(app: FastAPI) -> None:
    """Record the requests of audited routes that no handler recorded: refusals and errors (and,
    should a handler forget ``Audit.commit``, its change). Read-only routes: 401 and 403 only."""

    @app.middleware("http")
    async def _audit(request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            response = await call_next(request)
        except Exception:
            action = _route_action(request)
            if action is not None and not _pending(request).recorded:
                await _write(request, action, 500)
            raise
        action = _route_action(request)
        if action is None or _pending(request).recorded:
            return response
        status = response.status_code
        if request.method in ("GET", "HEAD") and status not in (401, 403):
            return response
        await _write(request, action, status)
        return response


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def purge_audit(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
) -> int:
    """Delete the audit entries older than ``retention_days`` before ``now``; returns how many.

    Called at start with ``Settings.audit_retention_days``; a scheduled purge calls it the same
    way (``purge_audit(sessions, datetime.now(UTC), retention_days=settings.audit_retention_days)``).
    A naive ``now`` is taken as UTC.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = _as_utc(now) - timedelta(days=retention_days)
    async with sessions() as session:
        result = await session.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
        await session.commit()
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        log.info("audit retention: purged %d entries older than %d days", count, retention_days)
    return count
