"""What the suite reads to judge a run: the stand-ins' records and the broker's topics and groups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from voiceticket_sandbox.devstack import SandboxUrls


@dataclass(frozen=True)
class World:
    """The outside world as the stand-ins saw it at one moment."""

    issues: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    requests: dict[str, list[dict[str, Any]]]


async def look(http: httpx.AsyncClient, urls: SandboxUrls, *, with_requests: bool = False) -> World:
    issues = (await http.get(f"{urls.jira}/_sandbox/issues")).json()
    messages = (await http.get(f"{urls.twilio}/_sandbox/messages")).json()
    requests: dict[str, list[dict[str, Any]]] = {}
    if with_requests:
        for provider in ("twilio", "openai", "jira"):
            requests[provider] = (await http.get(f"{getattr(urls, provider)}/_sandbox/requests")).json()
    return World(issues, messages, requests)


async def partitions_of(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    """The partitions of ``topics`` (from the cluster's metadata, waiting for it)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        return [TopicPartition(t, p) for t in topics for p in sorted(await producer.partitions_for(t))]
    finally:
        await producer.stop()


async def topic_keys(bootstrap: str, topic: str, timeout: float = 30.0) -> list[str]:
    """Every record key on ``topic`` now, read from the beginning (duplicates kept)."""
    return [key for key, _ in await topic_records(bootstrap, topic, timeout)]


async def topic_records(bootstrap: str, topic: str, timeout: float = 30.0) -> list[tuple[str, bytes]]:
    """Every record on ``topic`` now as (key, value), read from the beginning."""
    partitions = await partitions_of(bootstrap, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        keys: list[tuple[str, bytes]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= end[tp] for pos, tp in zip(positions, partitions, strict=True)):
                return keys
            if loop.time() > deadline:
                raise TimeoutError(f"{topic}: not read to its end in {timeout:.0f}s")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                keys += [((r.key or b"").decode(errors="replace"), r.value or b"") for r in records]
    finally:
        await consumer.stop()


async def group_lags(bootstrap: str, inputs: dict[str, list[str]]) -> dict[str, int]:
    """Per consumer group, the records of its input topics (cluster names) not committed yet: 0
    for every group means nothing is in flight or waiting anywhere in the pipeline."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        lags: dict[str, int] = {}
        for group, topics in inputs.items():
            partitions = await partitions_of(bootstrap, topics)
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            ends = await consumer.end_offsets(partitions)
            lag = 0
            for tp in partitions:
                meta = committed.get(tp)
                offset = meta.offset if meta is not None and meta.offset >= 0 else 0
                lag += max(0, ends[tp] - offset)
            lags[group] = lag
        return lags
    finally:
        await consumer.stop()
        await admin.close()
