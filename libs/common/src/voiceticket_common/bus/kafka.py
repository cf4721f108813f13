"""The Kafka adapter of the bus port, on aiokafka.

Producer: idempotent, ``acks=all``, key = CallSid, CloudEvents binary-mode headers plus
``traceparent``; ``publish`` returns once the broker acknowledged the record, without lingering
for a batch (records sent meanwhile are batched anyway while a request is in flight). Consumer
(``kafka_member.py``): up to ``max_in_flight`` records at once, one key's records in order,
manual commits of each partition's highest contiguous completed offset, a record completing only
after its outcome events were acknowledged (or it was dead-lettered). Every client it opens
(producer, consumers, admin) connects with the same security (``kafka_security.py``: TLS, SASL).
Topics: created when missing with the configured partitions, replication factor and
``min.insync.replicas``, or, where the platform provisions them (``create_topics=False``), checked
to exist (:class:`TopicsMissing` otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    OutOfOrderSequenceNumber,
    TopicAlreadyExistsError,
    UnknownProducerId,
)

from ..events import Event
from ..metrics import consumer_tracked, dead_lettered
from ..retry_budget import POLL_INTERVAL_SECONDS
from ..sealing import CallErased, Sealer
from ..tracing import inject_headers, process_span, send_span
from . import envelope as wire
from .delivery import DeadLettered, drop_erased, follow_record, is_erased, open_with_retries, run_handler
from .kafka_member import KafkaGroupMember
from .kafka_security import PLAINTEXT, KafkaSecurity, connection_failure
from .port import (
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_MAX_IN_FLIGHT,
    FOLLOW_LOOKBACK_SECONDS,
    DeadLetter,
    FollowHandler,
    Handler,
    RetryPolicy,
    TopicRetention,
    dead_letter_topic,
)
from .progress import ConsumerProgress

log = logging.getLogger(__name__)

BROKEN_PRODUCER = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch)
"""Errors after which a producer's idempotent session is unusable (aiokafka does not recover it)."""


class TopicsMissing(RuntimeError):
    """Topics this service needs are not on the cluster and it was told not to create them."""

    def __init__(self, topics: Sequence[str]) -> None:
        self.topics = sorted(topics)
        super().__init__(
            f"Kafka topics missing on the cluster: {', '.join(self.topics)} (topic creation is off, "
            "VOICETICKET_KAFKA_CREATE_TOPICS=false: provision them, docs/deployment.md 'Kafka security')"
        )


