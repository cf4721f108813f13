"""The calls view's projection (calls.py) and its embedded feed (calls_feed.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from calls_testkit import CALLER, LINE, SID, T0, TRANSCRIPT, call_events, dead_letter, record
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.bus.errors import PermanentError
from voiceticket_common.events import v1
from voiceticket_common.sealing import MemoryCallKeys, Sealer
from voiceticket_config_api.calls import (
    CallDeadLetter,
    CallProgress,
    Projector,
    forget_calls,
    forget_tenant_calls,
    purge_calls,
)
from voiceticket_config_api.calls_feed import GROUP, EmbeddedFeed, follow
from voiceticket_config_api.db import create_schema, make_engine, make_sessionmaker
from voiceticket_config_api.vault import CallKeyRow

OTHER = "CA" + "9" * 32


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'config.db'}")
    await create_schema(engine)
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(MemoryCallKeys())


async def _row(sessions: async_sessionmaker[AsyncSession], sid: str = SID) -> CallProgress | None:
    async with sessions() as session:
        return await session.get(CallProgress, sid)


def _columns(row: CallProgress) -> dict[str, Any]:
    return {c.name: getattr(row, c.name) for c in CallProgress.__table__.columns if c.name != "updated_at"}


async def test_a_whole_call_becomes_one_row_with_every_stage(
    sessions: async_sessionmaker[AsyncSession], sealer: Sealer
) -> None:
    projector = Projector(sessions, sealer)
    await projector.apply([await record(e, sealer=sealer) for e in call_events()])
    row = await _row(sessions)
    assert row is not None
    assert (row.tenant_id, row.line, row.request_key, row.sms_state) == ("acme", LINE, "SUP-7", "sent")
    assert row.received_at is not None and row.received_at.replace(tzinfo=None) == T0.replace(tzinfo=None)
    assert row.transcribed_at and row.analyzed_at and row.request_created_at and row.sms_at
    # priority and intent come from the sealed analysis, opened in memory for its labels only
    assert (row.priority, row.intent, row.language, row.triage) == ("high", "delivery_issue", "en", "ok")
    assert row.duration_seconds == 30  # the call's duration wins over the recording's
    assert row.call_status == "completed"


async def test_no_caller_number_and_no_transcript_is_stored(
    sessions: async_sessionmaker[AsyncSession], sealer: Sealer
) -> None:
    events = call_events()
    records = [await record(e, sealer=sealer) for e in events]
    records.append(dead_letter(await record(events[4], sealer=sealer), "voiceticket-jira-writer", "99"))
    await Projector(sessions, sealer).apply(records)
    async with sessions() as session:
        stored = [str(_columns(r)) for r in (await session.scalars(select(CallProgress))).all()]
        stored += [str(vars(x)) for x in (await session.scalars(select(CallDeadLetter))).all()]
    text = " ".join(stored)
    assert "SUP-7" in text  # what is kept is there
    for personal in (CALLER, TRANSCRIPT, "Erika", "4711"):
        assert personal not in text


async def test_redelivery_changes_nothing(sessions: async_sessionmaker[AsyncSession], sealer: Sealer) -> None:
    records = [await record(e, sealer=sealer) for e in call_events()]
    projector = Projector(sessions, sealer)
    await projector.apply(records)
    once = _columns(await _row(sessions))  # type: ignore[arg-type]
    await projector.apply(records)
    await projector.apply(records[2:4])
    assert _columns(await _row(sessions)) == once  # type: ignore[arg-type]


async def test_out_of_order_records_give_the_same_row(
    sessions: async_sessionmaker[AsyncSession], sealer: Sealer, tmp_path: Path
) -> None:
    in_order = [await record(e, sealer=sealer) for e in call_events()]
    await Projector(sessions, sealer).apply(in_order)
    expected = _columns(await _row(sessions))  # type: ignore[arg-type]
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    await create_schema(engine)
    other = make_sessionmaker(engine)
    try:
        projector = Projector(other, sealer)
        for rec in reversed(in_order):  # one record per batch, newest first
            await projector.apply([rec])
        assert _columns(await _row(other)) == expected  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def test_a_dead_letter_is_kept_with_the_error_and_is_idempotent(
    sessions: async_sessionmaker[AsyncSession], sealer: Sealer
) -> None:
    events = call_events()
    analyzed = await record(events[4], sealer=sealer)
    letter = dead_letter(analyzed, "voiceticket-jira-writer", "42", error="Jira answered 400: no such field")
    projector = Projector(sessions, sealer)
    await projector.apply([await record(events[0], sealer=sealer), analyzed, letter])
    await projector.apply([letter])
    async with sessions() as session:
        letters = (await session.scalars(select(CallDeadLetter))).all()
    assert [(x.id, x.group, x.event_type, x.original_topic) for x in letters] == [
        ("42", "voiceticket-jira-writer", v1.CallAnalyzed.ce_type(), v1.CallAnalyzed.topic())
    ]
    assert letters[0].reason == "Jira answered 400: no such field"
    row = await _row(sessions)
    assert (
        row is not None
        and row.error == "voiceticket-jira-writer: PermanentError: Jira answered 400: no such field"
    )
    assert row.request_key is None


async def test_sms_states(sessions: async_sessionmaker[AsyncSession]) -> None:
    base = {"tenant_id": "acme", "issue_key": "SUP-1"}
    opted = v1.NotificationFailed(
        **base, call_sid=SID, reason="opted out", error_code="21610", occurred_at=T0
    )
    failed = v1.NotificationFailed(
        **base, call_sid=OTHER, reason="invalid number", error_code="21211", occurred_at=T0
    )
    await Projector(sessions).apply([await record(opted), await record(failed)])
    assert (await _row(sessions)).sms_state == "opted-out"  # type: ignore[union-attr]
    assert (await _row(sessions, OTHER)).sms_state == "failed"  # type: ignore[union-attr]


async def test_erasure_removes_the_row_and_late_records_do_not_bring_it_back(
    sessions: async_sessionmaker[AsyncSession], sealer: Sealer
) -> None:
    records = [await record(e, sealer=sealer) for e in call_events()]
    letter = dead_letter(records[4], "voiceticket-jira-writer", "7")
    projector = Projector(sessions, sealer)
    await projector.apply([*records[:5], letter])
    await projector.apply([await record(e) for e in call_events(OTHER)])
    async with sessions() as session:
        # what the erasure does: the key destroyed (a tombstone), the rows forgotten
        session.add(CallKeyRow(tenant_id="acme", call_sid=SID, subject="s", key_id="k", wrapped_key=None))
        assert await forget_calls(session, [SID]) == 1
        await session.commit()
    assert await _row(sessions) is None
    await projector.apply(records[5:])  # the bus still delivers the call's later records
    assert await _row(sessions) is None
    async with sessions() as session:
        assert (await session.scalars(select(CallDeadLetter))).all() == []
    assert await _row(sessions, OTHER) is not None  # another call is untouched


async def test_tenant_removal_forgets_its_calls(sessions: async_sessionmaker[AsyncSession]) -> None:
    await Projector(sessions).apply([await record(e) for e in call_events(SID, "acme")])
    await Projector(sessions).apply([await record(e) for e in call_events(OTHER, "globex")])
    async with sessions() as session:
        await forget_tenant_calls(session, "acme")
        await session.commit()
    assert await _row(sessions) is None
    assert await _row(sessions, OTHER) is not None


async def test_retention_purges_old_calls(sessions: async_sessionmaker[AsyncSession]) -> None:
    await Projector(sessions).apply([await record(e) for e in call_events(SID, start=T0)])
    await Projector(sessions).apply(
        [await record(e) for e in call_events(OTHER, start=T0 + timedelta(days=10))]
    )
    now = T0 + timedelta(days=15)
    assert await purge_calls(sessions, now, retention_days=14, dry_run=True) == 1
    assert await _row(sessions) is not None  # a dry run deletes nothing
    assert await purge_calls(sessions, now, retention_days=14) == 1
    assert await _row(sessions) is None
    assert await _row(sessions, OTHER) is not None


async def _until(predicate: Any, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if await predicate():
                return
            await asyncio.sleep(0.05)


async def test_the_embedded_feed_follows_events_and_dead_letters_from_its_position(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    bus = EmbeddedEventBus(tmp_path / "bus.db", "test", poll_interval=0.05)
    await bus.start()
    events = call_events()

    async def refuse(event: Any) -> list[Any]:
        raise PermanentError("Jira answered 400")

    consumer = asyncio.create_task(bus.consume("voiceticket-jira-writer", [v1.CallAnalyzed], refuse))
    projector = Projector(sessions)
    feed_task = asyncio.create_task(
        follow(EmbeddedFeed(tmp_path / "bus.db", poll_seconds=0.05), projector.apply)
    )
    try:
        for event in events[:5]:
            await bus.publish(event)

        async def dead_lettered() -> bool:
            async with sessions() as session:
                return bool((await session.scalars(select(CallDeadLetter))).all())

        await _until(dead_lettered)
        row = await _row(sessions)
        assert row is not None and row.analyzed_at is not None and row.request_key is None
        letters = await bus.dead_letters("voiceticket-jira-writer")
        async with sessions() as session:
            stored = (await session.scalars(select(CallDeadLetter))).one()
        assert stored.id == letters[0].letter_id  # the id the bus replays by
        feed_task.cancel()
        await asyncio.gather(feed_task, return_exceptions=True)
        seen = projector.applied
        # restarted, the feed continues from the group's position: nothing is read twice
        feed_task = asyncio.create_task(
            follow(EmbeddedFeed(tmp_path / "bus.db", poll_seconds=0.05), projector.apply)
        )
        await bus.publish(events[5])

        async def ticketed() -> bool:
            found = await _row(sessions)
            return found is not None and found.request_key == "SUP-7"

        await _until(ticketed)
        assert projector.applied == seen + 1
        cursor = await bus.db.execute("SELECT position FROM bus_offsets WHERE consumer_group = ?", (GROUP,))
        assert await cursor.fetchone() is not None
    finally:
        for task in (feed_task, consumer):
            task.cancel()
        await asyncio.gather(feed_task, consumer, return_exceptions=True)
        await bus.stop()
