"""The key vault's runtime API, and a caller's export and erasure (the admin API).

Runtime (service tokens): ingress gets-or-creates a call's data key when the call starts; every
service fetches a call's key to open what was sealed under it. Admin: ``POST /v1/privacy/exports``
returns what we hold for a caller's number, ``POST /v1/privacy/erasures`` destroys it (the calls'
keys, so every sealed copy on every topic, dead letter and ledger becomes unreadable; the embedded
event log's rows are deleted too) and can delete the calls' recordings at Twilio. Both list the Jira
requests and Twilio recordings that hold the caller's data in the tenant's own systems. Both are
audited (``privacy.export``, ``privacy.erase``) with a keyed reference to the caller, never the
number.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import select

from voiceticket_common.bus.archive import ArchivedRecord, EventArchive
from voiceticket_common.bus.errors import PermanentError, TransientError
from voiceticket_common.sealing import MAX_KEY_BATCH, SEALED, Sealer, UnreadableSeal
from voiceticket_common.sealing import CallErased as SealedCallErased
from voiceticket_common.twilio import TwilioAccount
from voiceticket_common.twilio_media import TwilioMediaClient

from .audit import AuditDep, audited
from .auth import ADMIN, require_role
from .block_list import entries_of_subject
from .calls import forget_calls
from .crypto import KeyRing, SecretDecryptError
from .db import Tenant, utcnow
from .deps import Keys, Session
from .openapi import AUTH_ERRORS, errors
from .schemas import E164, TENANT_ID_PATTERN, ErrorOut
from .settings import ROLES
from .store import get_secret
from .vault import (
    ERASED_BY_CALLER,
    CallErased,
    CallRecord,
    KeyRequest,
    OpeningKeys,
    calls_of,
    destroy_keys,
    existing_key,
    issue_key,
    issue_keys,
    subject_of,
)

log = logging.getLogger(__name__)

CALL_SID_PATTERN = r"^CA[0-9a-fA-F]{32}$"
KEYED_SID_PATTERN = r"^(CA|SM|MM)[0-9a-fA-F]{32}$"
"""What the vault issues data keys for: calls (CallSid) and inbound messages (MessageSid, whose
sender and text ``sms.received`` seals): both are found again by the sender's number."""
KEY_CACHE_SECONDS = 30
"""How long a running service may keep using a fetched key (``VaultCallKeys``' cache)."""

runtime_router = APIRouter(prefix="/v1/runtime", tags=["runtime"])
admin_router = APIRouter(
    prefix="/v1/privacy", tags=["privacy"], dependencies=[Depends(require_role(ADMIN))], responses=AUTH_ERRORS
)

KeyedSidPath = Annotated[
    str, Path(pattern=KEYED_SID_PATTERN, description="Twilio CallSid, or MessageSid of an inbound SMS")
]


class CallKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(pattern=TENANT_ID_PATTERN)
    caller_number: str = Field(
        min_length=1,
        max_length=64,
        description="Twilio `From` (E.164, or e.g. `anonymous`): config-api keeps only a keyed hash of it",
    )


class CallKeyOut(BaseModel):
    key_id: str
    key: str = Field(description="base64 of the call's 32-byte AES-256-GCM data key")


_KEY_ERRORS = errors(404, described={404: "no key was issued for this call, or its tenant is removed"})
_GONE: dict[int | str, dict[str, Any]] = {
    410: {"model": ErrorOut, "description": "the call's data was erased"}
}


@runtime_router.put(
    "/calls/{call_sid}/key",
    response_model=CallKeyOut,
    responses={**AUTH_ERRORS, **_KEY_ERRORS, **_GONE, **errors(400)},
)
async def put_call_key(
    call_sid: KeyedSidPath,
    body: CallKeyRequest,
    _role: Annotated[str, Depends(require_role("ingress"))],
    session: Session,
    keys: Keys,
) -> CallKeyOut:
    if await session.get(Tenant, body.tenant_id) is None:
        raise HTTPException(404, "unknown tenant")
    try:
        issued = await issue_key(session, keys, body.tenant_id, call_sid, body.caller_number)
    except CallErased:
        raise HTTPException(410, "the call's data was erased") from None
    return CallKeyOut(key_id=issued.key_id, key=issued.key)


class CallKeyBatchItem(CallKeyRequest):
    call_sid: str = Field(pattern=KEYED_SID_PATTERN, description="Twilio CallSid (or MessageSid)")


class CallKeyBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: list[CallKeyBatchItem] = Field(min_length=1, max_length=MAX_KEY_BATCH)


class CallKeyBatchAnswer(BaseModel):
    tenant_id: str
    call_sid: str
    status: int = Field(
        description="200: the key (new or existing); 404: unknown tenant; 410: the call's data was erased"
    )
    key_id: str | None = None
    key: str | None = Field(default=None, description="base64 of the call's 32-byte AES-256-GCM data key")


