"""The calls read model: one row per call (``call_progress``) and its dead letters, built from the bus.

config-api follows every call event topic and every dead-letter topic in a consumer group of its
own (``calls_feed.py``) and folds each record into the call's row: when each stage happened
(received, transcribed, analysed, request, SMS), the request key, triage, priority, intent and
language, the call's duration, the last error and the dead letters with what a replay needs.
Never the caller's number, the transcript or another personal field: the projection reads only
the fields events carry in clear, and opens a ``call.analyzed`` record's sealed analysis in memory
just to keep its priority and intent (labels, not the caller's words).

Every fold is idempotent and order-free: a timestamp keeps the earliest value seen, a value is
set from the one event that carries it, a dead letter is keyed by its id. So a redelivered or a
late record changes nothing it should not. A caller's erasure and a tenant's removal delete the
rows (``forget_calls``, ``forget_tenant_calls``); a record of an erased call never makes a row
again (the vault's tombstone says so); ``purge_calls`` is the retention.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from voiceticket_common.bus.envelope import Headers, header_map, read_dead_letter
from voiceticket_common.bus.port import dead_letter_topic
from voiceticket_common.events import v1
from voiceticket_common.sealing import SEALED, Sealer, UnreadableSeal
from voiceticket_common.sealing import CallErased as SealedCallErased

from .db import Base, utcnow
from .vault import CallKeyRow

log = logging.getLogger("voiceticket_config_api.calls")

DEFAULT_RETENTION_DAYS = 14
"""How long a call's row is kept: as long as the bus keeps any record of the call (dead letters,
``VOICETICKET_DEAD_LETTER_RETENTION_HOURS``' default of 336 h)."""
CALL_SID_RE = re.compile(r"^CA[0-9a-fA-F]{32}$")
OPTED_OUT = "21610"
"""Twilio's error code for a recipient who replied STOP (the notifier reports it)."""
STAGE_GROUPS = {
    "voiceticket-transcriber": "transcribed",
    "voiceticket-analyzer": "analyzed",
    "voiceticket-jira-writer": "request",
    "voiceticket-notifier": "sms",
}
"""Which stage a consumer group's dead letter holds up."""
_TEXT = 300


class CallProgress(Base):
    """What an operator needs to know of one call; no caller number, no transcript."""

    __tablename__ = "call_progress"

    call_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(63), index=True)
    line: Mapped[str | None] = mapped_column(String(16))
    """The support number that was called (the tenant's line, not the caller)."""
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    """The earliest time any record of the call names: the list's order and the retention's clock."""
    received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    recording: Mapped[str | None] = mapped_column(String(16))
    """completed, absent or declined (consent)."""
    recording_detail: Mapped[str | None] = mapped_column(String(64))
    transcribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    transcription_model: Mapped[str | None] = mapped_column(String(100))
    transcript_missing: Mapped[bool | None] = mapped_column()
    analyzed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    degraded_reason: Mapped[str | None] = mapped_column(String(64))
    triage: Mapped[str | None] = mapped_column(String(16))
    """ok (the model's analysis) or needs-triage (a stand-in analysis, a missing transcript)."""
    priority: Mapped[str | None] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    request_created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    request_key: Mapped[str | None] = mapped_column(String(64))
    sms_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sms_state: Mapped[str | None] = mapped_column(String(16))
    """sent, opted-out or failed (skipped, a line with SMS off, is worked out when read)."""
    sms_detail: Mapped[str | None] = mapped_column(String(_TEXT))
    sms_delivery: Mapped[str | None] = mapped_column(String(32))
    sms_delivery_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    call_status: Mapped[str | None] = mapped_column(String(16))
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    call_duration: Mapped[bool | None] = mapped_column()
    """True once ``duration_seconds`` is Twilio's call duration (else the recording's)."""
    error: Mapped[str | None] = mapped_column(Text)
    error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    screened: Mapped[str | None] = mapped_column(String(24))
    """Why the call was screened (silence, tone, too_short, blocked_caller, robocall); None: it was not."""
    screened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When screening ended the call (``call.screened``: its line makes no request for it)."""
    ivr_choice: Mapped[str | None] = mapped_column(String(80))
    """The option the caller chose in the line's IVR menu, as "digit label"; None: none chosen."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CallDeadLetter(Base):
    """A record a consumer group gave up on, as the bus names it (no payload)."""

    __tablename__ = "call_dead_letters"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    """The bus's handle (embedded: the log position; Kafka: ``group:partition:offset``)."""
    call_sid: Mapped[str] = mapped_column(String(34), index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(63), index=True)
    group: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(200))
    original_topic: Mapped[str] = mapped_column(String(300))
    error_type: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replayed_by: Mapped[str | None] = mapped_column(String(64))