class KafkaEventBus:
    """Publishes and consumes events on a Kafka cluster."""

    def __init__(
        self,
        bootstrap_servers: str,
        source: str,
        *,
        partitions: int = 3,
        replication_factor: int = 1,
        topic_namespace: str = "",
        retention: TopicRetention = TopicRetention(),
        sealer: Sealer | None = None,
        security: KafkaSecurity = PLAINTEXT,
        min_insync_replicas: int | None = None,
        create_topics: bool = True,
    ) -> None:
        security.check()
        self._security = security
        self._min_insync = min_insync_replicas
        self._create_topics = create_topics
        self._sealer = sealer
        self._retention = retention
        self._namespace = topic_namespace
        self._bootstrap = bootstrap_servers
        self._source = source
        self._partitions = partitions
        self._replication = replication_factor
        self._producer: AIOKafkaProducer | None = None
        self._producer_swap = asyncio.Lock()
        self.producers_replaced = 0
        """Producers replaced because the broker refused their idempotent session (tests read it)."""
        self._known_topics: set[str] = set()
        self._members: dict[str, KafkaGroupMember] = {}

    def _client(self) -> dict[str, Any]:
        """The connection arguments of every client this adapter opens (security included)."""
        return {"bootstrap_servers": self._bootstrap, **self._security.client_kwargs()}

    async def _open(self, client: Any) -> None:
        """Start an aiokafka client; when it cannot connect, raise ``KafkaConnectFailed`` saying
        why (refused credentials, an unverified certificate) instead of "Unable to bootstrap"."""
        try:
            await client.start()
        except KafkaConnectionError as exc:
            with contextlib.suppress(Exception):
                await (client.close() if isinstance(client, AIOKafkaAdminClient) else client.stop())
            raise await connection_failure(self._bootstrap, self._security) from exc

    def consumer_progress(self, group: str) -> ConsumerProgress | None:
        """``group``'s member in this process, as the probes read it (``bus/progress.py``)."""
        member = self._members.get(group)
        return member.progress() if member is not None else None

    async def ping(self) -> None:
        """One metadata request to the cluster (the readiness check; the caller bounds its time);
        raises when no broker answered."""
        if self._producer is None:
            raise RuntimeError("bus not started")
        await self._producer.client.fetch_all_metadata()

    def topic(self, name: str) -> str:
        """The cluster topic for a logical topic: namespaced when several environments share a cluster."""

        return f"{self._namespace}.{name}" if self._namespace else name

    async def start(self) -> None:
        self._producer = self._new_producer()
        await self._open(self._producer)

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self._client(),
            client_id=self._source,
            enable_idempotence=True,
            acks="all",
            # No waiting for more records per send: a webhook's publish pays the broker's round
            # trip only. Concurrent sends still share a batch while a request is in flight.
            linger_ms=0,
        )

    async def _send_record(self, topic: str, value: bytes, key: bytes | None, headers: wire.Headers) -> None:
        """``send_and_wait`` on the live producer. A producer whose idempotent session the broker
        no longer accepts (after a broker restart lost its sequence state: every later batch is
        refused with OutOfOrderSequenceNumber, and aiokafka never resets it) is replaced by a new
        one (a new producer id) and the record sent once more: the refused batch was not written."""
        producer = self._producer
        if producer is None:
            raise RuntimeError("bus not started")
        try:
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        except BROKEN_PRODUCER as exc:
            log.warning("producer session refused by the broker; starting a new producer",
                        extra={"error_type": type(exc).__name__})  # fmt: skip
            fresh = await self._replace_producer(producer)
            await fresh.send_and_wait(topic, value=value, key=key, headers=headers)

    async def _replace_producer(self, broken: AIOKafkaProducer) -> AIOKafkaProducer:
        async with self._producer_swap:
            current = self._producer
            if current is None:
                raise RuntimeError("bus stopped")
            if current is not broken:  # a concurrent failure replaced it already
                return current
            fresh = self._new_producer()
            await self._open(fresh)
            self._producer = fresh
            self.producers_replaced += 1
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                await broken.stop()
        return fresh

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def ensure_topics(
        self, event_types: Sequence[type[Event]], dead_letter_groups: Sequence[str] = ()
    ) -> None:
        """Create missing topics (or, with topic creation off, raise :class:`TopicsMissing`);
        consumers subscribe to explicit, existing topics."""

        await self._ensure(
            [*(cls.topic() for cls in event_types), *map(dead_letter_topic, dead_letter_groups)]
        )

    async def _ensure(self, topics: Sequence[str]) -> None:
        missing = [self.topic(t) for t in topics if self.topic(t) not in self._known_topics]
        if not missing:
            return
        admin = AIOKafkaAdminClient(**self._client(), client_id=self._source)
        await self._open(admin)
        try:
            existing = set(await admin.list_topics())
            if not self._create_topics and set(missing) - existing:
                raise TopicsMissing(list(set(missing) - existing))
            new = [
                NewTopic(
                    name=t,
                    num_partitions=self._partitions,
                    replication_factor=self._replication,
                    topic_configs=self._topic_configs(t),
                )
                for t in missing
                if t not in existing
            ]
            if new:
                try:
                    await admin.create_topics(new)
                except TopicAlreadyExistsError:
                    pass
        finally:
            await admin.close()
        self._known_topics.update(missing)

    def _topic_configs(self, topic: str) -> dict[str, str]:
        """Retention of a topic we create (existing topics keep theirs; docs/operations.md)."""

        dead_letters = self._logical(topic).startswith(dead_letter_topic(""))
        keep = self._retention.dead_letters if dead_letters else self._retention.events
        configs = {"cleanup.policy": "delete", "retention.ms": str(int(keep.total_seconds() * 1000))}
        if self._min_insync is not None:
            configs["min.insync.replicas"] = str(self._min_insync)
        return configs

    async def publish(self, event: Event, *, discriminator: str = "") -> None:
        await self._send(self.topic(event.topic()), wire.envelope_for(event, self._source, discriminator))

    async def _send(self, topic: str, envelope: wire.Envelope) -> None:
        if self._producer is None:
            raise RuntimeError("bus not started")
        event = envelope.event
        with send_span(topic, event.call_sid, event.tenant_id, envelope.id):
            envelope.extra_headers.update(inject_headers())
            key, value, headers = await self._encode(envelope)
            await self._send_record(topic, value, key, headers)

    async def _encode(self, envelope: wire.Envelope) -> tuple[bytes, bytes, wire.Headers]:
        """The one place this adapter turns an event into a record (personal fields sealed)."""
        return await wire.seal_record(envelope, self._sealer)

    async def _decode(self, record: ConsumerRecord[bytes, bytes], retry: RetryPolicy) -> wire.Envelope:
        """The one place this adapter turns a record into an event: MalformedMessage if not one,
        CallErased if its call's key is destroyed."""
        return await open_with_retries(record.value, record.headers, self._sealer, retry)

    async def _dead_letter(
        self, group: str, record: ConsumerRecord[bytes, bytes], outcome: DeadLettered
    ) -> None:
        if self._producer is None:
            raise RuntimeError("bus not started")
        headers = outcome.headers(list(record.headers or []), topic=self._logical(record.topic), group=group)
        headers += [
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
        ]
        await self._send_record(
            self.topic(dead_letter_topic(group)), record.value or b"", record.key, headers
        )
        dead_lettered(group, outcome.error_type)
        log.error(
            "message dead-lettered",
            extra={
                "group": group,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error_type": outcome.error_type,
                "error": outcome.reason,
            },
        )

    async def consume(
        self,
        group: str,
        event_types: Sequence[type[Event]],
        handler: Handler,
        retry: RetryPolicy = RetryPolicy(),
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        drain_seconds: float = DEFAULT_DRAIN_SECONDS,
    ) -> None:
        await self.ensure_topics(event_types, [group])
        topics = [self.topic(cls.topic()) for cls in event_types]
        consumer = AIOKafkaConsumer(
            **self._client(),
            group_id=group,
            client_id=f"{self._source}-{group}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            # The member polls while its records run (paused at the in-flight limit), so this is
            # not a bound on one record's time; it is the rebalance timeout, how long the group
            # waits for members to hand their work back (``drain_seconds``, well below it).
            # The services' settings keep a record's retries within it (``fits_poll_interval``).
            max_poll_interval_ms=int((retry.max_total_seconds + POLL_INTERVAL_SECONDS) * 1000),
        )

        async def process(record: ConsumerRecord[bytes, bytes]) -> None:
            await self._process(group, record, handler, retry)

        member = KafkaGroupMember(
            consumer, group, process, max_in_flight=max_in_flight, drain_seconds=drain_seconds
        )
        consumer.subscribe(topics, listener=member.listener)
        await self._open(consumer)
        log.info("consuming", extra={"group": group, "topics": topics, "max_in_flight": max_in_flight})
        try:
            self._members[group] = member
            with consumer_tracked(group, member.progress):
                await member.run()
        finally:
            self._members.pop(group, None)
            await consumer.stop()

    async def follow(self, event_types: Sequence[type[Event]], handler: FollowHandler) -> None:
        """Every partition of the topics assigned to this process alone (no group, no commits),
        from the first record at most ``FOLLOW_LOOKBACK_SECONDS`` old (port.EventFollower)."""

        since_ms = int((time.time() - FOLLOW_LOOKBACK_SECONDS) * 1000)
        await self.ensure_topics(event_types)
        if self._producer is None:
            raise RuntimeError("bus not started")
        partitions = [
            TopicPartition(self.topic(cls.topic()), p)
            for cls in event_types
            for p in sorted(await self._producer.partitions_for(self.topic(cls.topic())))
        ]
        consumer: AIOKafkaConsumer = AIOKafkaConsumer(
            **self._client(),
            client_id=f"{self._source}-follower",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await self._open(consumer)
        try:
            consumer.assign(partitions)
            await self._seek_since(consumer, partitions, since_ms)
            log.info("following", extra={"topics": sorted({tp.topic for tp in partitions})})
            while True:
                for tp, records in (await consumer.getmany(timeout_ms=1000)).items():
                    for record in records:
                        await follow_record(record.value, record.headers, self._sealer, handler, tp.topic)
        finally:
            await consumer.stop()

    @staticmethod
    async def _seek_since(
        consumer: AIOKafkaConsumer, partitions: list[TopicPartition], since_ms: int
    ) -> None:
        """Each partition at its first record from ``since_ms`` on; where there is none yet, at
        the end as it was before asking (a record written meanwhile is read, not skipped)."""
        ends = await consumer.end_offsets(partitions)
        found = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
        for tp in partitions:
            at = found.get(tp)
            consumer.seek(tp, at.offset if at is not None else ends[tp])

    async def _process(
        self, group: str, record: ConsumerRecord[bytes, bytes], handler: Handler, retry: RetryPolicy
    ) -> None:
        headers = wire.header_map(record.headers)
        try:
            envelope = await self._decode(record, retry)
        except CallErased:
            with process_span(record.topic, group, headers, None, None, headers.get("ce_id")):
                drop_erased(group, record.topic)
            return
        except wire.MalformedMessage as exc:
            with process_span(record.topic, group, headers, None, None, headers.get("ce_id")):
                await self._dead_letter(
                    group, record, DeadLettered(reason=str(exc), error_type="MalformedMessage", attempts=1)
                )
            return
        event = envelope.event
        with process_span(
            record.topic,
            group,
            headers,
            event.call_sid,
            event.tenant_id,
            envelope.id,
            record.partition,
            record.offset,
        ):
            outcome = await run_handler(event, handler, retry)
            try:
                if isinstance(outcome, DeadLettered):
                    if await is_erased(self._sealer, event):
                        raise CallErased("erased while it was handled")
                    await self._dead_letter(group, record, outcome)
                    return
                for out in outcome.events:
                    await self.publish(out)
            except CallErased:
                drop_erased(group, record.topic)

    def _logical(self, topic: str) -> str:
        """The logical topic of a cluster topic (without this bus's namespace)."""

        prefix = f"{self._namespace}." if self._namespace else ""
        return topic[len(prefix) :] if prefix and topic.startswith(prefix) else topic

    async def _read_all(self, partitions: list[TopicPartition]) -> list[ConsumerRecord[bytes, bytes]]:
        consumer: AIOKafkaConsumer = AIOKafkaConsumer(**self._client(), enable_auto_commit=False)
        await self._open(consumer)
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            records: list[ConsumerRecord[bytes, bytes]] = []
            while any([await consumer.position(tp) < offset for tp, offset in end.items()]):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += batch
        finally:
            await consumer.stop()
        return records

    async def _dead_letter_partitions(self, group: str) -> list[TopicPartition]:
        if self._producer is None:
            raise RuntimeError("bus not started")
        await self._ensure([dead_letter_topic(group)])
        topic = self.topic(dead_letter_topic(group))
        return [TopicPartition(topic, p) for p in sorted(await self._producer.partitions_for(topic))]

    async def dead_letters(self, group: str) -> list[DeadLetter]:
        records = await self._read_all(await self._dead_letter_partitions(group))
        records.sort(key=lambda r: r.timestamp)
        return [
            wire.read_dead_letter(f"{group}:{r.partition}:{r.offset}", r.key, list(r.headers or []))
            for r in records
        ]

    async def replay(self, letter: DeadLetter) -> None:
        """Publish a dead letter again to the topic it came from, with its original headers."""

        if self._producer is None:
            raise RuntimeError("bus not started")
        group, partition, offset = letter.letter_id.rsplit(":", 2)
        tp = TopicPartition(self.topic(dead_letter_topic(group)), int(partition))
        consumer: AIOKafkaConsumer = AIOKafkaConsumer(**self._client(), enable_auto_commit=False)
        await self._open(consumer)
        try:
            consumer.assign([tp])
            consumer.seek(tp, int(offset))
            record = await consumer.getone()
        finally:
            await consumer.stop()
        # Letters written before topics were recorded without their namespace name the cluster topic.
        namespaced = bool(self._namespace) and letter.original_topic.startswith(f"{self._namespace}.")
        await self._send_record(
            letter.original_topic if namespaced else self.topic(letter.original_topic),
            record.value or b"",
            record.key,
            wire.original_headers(list(record.headers or [])),
        )
