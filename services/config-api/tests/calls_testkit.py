"""One call's events and their bus records, for the calls view's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from voiceticket_common.bus.envelope import dead_letter_headers, encode, envelope_for
from voiceticket_common.bus.port import dead_letter_topic
from voiceticket_common.events import Event, v1
from voiceticket_common.sealing import Sealer
from voiceticket_config_api.calls import FeedRecord

SID = "CA" + "1" * 32
ACCOUNT = "AC" + "2" * 32
RECORDING = "RE" + "3" * 32
CALLER = "+4915112345678"
LINE = "+14155550100"
TRANSCRIPT = "My name is Erika Mustermann and my order 4711 never arrived"
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def call_events(sid: str = SID, tenant: str = "acme", start: datetime = T0, **analysis: Any) -> list[Event]:
    """A call from ringing to the SMS, one second apart."""
    at = [start + timedelta(seconds=i) for i in range(8)]
    ctx: dict[str, Any] = {
        "tenant_id": tenant,
        "call_sid": sid,
        "line_number": LINE,
        "caller_number": CALLER,
        "consent": "notice",
    }
    rec = {**ctx, "recording_sid": RECORDING, "duration_seconds": 21}
    return [
        v1.CallReceived(**ctx, account_sid=ACCOUNT, occurred_at=at[0]),
        v1.RecordingCompleted(
            **ctx,
            account_sid=ACCOUNT,
            recording_sid=RECORDING,
            recording_url="https://api.twilio.com/x",
            duration_seconds=21,
            occurred_at=at[1],
        ),
        v1.CallCompleted(
            tenant_id=tenant, call_sid=sid, status="completed", duration_seconds=30, occurred_at=at[2]
        ),
        v1.CallTranscribed(**rec, transcript=TRANSCRIPT, language="en", model="whisper-1", occurred_at=at[3]),
        v1.CallAnalyzed(
            **rec,
            transcript=TRANSCRIPT,
            analysis=v1.Analysis(
                summary="Order 4711 of Erika Mustermann missing",
                description=TRANSCRIPT,
                intent=analysis.get("intent", "delivery_issue"),
                entities=[v1.Entity(type="name", value="Erika Mustermann")],
                priority=analysis.get("priority", v1.Priority.HIGH),
                sentiment=v1.Sentiment.NEGATIVE,
                language="en",
            ),
            model="gpt-4o-mini",
            occurred_at=at[4],
        ),
        v1.TicketCreated(
            **ctx,
            issue_key="SUP-7",
            issue_id="10007",
            service_desk_id="1",
            request_type_id="10",
            summary="Order 4711 of Erika Mustermann missing",
            language="en",
            occurred_at=at[5],
        ),
        v1.NotificationSent(
            tenant_id=tenant, call_sid=sid, issue_key="SUP-7", message_sid="SM" + "4" * 32, occurred_at=at[6]
        ),
    ]


async def record(
    event: Event, *, sealer: Sealer | None = None, letter_id: str = "1", stored_at: datetime | None = None
) -> FeedRecord:
    """The bus record of ``event`` (its personal fields sealed with ``sealer``)."""
    key, value, headers = encode(envelope_for(event, "test"))
    if sealer is not None:
        value = await sealer.seal(event)
    return FeedRecord(
        topic=event.topic(),
        key=key,
        value=value,
        headers=headers,
        stored_at=stored_at or event.occurred_at,
        letter_id=letter_id,
    )


def dead_letter(rec: FeedRecord, group: str, letter_id: str, error: str = "Jira refused: 400") -> FeedRecord:
    """``rec`` as ``group``'s dead-letter topic holds it."""
    headers = dead_letter_headers(
        rec.headers, topic=rec.topic, group=group, error_type="PermanentError", error=error, attempts=1
    )
    return FeedRecord(
        topic=dead_letter_topic(group),
        key=rec.key,
        value=rec.value,
        headers=headers,
        stored_at=rec.stored_at + timedelta(seconds=1),
        letter_id=letter_id,
    )