@dataclass(frozen=True)
class FeedRecord:
    """One record of the bus as the feed read it."""

    topic: str
    """The logical topic (without a namespace)."""
    key: bytes | None
    value: bytes | None
    headers: Headers
    stored_at: datetime
    letter_id: str
    """The adapter's handle of the record, as ``DeadLetter.letter_id`` names a dead letter."""

    def call_sid(self) -> str | None:
        sid = (self.key or b"").decode("utf-8", "replace")
        return sid if CALL_SID_RE.match(sid) else None

    def data(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.value or b"")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


async def open_sealed(sealer: Sealer | None, data: dict[str, Any], ce_type: str) -> dict[str, Any] | None:
    """``data`` with its sealed fields opened; None when they cannot be (erased, no key, tampered)."""
    if SEALED not in data:
        return data
    if sealer is None:
        return None
    try:
        return await sealer.open(dict(data), purpose=ce_type)
    except (SealedCallErased, UnreadableSeal):
        return None


def _at(data: Mapping[str, Any], fallback: datetime) -> datetime:
    raw = data.get("occurred_at")
    try:
        moment = datetime.fromisoformat(raw) if isinstance(raw, str) else fallback
    except ValueError:
        moment = fallback
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive (they are stored as UTC)."""
    return None if moment is None or moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _earliest(current: datetime | None, moment: datetime) -> datetime:
    current = _aware(current) or current
    return moment if current is None or moment < current else current


def _text(value: Any, limit: int = _TEXT) -> str | None:
    return None if value is None else str(value)[:limit]


def _received(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    row.received_at = _earliest(row.received_at, at)


def _recording_completed(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    row.recording = "completed"
    if not row.call_duration and isinstance(data.get("duration_seconds"), int):
        row.duration_seconds = data["duration_seconds"]


def _recording_absent(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    if row.recording != "completed":
        row.recording, row.recording_detail = "absent", _text(data.get("status"), 64)


def _consent_declined(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    row.recording, row.recording_detail = "declined", _text(data.get("reason"), 64)


def _transcribed(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    row.transcribed_at = _earliest(row.transcribed_at, at)
    row.transcription_model = _text(data.get("model"), 100)
    row.transcript_missing = bool(data.get("transcript_missing") or data.get("redaction_failed"))
    if row.language is None and data.get("language"):
        row.language = _text(data.get("language"), 8)


def _analyzed(row: CallProgress, data: Mapping[str, Any], at: datetime, opened: Any) -> None:
    row.analyzed_at = _earliest(row.analyzed_at, at)
    degraded = bool(data.get("degraded"))
    row.triage = "needs-triage" if degraded else "ok"
    row.degraded_reason = _text(data.get("degraded_reason"), 64) if degraded else None
    analysis = opened.get("analysis") if isinstance(opened, dict) else None
    if isinstance(analysis, dict):  # only the labels: its texts and entities are the caller's
        row.priority = _text(analysis.get("priority"), 16)
        row.intent = _text(analysis.get("intent"), 64)
        row.language = _text(analysis.get("language"), 8) or row.language


def _ticket(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    row.request_created_at = _earliest(row.request_created_at, at)
    row.request_key = _text(data.get("issue_key"), 64)
    if row.language is None and data.get("language"):
        row.language = _text(data.get("language"), 8)


def _sms_sent(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    row.sms_at = _earliest(row.sms_at, at)
    row.sms_state, row.sms_detail = "sent", None


def _sms_failed(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    if row.sms_state == "sent":  # at most one SMS per call: a sent one stays sent
        return
    row.sms_at = _earliest(row.sms_at, at)
    row.sms_state = "opted-out" if data.get("error_code") == OPTED_OUT else "failed"
    row.sms_detail = _text(data.get("reason"))


def _sms_delivery(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    if row.sms_delivery_at is None or at >= (_aware(row.sms_delivery_at) or row.sms_delivery_at):
        code = data.get("error_code")
        row.sms_delivery = _text(f"{data.get('status')}{f' ({code})' if code else ''}", 32)
        row.sms_delivery_at = at


def _screened(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    row.screened_at = _earliest(row.screened_at, at)
    row.screened = _text(data.get("reason"), 24) or row.screened


def _completed(row: CallProgress, data: Mapping[str, Any], at: datetime, _opened: Any) -> None:
    row.call_status = _text(data.get("status"), 16)
    if isinstance(data.get("duration_seconds"), int):
        row.duration_seconds, row.call_duration = data["duration_seconds"], True


_FOLDS = {
    v1.CallReceived.ce_type(): _received,
    v1.RecordingCompleted.ce_type(): _recording_completed,
    v1.RecordingAbsent.ce_type(): _recording_absent,
    v1.ConsentDeclined.ce_type(): _consent_declined,
    v1.CallScreened.ce_type(): _screened,
    v1.CallTranscribed.ce_type(): _transcribed,
    v1.CallAnalyzed.ce_type(): _analyzed,
    v1.TicketCreated.ce_type(): _ticket,
    v1.NotificationSent.ce_type(): _sms_sent,
    v1.NotificationFailed.ce_type(): _sms_failed,
    v1.NotificationDelivery.ce_type(): _sms_delivery,
    v1.CallCompleted.ce_type(): _completed,
}
"""What each call event type says of its call (any other type, e.g. config.changed, is skipped)."""
_NEEDS_OPENING = frozenset({v1.CallAnalyzed.ce_type()})


class Projector:
    """Folds feed records into ``call_progress`` and ``call_dead_letters``, a batch per transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], sealer: Sealer | None = None) -> None:
        self._sessions = sessions
        self._sealer = sealer
        self.applied = 0
        """Records folded so far (the tests and the logs read it)."""

    async def apply(self, records: Sequence[FeedRecord]) -> None:
        async with self._sessions() as session:
            rows: dict[str, CallProgress | None] = {}
            for record in records:
                await self._fold(session, rows, record)
            await session.commit()
        self.applied += len(records)

    async def _row(
        self, session: AsyncSession, rows: dict[str, CallProgress | None], sid: str, tenant: str, at: datetime
    ) -> CallProgress | None:
        """The call's row, made if it is new; None for a call whose data was erased."""
        if sid not in rows:
            row = await session.get(CallProgress, sid)
            if row is None:
                key = await session.get(CallKeyRow, (tenant, sid))
                if key is not None and key.wrapped_key is None:
                    rows[sid] = None  # erased: its late records make no row again
                    return None
                row = CallProgress(call_sid=sid, tenant_id=tenant, started_at=at)
                session.add(row)
            rows[sid] = row
        return rows[sid]

    async def _fold(
        self, session: AsyncSession, rows: dict[str, CallProgress | None], record: FeedRecord
    ) -> None:
        sid = record.call_sid()
        ce_type = header_map(record.headers).get("ce_type", "")
        letter = record.topic.startswith(dead_letter_topic(""))
        if sid is None or (not letter and ce_type not in _FOLDS):
            return
        data = record.data()
        tenant = data.get("tenant_id")
        if not isinstance(tenant, str) or not tenant:
            return
        at = _at(data, record.stored_at)
        row = await self._row(session, rows, sid, tenant, at)
        if row is None:
            return
        row.started_at = _earliest(row.started_at, at)
        if isinstance(data.get("line_number"), str) and row.line is None:
            row.line = data["line_number"][:16]
        if letter:
            await self._dead_letter(session, row, record)
            return
        if row.screened is None and isinstance(data.get("screened"), str):
            row.screened = _text(data["screened"], 24)  # every event of a screened call says why
        if row.ivr_choice is None and isinstance(choice := data.get("ivr_choice"), dict):
            row.ivr_choice = _text(f"{choice.get('digit', '')} {choice.get('label', '')}", 80)
        opened = await open_sealed(self._sealer, data, ce_type) if ce_type in _NEEDS_OPENING else None
        _FOLDS[ce_type](row, data, at, opened)

    @staticmethod
    async def _dead_letter(session: AsyncSession, row: CallProgress, record: FeedRecord) -> None:
        letter = read_dead_letter(record.letter_id, record.key, record.headers)
        group = letter.consumer_group or record.topic[len(dead_letter_topic("")) :]
        if await session.get(CallDeadLetter, letter.letter_id) is None:
            session.add(
                CallDeadLetter(
                    id=letter.letter_id,
                    call_sid=row.call_sid,
                    tenant_id=row.tenant_id,
                    group=group[:200],
                    event_type=letter.event_type[:200],
                    original_topic=letter.original_topic[:300],
                    error_type=letter.error_type[:200],
                    reason=letter.error[:1000],
                    attempts=letter.attempts,
                    at=record.stored_at,
                )
            )
        if row.error_at is None or record.stored_at >= (_aware(row.error_at) or row.error_at):
            row.error = f"{group}: {letter.error_type}: {letter.error}"[:1000]
            row.error_at = record.stored_at