class CallKeyBatchOut(BaseModel):
    keys: list[CallKeyBatchAnswer] = Field(description="one answer per call asked, in the order asked")


@runtime_router.post(
    "/call-keys",
    response_model=CallKeyBatchOut,
    responses={**AUTH_ERRORS, **errors(400)},
)
async def post_call_keys(
    body: CallKeyBatchRequest,
    _role: Annotated[str, Depends(require_role("ingress"))],
    session: Session,
    keys: Keys,
) -> CallKeyBatchOut:
    """Get-or-create the keys of several starting calls in one transaction: what ingress sends
    when calls start together (one round trip and one commit for all of them)."""

    tenants = {item.tenant_id for item in body.calls}
    known = set((await session.scalars(select(Tenant.id).where(Tenant.id.in_(tenants)))).all())
    asked = [
        KeyRequest(item.tenant_id, item.call_sid, item.caller_number)
        for item in body.calls
        if item.tenant_id in known
    ]
    issued = iter(await issue_keys(session, keys, asked))
    answers = []
    for item in body.calls:
        if item.tenant_id not in known:
            answers.append(CallKeyBatchAnswer(tenant_id=item.tenant_id, call_sid=item.call_sid, status=404))
            continue
        answer = next(issued)
        if isinstance(answer, CallErased):
            answers.append(CallKeyBatchAnswer(tenant_id=item.tenant_id, call_sid=item.call_sid, status=410))
        else:
            answers.append(
                CallKeyBatchAnswer(
                    tenant_id=item.tenant_id,
                    call_sid=item.call_sid,
                    status=200,
                    key_id=answer.key_id,
                    key=answer.key,
                )
            )
    return CallKeyBatchOut(keys=answers)


@runtime_router.get(
    "/calls/{call_sid}/key", response_model=CallKeyOut, responses={**AUTH_ERRORS, **_KEY_ERRORS, **_GONE}
)
async def get_call_key(
    call_sid: KeyedSidPath,
    tenant_id: Annotated[str, Query(pattern=TENANT_ID_PATTERN)],
    _role: Annotated[str, Depends(require_role(*ROLES))],
    session: Session,
    keys: Keys,
) -> CallKeyOut:
    try:
        issued = await existing_key(session, keys, tenant_id, call_sid)
    except CallErased:
        raise HTTPException(410, "the call's data was erased") from None
    if issued is None:
        raise HTTPException(404, "no key was issued for this call")
    return CallKeyOut(key_id=issued.key_id, key=issued.key)


# --- a caller's export and erasure -------------------------------------------------------------


class PrivacyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: E164 = Field(description="the caller's number, E.164", examples=["+14155550123"])
    tenant_id: str | None = Field(
        default=None, pattern=TENANT_ID_PATTERN, description="only this tenant's calls"
    )


class ErasureRequest(PrivacyRequest):
    delete_recordings: bool = Field(
        default=False, description="also delete the calls' recordings at Twilio (the tenant's account)"
    )


class JiraRequestRef(BaseModel):
    tenant_id: str
    call_sid: str
    issue_key: str
    url: str | None = Field(description="the request in the tenant's Jira")


class RecordingRef(BaseModel):
    tenant_id: str
    call_sid: str
    account_sid: str
    recording_sid: str
    deleted: bool | None = Field(
        default=None,
        description="erasure with delete_recordings: true deleted now, false already gone; null: not asked, "
        "or it failed (see error)",
    )
    error: str | None = None


class CustomerSystems(BaseModel):
    """Where the caller's data also is, in systems the tenant controls: erase it there yourself."""

    jira_requests: list[JiraRequestRef]
    twilio_recordings: list[RecordingRef]


class ExportedRecord(BaseModel):
    topic: str
    event_type: str
    dead_letter_group: str | None
    data: dict[str, Any] | None = Field(description="the event as we hold it, sealed fields opened")
    readable: bool = Field(description="false: its personal fields are sealed under a destroyed key")


class ExportedCall(BaseModel):
    tenant_id: str
    call_sid: str
    first_seen: datetime
    erased_at: datetime | None
    erased_because: str | None
    records: list[ExportedRecord]


class BlockListRef(BaseModel):
    """The caller is on this tenant's block list (a keyed hash of the number and the admin's note)."""

    tenant_id: str
    entry_id: int
    note: str | None
    created_at: datetime


class PrivacyExport(BaseModel):
    phone: str
    generated_at: datetime
    calls: list[ExportedCall]
    customer_systems: CustomerSystems
    block_lists: list[BlockListRef] = Field(
        default_factory=list, description="the tenants' block lists the caller is on"
    )
    event_log: str = Field(description="which event log was searched: embedded, kafka or none")
    not_included: list[str] = Field(description="what we hold that this export cannot show, and why")


