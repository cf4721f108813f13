"""``/v1/calls`` and ``/v1/dead-letters``: each call's progress, its dead letters and their replay.

Admin tokens only; a read-only token may read the calls and dead letters, not a transcript and
not replay. Built from the events (calls.py): no caller number and no transcript is stored; the
transcript endpoint reads it from the event log and opens it with the call's key, and is audited
(``call.transcript.read``) like a replay (``dead_letter.replay``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from voiceticket_common.bus.port import DeadLetter
from voiceticket_common.events import v1
from voiceticket_common.sealing import Sealer

from .admin_tokens import READ_ONLY
from .audit import AuditDep, audited
from .auth import ADMIN, request_identity, require_role
from .calls import STAGE_GROUPS, CallDeadLetter, CallProgress, open_sealed
from .calls_feed import replay
from .db import Line, utcnow
from .deps import Session, app_sessions, get_keyring
from .openapi import AUTH_ERRORS, errors, invalid
from .routes_privacy import CALL_SID_PATTERN
from .schemas import TENANT_ID_PATTERN, ErrorOut
from .vault import CallKeyRow, OpeningKeys

log = logging.getLogger("voiceticket_config_api.calls")

router = APIRouter(
    prefix="/v1", tags=["calls"], dependencies=[Depends(require_role(ADMIN))], responses=AUTH_ERRORS
)

CallSidPath = Annotated[str, Path(pattern=CALL_SID_PATTERN, description="Twilio CallSid")]
LetterId = Annotated[
    str,
    Path(pattern=r"^[!-~]{1,200}$", description="the dead letter's id (as GET /v1/dead-letters lists it)"),
]
UNKNOWN_CALL = errors(404, described={404: "unknown call (never seen, erased or past retention)"})
StageName = Literal["received", "transcribed", "analyzed", "request", "sms"]
StageState = Literal["done", "pending", "failed", "skipped"]


class StageOut(BaseModel):
    name: StageName
    at: datetime | None
    state: StageState
    detail: str | None = None


class DeadLetterOut(BaseModel):
    id: str = Field(description="what POST /v1/dead-letters/{id}/replay takes")
    call_sid: str
    group: str = Field(description="the consumer group that gave up, e.g. voiceticket-jira-writer")
    event_type: str
    reason: str
    at: datetime
    error_type: str
    attempts: int
    replayed_at: datetime | None = None
    replayed_by: str | None = None


class CallOut(BaseModel):
    call_sid: str
    tenant_id: str
    line: str | None = Field(description="the support number that was called (never the caller's)")
    received_at: datetime | None
    stages: list[StageOut]
    request_key: str | None
    priority: str | None
    intent: str | None
    language: str | None
    triage: str | None = Field(description="ok, or needs-triage (a stand-in analysis); null before analysis")
    error: str | None = Field(description="the last error: a dead letter's group, type and reason")
    dead_letters: list[DeadLetterOut]
    sms_state: str | None = Field(description="sent, opted-out, failed or skipped (SMS off on the line)")
    duration_seconds: int | None
    call_status: str | None
    screened: str | None = Field(
        None,
        description="why the call was screened: silence, tone or too_short (its recording), "
        "blocked_caller or robocall (its caller); null: not screened",
    )
    screened_out: bool = Field(
        False, description="screening ended the call: its line makes no request for screened calls"
    )
    ivr_choice: str | None = Field(
        None, description="the option the caller chose in the line's IVR menu, as 'digit label'; null: none"
    )
    updated_at: datetime | None


class CallPage(BaseModel):
    calls: list[CallOut]
    next: str | None = Field(description="pass as ?before= for the next (older) page; null on the last")


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterOut]


class TranscriptOut(BaseModel):
    call_sid: str
    text: str


class Replayed(BaseModel):
    replayed: bool
    id: str


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _letter_out(letter: CallDeadLetter) -> DeadLetterOut:
    return DeadLetterOut(
        id=letter.id,
        call_sid=letter.call_sid,
        group=letter.group,
        event_type=letter.event_type,
        reason=letter.reason,
        at=_aware(letter.at) or utcnow(),
        error_type=letter.error_type,
        attempts=letter.attempts,
        replayed_at=_aware(letter.replayed_at),
        replayed_by=letter.replayed_by,
    )


def _blocked(letters: list[CallDeadLetter], stage: str) -> CallDeadLetter | None:
    """The newest dead letter holding up ``stage`` that was not replayed through the API."""
    open_letters = [x for x in letters if STAGE_GROUPS.get(x.group) == stage and x.replayed_at is None]
    return open_letters[-1] if open_letters else None


def _stage(
    name: StageName,
    at: datetime | None,
    letters: list[CallDeadLetter],
    skipped: str | None,
    detail: str | None,
) -> StageOut:
    if at is not None:
        return StageOut(name=name, at=_aware(at), state="done", detail=detail)
    letter = _blocked(letters, name)
    if letter is not None:
        return StageOut(
            name=name, at=_aware(letter.at), state="failed", detail=f"{letter.error_type}: {letter.reason}"
        )
    if skipped is not None:
        return StageOut(name=name, at=None, state="skipped", detail=skipped)
    return StageOut(name=name, at=None, state="pending")


def _no_recording(row: CallProgress) -> str | None:
    if row.screened_at is not None:
        return f"screened ({row.screened}): no request"
    if row.recording == "absent":
        return f"no recording ({row.recording_detail or 'absent'})"
    if row.recording == "declined":
        return f"consent declined ({row.recording_detail or 'no key'})"
    return None


def _sms_stage(row: CallProgress, letters: list[CallDeadLetter], sms_off: bool) -> StageOut:
    if row.sms_state == "sent":
        return StageOut(name="sms", at=_aware(row.sms_at), state="done", detail=row.sms_delivery)
    if row.sms_state == "opted-out":
        return StageOut(name="sms", at=_aware(row.sms_at), state="skipped", detail=row.sms_detail)
    if row.sms_state == "failed":
        return StageOut(name="sms", at=_aware(row.sms_at), state="failed", detail=row.sms_detail)
    off = "SMS off on this line" if sms_off and row.request_created_at is not None else None
    return _stage("sms", None, letters, off, None)


def _sms_state(row: CallProgress, sms: StageOut) -> str | None:
    return "skipped" if sms.state == "skipped" and row.sms_state is None else row.sms_state


def call_out(row: CallProgress, letters: list[CallDeadLetter], sms_off: bool) -> CallOut:
    """The API's view of a call's row (``letters`` oldest first)."""
    skipped = _no_recording(row)
    analyzed_detail = row.degraded_reason or (None if row.triage is None else "analysis by the model")
    sms = _sms_stage(row, letters, sms_off)
    stages = [
        _stage("received", row.received_at, letters, None, row.line),
        _stage(
            "transcribed",
            row.transcribed_at,
            letters,
            skipped,
            "transcript missing" if row.transcript_missing else row.transcription_model,
        ),
        _stage("analyzed", row.analyzed_at, letters, skipped, analyzed_detail),
        _stage(
            "request", row.request_created_at, letters, skipped if row.screened_at else None, row.request_key
        ),
        sms,
    ]
    return CallOut(
        call_sid=row.call_sid,
        tenant_id=row.tenant_id,
        line=row.line,
        received_at=_aware(row.received_at),
        stages=stages,
        request_key=row.request_key,
        priority=row.priority,
        intent=row.intent,
        language=row.language,
        triage=row.triage,
        error=row.error,
        dead_letters=[_letter_out(x) for x in letters],
        sms_state=_sms_state(row, sms),
        duration_seconds=row.duration_seconds,
        call_status=row.call_status,
        screened=row.screened,
        screened_out=row.screened_at is not None,
        ivr_choice=row.ivr_choice,
        updated_at=_aware(row.updated_at),
    )


async def _calls_out(session: AsyncSession, rows: list[CallProgress]) -> list[CallOut]:
    sids = [r.call_sid for r in rows]
    letters: dict[str, list[CallDeadLetter]] = {sid: [] for sid in sids}
    if sids:
        query = select(CallDeadLetter).where(CallDeadLetter.call_sid.in_(sids)).order_by(CallDeadLetter.at)
        for letter in (await session.scalars(query)).all():
            letters[letter.call_sid].append(letter)
    numbers = {r.line for r in rows if r.line}
    off: set[str] = set()
    if numbers:
        query_lines = select(Line.number).where(Line.number.in_(numbers), Line.sms_enabled.is_(False))
        off = set((await session.scalars(query_lines)).all())
    return [call_out(r, letters[r.call_sid], r.line in off) for r in rows]


def _cursor(row: CallProgress) -> str:
    started = _aware(row.started_at) or utcnow()
    raw = json.dumps([started.isoformat(), row.call_sid]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after_cursor(cursor: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        started, sid = json.loads(raw)
        moment = _aware(datetime.fromisoformat(started))
    except (ValueError, TypeError, binascii.Error):
        raise invalid(
            ("query", "before"), "not a cursor of this list (use the previous page's next)"
        ) from None
    return or_(
        CallProgress.started_at < moment,
        and_(CallProgress.started_at == moment, CallProgress.call_sid < str(sid)),
    )


@router.get("/calls", response_model=CallPage, openapi_extra=audited("call.list"))
async def list_calls(
    session: Session,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[
        str | None, Query(max_length=300, pattern=r"^[A-Za-z0-9_-]+$", description="the previous page's next")
    ] = None,
    tenant_id: Annotated[
        str | None, Query(pattern=TENANT_ID_PATTERN, description="only this tenant's calls")
    ] = None,
) -> CallPage:
    """The calls, newest first, one page at a time: each call's stages, request, triage and errors."""
    query = select(CallProgress).order_by(CallProgress.started_at.desc(), CallProgress.call_sid.desc())
    if tenant_id is not None:
        query = query.where(CallProgress.tenant_id == tenant_id)
    if before is not None:
        query = query.where(_after_cursor(before))
    rows = list((await session.scalars(query.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return CallPage(calls=await _calls_out(session, rows), next=_cursor(rows[-1]) if more else None)


async def _found(session: AsyncSession, call_sid: str) -> CallProgress:
    row = await session.get(CallProgress, call_sid)
    if row is None:
        raise HTTPException(404, "unknown call")
    return row


@router.get(
    "/calls/{call_sid}", response_model=CallOut, responses=UNKNOWN_CALL, openapi_extra=audited("call.get")
)
async def get_call(call_sid: CallSidPath, session: Session) -> CallOut:
    """One call's progress and its dead letters."""
    return (await _calls_out(session, [await _found(session, call_sid)]))[0]


_TRANSCRIPT_TYPES = (v1.CallTranscribed.ce_type(), v1.CallAnalyzed.ce_type())


@router.get(
    "/calls/{call_sid}/transcript",
    response_model=TranscriptOut,
    responses=errors(
        404, described={404: "unknown call, erased, or no transcript left on the bus (retention)"}
    ),
    openapi_extra=audited("call.transcript.read"),
)
async def get_transcript(
    call_sid: CallSidPath, request: Request, session: Session, audit: AuditDep
) -> TranscriptOut:
    """The call's (redacted) transcript, read from the event log and opened with the call's key.
    Scope admin only (a read-only token gets 403); every read is audited."""
    identity = request_identity(request)
    if identity is not None and identity.role == READ_ONLY:
        raise HTTPException(
            403, f"token '{identity.actor}' is read-only: transcripts need an admin-scope token"
        )
    row = await _found(session, call_sid)
    audit.about(f"call:{call_sid}", row.tenant_id)
    key = await session.get(CallKeyRow, (row.tenant_id, call_sid))
    if key is not None and key.wrapped_key is None:
        raise HTTPException(404, "the call's data was erased")
    archive = request.app.state.archive
    records = await archive.records([call_sid]) if archive is not None else []
    sealer = Sealer(OpeningKeys(app_sessions(request), get_keyring(request)))
    ranked = sorted(
        (r for r in records if r.event_type in _TRANSCRIPT_TYPES),
        key=lambda r: (_TRANSCRIPT_TYPES.index(r.event_type), r.dead_letter_group is not None),
    )
    for record in ranked:
        data = await open_sealed(sealer, record.data() or {}, record.event_type)
        if data is not None and isinstance(data.get("transcript"), str):
            await audit.commit(session, 200)
            return TranscriptOut(call_sid=call_sid, text=data["transcript"])
    raise HTTPException(404, "no transcript of this call is left on the bus (erased or past retention)")


@router.get("/dead-letters", response_model=DeadLetterList, openapi_extra=audited("dead_letter.list"))
async def list_dead_letters(
    session: Session,
    call_sid: Annotated[str | None, Query(pattern=CALL_SID_PATTERN, description="only this call's")] = None,
    tenant_id: Annotated[
        str | None, Query(pattern=TENANT_ID_PATTERN, description="only this tenant's")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeadLetterList:
    """Dead letters, newest first: which group gave up on which call's event, and why (no payload)."""
    query = select(CallDeadLetter).order_by(CallDeadLetter.at.desc(), CallDeadLetter.id.desc()).limit(limit)
    if call_sid is not None:
        query = query.where(CallDeadLetter.call_sid == call_sid)
    if tenant_id is not None:
        query = query.where(CallDeadLetter.tenant_id == tenant_id)
    return DeadLetterList(dead_letters=[_letter_out(x) for x in (await session.scalars(query)).all()])


_BUS_ERRORS: dict[int | str, dict[str, Any]] = {
    **errors(
        404, 409, described={404: "unknown dead letter, or no longer on the bus", 409: "no bus configured"}
    ),
    503: {"model": ErrorOut, "description": "the bus could not be reached; try again"},
}


@router.post(
    "/dead-letters/{letter_id}/replay",
    response_model=Replayed,
    responses=_BUS_ERRORS,
    openapi_extra=audited("dead_letter.replay"),
)
async def replay_dead_letter(
    letter_id: LetterId, request: Request, session: Session, audit: AuditDep
) -> Replayed:
    """Deliver the dead letter's record again to its topic, for its group (once the cause is
    fixed; handlers are idempotent). The call's stages show the rest as it completes."""
    letter = await session.get(CallDeadLetter, letter_id)
    if letter is None:
        raise HTTPException(404, "unknown dead letter")
    audit.about(f"call:{letter.call_sid}", letter.tenant_id, dead_letter=letter.id, group=letter.group)
    try:
        await replay(request.app, _bus_letter(letter))
    except LookupError:
        raise HTTPException(404, "the dead letter is no longer on the bus (past retention)") from None
    except RuntimeError as exc:
        raise HTTPException(409, str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - the broker or the log is away
        log.warning("dead letter replay failed: %s", type(exc).__name__)
        raise HTTPException(503, f"the bus could not be reached ({type(exc).__name__}); try again") from None
    identity = request_identity(request)
    letter.replayed_at = utcnow()
    letter.replayed_by = identity.actor if identity is not None else None
    await audit.commit(session, 200)
    log.info("dead letter replayed", extra={"group": letter.group})
    return Replayed(replayed=True, id=letter.id)


def _bus_letter(letter: CallDeadLetter) -> DeadLetter:
    return DeadLetter(
        letter_id=letter.id,
        consumer_group=letter.group,
        call_sid=letter.call_sid,
        event_type=letter.event_type,
        original_topic=letter.original_topic,
        error_type=letter.error_type,
        error=letter.reason,
        attempts=letter.attempts,
    )
