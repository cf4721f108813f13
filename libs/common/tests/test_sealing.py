"""Personal fields sealed under the call's data key (crypto-shredding)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from voiceticket_common.bus import envelope as wire
from voiceticket_common.events import CallTranscribed, NotificationSent
from voiceticket_common.ledger import OutcomeLedger, outcome_table
from voiceticket_common.sealing import SEALED, CallErased, MemoryCallKeys, Sealer, UnreadableSeal
from voiceticket_common.testing import CALLER, call_transcribed, ticket_created

TRANSCRIPT = "My card is 4111 1111 1111 1111, please call me back"


async def test_a_sealed_value_holds_no_personal_field_in_clear_and_opens_to_the_event() -> None:
    sealer = Sealer(MemoryCallKeys())
    event = call_transcribed(transcript=TRANSCRIPT)

    value = await sealer.seal(event)

    assert CALLER.encode() not in value and b"4111" not in value and b"call me back" not in value
    data = json.loads(value)
    assert "caller_number" not in data and "transcript" not in data
    assert data["call_sid"] == event.call_sid and data["model"] == "whisper-1"  # the rest stays readable
    opened = await sealer.open(data, purpose=event.ce_type())
    assert CallTranscribed.model_validate(opened) == event


async def test_an_event_without_personal_fields_stays_plain_json() -> None:
    sealer = Sealer(MemoryCallKeys())
    event = NotificationSent(
        tenant_id="acme", call_sid="CA" + "1" * 32, issue_key="HELP-1", message_sid="SM" + "2" * 32
    )

    value = await sealer.seal(event)

    assert SEALED not in json.loads(value)
    assert (
        NotificationSent.model_validate(await sealer.open(json.loads(value), purpose=event.ce_type()))
        == event
    )


async def test_an_erased_call_no_longer_opens() -> None:
    keys = MemoryCallKeys()
    sealer = Sealer(keys)
    event = call_transcribed(transcript=TRANSCRIPT)
    data = json.loads(await sealer.seal(event))

    keys.erase(event.tenant_id, event.call_sid)

    with pytest.raises(CallErased):
        await sealer.open(dict(data), purpose=event.ce_type())
    with pytest.raises(CallErased):  # nor can the call be sealed again under a new key
        await sealer.seal(event)


async def test_sealed_fields_copied_into_another_call_or_record_type_do_not_open() -> None:
    sealer = Sealer(MemoryCallKeys())
    first = call_transcribed(transcript=TRANSCRIPT)
    other = ticket_created(call_sid="CA" + "f" * 32)
    await sealer.seal(other)  # the other call has a key of its own
    sealed = json.loads(await sealer.seal(first))

    with pytest.raises(UnreadableSeal):  # same call, other record type
        await sealer.open(dict(sealed), purpose=other.ce_type())
    moved = {**sealed, "call_sid": other.call_sid}
    with pytest.raises(UnreadableSeal):  # another call's record
        await sealer.open(moved, purpose=first.ce_type())
    tampered = {**sealed, SEALED: {**sealed[SEALED], "data": sealed[SEALED]["data"][:-4] + "AAA="}}
    with pytest.raises(UnreadableSeal):
        await sealer.open(tampered, purpose=first.ce_type())


def test_the_personal_fields_of_the_call_events_are_marked() -> None:
    assert set(CallTranscribed.personal_fields()) == {"caller_number", "transcript"}
    assert set(type(ticket_created()).personal_fields()) == {"caller_number", "summary"}
    assert NotificationSent.personal_fields() == ()


@dataclass(frozen=True)
class _Key:
    tenant_id: str
    call_sid: str
    digest: str


class _TranscriptLedger(OutcomeLedger[_Key, CallTranscribed]):
    row = outcome_table("sealing_test_outcomes", "digest", 8)
    event = CallTranscribed


async def test_an_outcome_ledger_with_keys_keeps_no_personal_field_in_clear_and_forgets_erased_calls(
    tmp_path: Path,
) -> None:
    keys = MemoryCallKeys()
    event = call_transcribed(transcript=TRANSCRIPT)
    await keys.key_for_sealing(event)  # ingress issued the call's key
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    try:
        ledger = await _TranscriptLedger.with_schema(engine, keys=keys)
        key = _Key(event.tenant_id, event.call_sid, "d1")
        await ledger.keep(key, event, final=True)

        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT outcome FROM sealing_test_outcomes"))).scalar_one()
        assert CALLER not in stored and "4111" not in stored and SEALED in json.loads(stored)
        assert await ledger.find(key) == event

        keys.erase(event.tenant_id, event.call_sid)
        assert await ledger.find(key) is None  # erased: as if nothing were kept
    finally:
        await engine.dispose()


async def test_a_bus_record_is_sealed_on_the_wire_and_opens_to_its_envelope() -> None:
    keys = MemoryCallKeys()
    sealer = Sealer(keys)
    event = call_transcribed(transcript=TRANSCRIPT)
    envelope = wire.envelope_for(event, "test")

    key, value, headers = await wire.seal_record(envelope, sealer)

    assert key == event.call_sid.encode() and b"4111" not in value and CALLER.encode() not in value
    assert (await wire.open_record(value, headers, sealer)).event == event
    with pytest.raises(wire.MalformedMessage):  # a reader without keys cannot take it for an event
        await wire.open_record(value, headers, None)
    keys.erase(event.tenant_id, event.call_sid)
    with pytest.raises(CallErased):
        await wire.open_record(value, headers, sealer)
    plain_key, plain, plain_headers = wire.encode(envelope)  # records from before sealing still read
    assert (await wire.open_record(plain, plain_headers, sealer)).event == event
