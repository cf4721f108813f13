"""The embedded bus writes concurrent outcomes and publishes in shared transactions (group
commit), and still moves a group's position only past records that are all done."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from voiceticket_common.bus.embedded import EmbeddedEventBus
from voiceticket_common.events import Event, NotificationSent, TicketCreated
from voiceticket_common.testing import cancelled, ticket_created


def ticket(n: int) -> TicketCreated:
    return ticket_created(call_sid=f"CA{n:032x}", issue_key=f"HELP-{n}")


async def position(bus: EmbeddedEventBus, group: str) -> int:
    cursor = await bus.db.execute("SELECT position FROM bus_offsets WHERE consumer_group = ?", (group,))
    row = await cursor.fetchone()
    await cursor.close()
    return int(row[0]) if row else 0


async def test_concurrent_outcomes_share_transactions(tmp_path: Path) -> None:
    bus = EmbeddedEventBus(tmp_path / "bus.db", source="test", poll_interval=0.02)
    await bus.start()
    try:
        await asyncio.gather(*(bus.publish(ticket(n)) for n in range(40)))
        publishes = bus.transactions
        assert publishes < 40, f"40 concurrent publishes took {publishes} transactions"

        async def notify(event: Event) -> Sequence[Event]:
            await asyncio.sleep(0.2)
            return [
                NotificationSent(
                    tenant_id="acme", call_sid=event.call_sid, issue_key="HELP-1", message_sid="SM1"
                )
            ]

        task = asyncio.create_task(bus.consume("g", [TicketCreated], notify, max_in_flight=20))
        for _ in range(200):
            if await position(bus, "g") >= 40:
                break
            await asyncio.sleep(0.05)
        await cancelled(task)
        outcomes = bus.transactions - publishes
        assert await position(bus, "g") == 40
        assert outcomes <= 10, f"40 records' outcomes and commits took {outcomes} transactions"
        cursor = await bus.db.execute(
            "SELECT COUNT(*) FROM bus_records WHERE topic = ?", (NotificationSent.topic(),)
        )
        assert (await cursor.fetchone()) == (40,), "every outcome stored once"
    finally:
        await bus.stop()


async def test_the_position_waits_for_a_slow_earlier_record(tmp_path: Path) -> None:
    bus = EmbeddedEventBus(tmp_path / "bus.db", source="test", poll_interval=0.02)
    await bus.start()
    release = asyncio.Event()
    done: list[str] = []

    async def handler(event: Event) -> Sequence[Event]:
        if event.call_sid == ticket(0).call_sid:
            await release.wait()
        done.append(event.call_sid)
        return []

    try:
        for n in range(5):
            await bus.publish(ticket(n))
        task = asyncio.create_task(bus.consume("g", [TicketCreated], handler))
        for _ in range(100):
            if len(done) == 4:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert len(done) == 4 and await position(bus, "g") == 0, "not past the unfinished first record"
        release.set()
        for _ in range(100):
            if await position(bus, "g") == 5:
                break
            await asyncio.sleep(0.02)
        assert await position(bus, "g") == 5
        await cancelled(task)
    finally:
        await bus.stop()


async def test_a_write_to_another_topic_does_not_send_an_idle_consumer_to_the_log(tmp_path: Path) -> None:
    """Consumers wake for writes to their own topics only: before, every group read the log after
    every write, and under load the readers kept the writer waiting for the connection."""
    bus = EmbeddedEventBus(tmp_path / "bus.db", source="test", poll_interval=30)
    await bus.start()
    reads: list[str] = []
    await bus.db.set_trace_callback(
        lambda sql: reads.append(sql) if sql.startswith("SELECT position, topic") else None
    )
    handled: list[str] = []

    async def handle(event: Event) -> Sequence[Event]:
        handled.append(event.call_sid)
        return []

    task = asyncio.create_task(bus.consume("g", [NotificationSent], handle))
    try:
        for _ in range(100):  # the consumer's first read of the (empty) log
            if reads:
                break
            await asyncio.sleep(0.01)
        before = len(reads)
        for n in range(30):
            await bus.publish(ticket(n))
        await asyncio.sleep(0.1)
        assert len(reads) == before, f"{len(reads) - before} reads for 30 writes to another topic"
        await bus.publish(
            NotificationSent(
                tenant_id="acme", call_sid="CA" + "e" * 32, issue_key="HELP-1", message_sid="SM1"
            )
        )
        for _ in range(200):
            if handled:
                break
            await asyncio.sleep(0.01)
        assert handled == ["CA" + "e" * 32]  # a write to its own topic still wakes it at once
    finally:
        await cancelled(task)
        await bus.stop()