class ErasureReport(BaseModel):
    phone_reference: str = Field(description="the caller's keyed reference, as in the audit log")
    calls: int
    keys_destroyed: int
    event_log: str
    event_log_records_deleted: int | None = Field(
        description="embedded: rows deleted; null on Kafka, where records stay sealed under destroyed "
        "keys until topic retention"
    )
    running_services_within_seconds: int = Field(
        description="running services may use a cached key this long after the erasure"
    )
    customer_systems: CustomerSystems
    block_list_entries_kept: int = Field(
        0,
        description="the caller's entries on block lists, kept on purpose (erasing them would let a "
        "blocked caller through again): a keyed hash and the admin's note; remove them from the block "
        "list if they should go",
    )
    remaining_steps: list[str]


NOT_INCLUDED = [
    "notifier's SMS opt-out entries: kept as a keyed hash of the number per tenant (a suppression "
    "list, so that an opted-out caller is never texted again); not linkable to the number here",
    "logs and traces: they never hold phone numbers or transcripts (only CallSids)",
    "jira-writer's repeat-caller index: a keyed hash of the number per tenant with the CallSids and "
    "request keys listed here; erased with the calls' keys (jira-writer drops the row of an erased "
    "call before using it) and purged after 30 days; not linkable to the number here",
    "notifier's SMS conversations (which request we texted the caller about, for replies and status "
    "texts): a keyed hash of the number and the number sealed under the call's key, so unreadable "
    "once the call's key is erased; purged after 30 days",
]


def _archive(request: Request) -> tuple[EventArchive | None, str]:
    archive: EventArchive | None = request.app.state.archive
    return archive, request.app.state.archive_kind


async def _opened(sealer: Sealer, record: ArchivedRecord) -> ExportedRecord:
    data = record.data()
    readable = True
    if data is not None and SEALED in data:
        try:
            data = await sealer.open(dict(data), purpose=record.event_type)
        except (SealedCallErased, UnreadableSeal):
            readable = False
    return ExportedRecord(
        topic=record.topic,
        event_type=record.event_type,
        dead_letter_group=record.dead_letter_group,
        data=data,
        readable=readable,
    )


async def _customer_systems(session: Any, records: list[ArchivedRecord]) -> CustomerSystems:
    jira: dict[tuple[str, str, str], JiraRequestRef] = {}
    recordings: dict[tuple[str, str], RecordingRef] = {}
    tenants: dict[str, Tenant | None] = {}
    for record in records:
        data = record.data() or {}
        tenant_id = str(data.get("tenant_id", ""))
        kind = record.event_type
        if kind.endswith(".ticket.created.v1") and isinstance(data.get("issue_key"), str):
            if tenant_id not in tenants:
                tenants[tenant_id] = await session.get(Tenant, tenant_id)
            tenant = tenants[tenant_id]
            key = str(data["issue_key"])
            url = f"{tenant.jira_base_url.rstrip('/')}/browse/{key}" if tenant is not None else None
            jira[(tenant_id, record.call_sid, key)] = JiraRequestRef(
                tenant_id=tenant_id, call_sid=record.call_sid, issue_key=key, url=url
            )
        elif kind.endswith(".call.recording.completed.v1") and isinstance(data.get("recording_sid"), str):
            recordings[(tenant_id, str(data["recording_sid"]))] = RecordingRef(
                tenant_id=tenant_id,
                call_sid=record.call_sid,
                account_sid=str(data.get("account_sid", "")),
                recording_sid=str(data["recording_sid"]),
            )
    return CustomerSystems(jira_requests=list(jira.values()), twilio_recordings=list(recordings.values()))


async def _calls(session: Any, keys: KeyRing, body: PrivacyRequest) -> tuple[str, list[CallRecord]]:
    subject = await subject_of(session, keys, body.phone)
    return subject, await calls_of(session, keys, body.phone, body.tenant_id)


def caller_reference(subject: str) -> str:
    """How the audit log and reports name a caller: a prefix of the vault's keyed hash."""
    return f"caller:{subject[:16]}"