async def forget_calls(session: AsyncSession, call_sids: Collection[str]) -> int:
    """Delete the rows (and dead letters) of these calls, in the caller's transaction."""
    if not call_sids:
        return 0
    sids = list(call_sids)
    await session.execute(delete(CallDeadLetter).where(CallDeadLetter.call_sid.in_(sids)))
    result = await session.execute(delete(CallProgress).where(CallProgress.call_sid.in_(sids)))
    return int(getattr(result, "rowcount", 0) or 0)


async def forget_tenant_calls(session: AsyncSession, tenant_id: str) -> int:
    """Delete every row of a removed tenant's calls, in the caller's transaction."""
    sids = (
        await session.scalars(select(CallProgress.call_sid).where(CallProgress.tenant_id == tenant_id))
    ).all()
    await session.execute(delete(CallDeadLetter).where(CallDeadLetter.tenant_id == tenant_id))
    return await forget_calls(session, sids)


async def purge_calls(
    sessions: async_sessionmaker[AsyncSession],
    now: datetime,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    dry_run: bool = False,
) -> int:
    """Delete the calls that started more than ``retention_days`` before ``now`` (with their dead
    letters); with ``dry_run`` only count them. Returns how many calls."""
    cutoff = (now if now.tzinfo else now.replace(tzinfo=UTC)) - timedelta(days=retention_days)
    async with sessions() as session:
        sids = (
            await session.scalars(select(CallProgress.call_sid).where(CallProgress.started_at < cutoff))
        ).all()
        if dry_run or not sids:
            return len(sids)
        await session.execute(delete(CallDeadLetter).where(CallDeadLetter.at < cutoff))
        count = await forget_calls(session, sids)
        await session.commit()
    log.info("calls view retention: purged %d calls older than %d days", count, retention_days)
    return count
