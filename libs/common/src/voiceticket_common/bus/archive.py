"""Reading back what the bus still holds of some calls: for a caller's export and erasure.

An erasure destroys the calls' data keys (``voiceticket_common.sealing``), which makes every copy of
their personal fields unreadable, wherever it is. Where records can also be deleted, the archive
deletes them too: the embedded event log is a SQLite table, so its rows go (and the file's free
pages are overwritten and handed back). Kafka topics are append-only: there the records stay, sealed
under destroyed keys, until the topics' retention removes them.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosqlite
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from ..events.base import TOPIC_PREFIX
from .envelope import Headers, header_map
from .port import dead_letter_topic


@dataclass(frozen=True)
class ArchivedRecord:
    """One record of a call as the bus holds it (its value may hold sealed personal fields)."""

    topic: str
    """The logical topic (without a namespace)."""
    call_sid: str
    value: bytes | None
    headers: Headers

    @property
    def event_type(self) -> str:
        return header_map(self.headers).get("ce_type", "")

    @property
    def dead_letter_group(self) -> str | None:
        """The consumer group that dead-lettered it; None for a record of an event topic."""
        prefix = dead_letter_topic("")
        return self.topic[len(prefix) :] if self.topic.startswith(prefix) else None

    def data(self) -> dict[str, object] | None:
        """The JSON value, None when it is not a JSON object."""
        try:
            parsed = json.loads(self.value or b"")
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None


class EventArchive(Protocol):
    async def records(self, call_sids: Collection[str]) -> list[ArchivedRecord]:
        """Every record the bus holds keyed by one of ``call_sids``, dead letters included."""

    async def forget(self, call_sids: Collection[str]) -> int | None:
        """Delete those records where the bus allows it; how many, or None where it cannot (Kafka)."""


class EmbeddedArchive:
    """The embedded bus's SQLite event log (``bus_records``), opened on its own connection."""

    def __init__(self, path: Path | str) -> None:
        self._path = str(path)

    @property
    def _exists(self) -> bool:
        return Path(self._path).exists()  # a stat on a local file: not worth a thread

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self._path, isolation_level=None)
        await db.execute("PRAGMA busy_timeout=10000")
        await db.execute("PRAGMA secure_delete=ON")
        return db

    async def records(self, call_sids: Collection[str]) -> list[ArchivedRecord]:
        if not call_sids or not self._exists:
            return []
        db = await self._connect()
        try:
            marks = ",".join("?" * len(call_sids))
            cursor = await db.execute(
                f"SELECT topic, key, value, headers FROM bus_records WHERE key IN ({marks}) ORDER BY position",  # noqa: S608 - placeholders only
                [sid.encode() for sid in call_sids],
            )
            rows = list(await cursor.fetchall())
        finally:
            await db.close()
        return [
            ArchivedRecord(
                topic=str(topic),
                call_sid=bytes(key or b"").decode("utf-8", "replace"),
                value=None if value is None else bytes(value),
                headers=[(str(k), str(v).encode()) for k, v in json.loads(headers)],
            )
            for topic, key, value, headers in rows
        ]

    async def forget(self, call_sids: Collection[str]) -> int | None:
        if not call_sids or not self._exists:
            return 0
        db = await self._connect()
        try:
            marks = ",".join("?" * len(call_sids))
            cursor = await db.execute(
                f"DELETE FROM bus_records WHERE key IN ({marks})",  # noqa: S608 - placeholders only
                [sid.encode() for sid in call_sids],
            )
            deleted = cursor.rowcount
            await cursor.close()
            # secure_delete overwrote the rows' pages; hand free pages back and fold the WAL (which
            # still holds the old pages) into the file, so no copy stays readable on disk.
            for pragma in ("PRAGMA incremental_vacuum", "PRAGMA wal_checkpoint(TRUNCATE)"):
                await (await db.execute(pragma)).fetchall()  # stepped to the end: all of it runs
        finally:
            await db.close()
        return max(deleted, 0)


class KafkaArchive:
    """Every ``voiceticket`` topic of the cluster (in ``namespace``), read from the beginning."""

    def __init__(self, bootstrap_servers: str, namespace: str = "", **client_options: object) -> None:
        self._bootstrap = bootstrap_servers
        self._namespace = namespace
        self._options = client_options

    def _logical(self, topic: str) -> str | None:
        prefix = f"{self._namespace}." if self._namespace else ""
        if prefix and not topic.startswith(prefix):
            return None
        logical = topic[len(prefix) :]
        return logical if logical.startswith(f"{TOPIC_PREFIX}.") else None

    async def records(self, call_sids: Collection[str]) -> list[ArchivedRecord]:
        wanted = {sid.encode() for sid in call_sids}
        if not wanted:
            return []
        partitions = await self._partitions()
        if not partitions:
            return []
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, **self._options
        )
        await consumer.start()
        found: list[ArchivedRecord] = []
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            pending = {tp for tp, offset in end.items() if offset > 0}
            while pending:
                for batch in (await consumer.getmany(*pending, timeout_ms=500)).values():
                    for record in batch:
                        if record.key in wanted:
                            found.append(
                                ArchivedRecord(
                                    topic=self._logical(record.topic) or record.topic,
                                    call_sid=(record.key or b"").decode("utf-8", "replace"),
                                    value=record.value,
                                    headers=list(record.headers or []),
                                )
                            )
                pending = {tp for tp in pending if await consumer.position(tp) < end[tp]}
        finally:
            await consumer.stop()
        return found

    async def _partitions(self) -> list[TopicPartition]:
        """Every partition of the cluster's ``voiceticket`` topics (a consumer only knows the
        partitions of what it subscribed to; the admin client describes them all)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, **self._options)
        await admin.start()
        try:
            topics = sorted(t for t in await admin.list_topics() if self._logical(t) is not None)
            described = await admin.describe_topics(topics) if topics else []
        finally:
            await admin.close()
        return [
            TopicPartition(str(topic["topic"]), int(part["partition"]))
            for topic in described
            for part in topic.get("partitions", [])
        ]

    async def forget(self, call_sids: Collection[str]) -> int | None:
        return None  # append-only: the records stay, sealed under destroyed keys, until retention