@admin_router.post(
    "/exports", response_model=PrivacyExport, responses=errors(400), openapi_extra=audited("privacy.export")
)
async def export_caller(
    body: PrivacyRequest, request: Request, session: Session, keys: Keys, audit: AuditDep
) -> PrivacyExport:
    subject, calls = await _calls(session, keys, body)
    audit.about(caller_reference(subject), body.tenant_id)
    archive, kind = _archive(request)
    records = await archive.records([c.call_sid for c in calls]) if archive is not None and calls else []
    sealer = Sealer(OpeningKeys(lambda: contextlib.nullcontext(session), keys))
    by_call: dict[str, list[ExportedRecord]] = {c.call_sid: [] for c in calls}
    for record in records:
        if record.call_sid in by_call:
            by_call[record.call_sid].append(await _opened(sealer, record))
    export = PrivacyExport(
        phone=body.phone,
        generated_at=utcnow(),
        calls=[
            ExportedCall(
                tenant_id=c.tenant_id,
                call_sid=c.call_sid,
                first_seen=c.created_at,
                erased_at=c.erased_at,
                erased_because=c.erased_because,
                records=by_call[c.call_sid],
            )
            for c in calls
        ],
        customer_systems=await _customer_systems(session, records),
        block_lists=[
            BlockListRef(tenant_id=e.tenant_id, entry_id=e.id, note=e.note, created_at=e.created_at)
            for e in await entries_of_subject(session, subject, body.tenant_id)
        ],
        event_log=kind,
        not_included=NOT_INCLUDED
        + ([] if archive is not None else ["the event log: config-api has no event log configured"]),
    )
    await audit.commit(session, 200, calls=len(calls), records=len(records))
    return export


async def _delete_recordings(request: Request, session: Any, keys: KeyRing, refs: list[RecordingRef]) -> None:
    if not refs:
        return
    settings = request.app.state.settings
    media = TwilioMediaClient(
        settings.twilio_api_base_url, settings.egress_allowed_hosts, max_bytes=1, timeout=15.0
    )
    try:
        for ref in refs:
            tenant = await session.get(Tenant, ref.tenant_id)
            token = None
            if tenant is not None:
                try:
                    token = get_secret(tenant, "twilio_auth_token", keys)
                except SecretDecryptError:
                    token = None
            if tenant is None or token is None or tenant.twilio_account_sid != ref.account_sid:
                ref.error = (
                    "no Twilio credentials of this account are stored (delete it in the Twilio console)"
                )
                continue
            try:
                ref.deleted = await media.delete(
                    TwilioAccount(ref.account_sid, SecretStr(token)), ref.recording_sid
                )
            except (PermanentError, TransientError) as exc:
                ref.error = str(exc)[:300]
    finally:
        await media.aclose()


@admin_router.post(
    "/erasures",
    response_model=ErasureReport,
    responses=errors(400),
    openapi_extra=audited("privacy.erase"),
)
async def erase_caller(
    body: ErasureRequest, request: Request, session: Session, keys: Keys, audit: AuditDep
) -> ErasureReport:
    subject, calls = await _calls(session, keys, body)
    audit.about(caller_reference(subject), body.tenant_id)
    archive, kind = _archive(request)
    call_sids = [c.call_sid for c in calls]
    records = await archive.records(call_sids) if archive is not None and calls else []
    systems = await _customer_systems(session, records)
    if body.delete_recordings:
        await _delete_recordings(request, session, keys, systems.twilio_recordings)
    destroyed = await destroy_keys(session, [(c.tenant_id, c.call_sid) for c in calls], ERASED_BY_CALLER)
    await forget_calls(session, call_sids)  # the calls view's rows (calls.py), in the same commit
    await audit.commit(
        session,
        200,
        calls=len(calls),
        keys_destroyed=destroyed,
        recordings_deleted=sum(1 for r in systems.twilio_recordings if r.deleted),
    )
    deleted = await archive.forget(call_sids) if archive is not None else None
    steps = []
    if systems.jira_requests:
        steps.append(
            "Jira: the listed requests hold the caller's data (summary, description, transcript comment, "
            "call property); delete or anonymise them in Jira"
        )
    if systems.twilio_recordings and not body.delete_recordings:
        steps.append("Twilio: delete the listed recordings (or run the erasure again with delete_recordings)")
    if any(r.error for r in systems.twilio_recordings):
        steps.append(
            "Twilio: some recordings could not be deleted (see their error); delete them in the console"
        )
    blocked = await entries_of_subject(session, subject, body.tenant_id)
    if blocked:
        steps.append(
            "Block list: the caller stays blocked by "
            + ", ".join(sorted({e.tenant_id for e in blocked}))
            + " (kept on purpose, as a keyed hash; remove the entry from the block list if it should go)"
        )
    steps.append(
        "Twilio keeps call logs (From/To) under its own retention; OpenAI's retention applies to what it "
        "received (see docs/security-privacy.md)"
    )
    log.info(
        "caller erasure done",
        extra={"calls": len(calls), "keys_destroyed": destroyed, "event_log_records_deleted": deleted},
    )
    return ErasureReport(
        phone_reference=caller_reference(subject),
        calls=len(calls),
        keys_destroyed=destroyed,
        event_log=kind,
        event_log_records_deleted=deleted,
        running_services_within_seconds=KEY_CACHE_SECONDS,
        customer_systems=systems,
        block_list_entries_kept=len(blocked),
        remaining_steps=steps,
    )
