"""A caller's export and erasure, end to end on the embedded runtime and on Kafka.

Personal fields never reach a store in clear (they are sealed under the call's data key wherever
they are written); the export opens them; the erasure destroys the keys, deletes the embedded log's
rows, deletes the recording at Twilio, and leaves nothing that reads back: not in any file of the
data directory, not on any topic (dead letters included), not in the logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
from voiceticket.samples import sample_calls
from voiceticket_common.bus.archive import EmbeddedArchive
from voiceticket_sandbox import run_sandboxes
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE, configure_sandboxes, seed
from voiceticket_sandbox.testing import invalid_provider_requests

pytestmark = pytest.mark.integration

SAMPLE = sample_calls()["vpn-outage"]
OTHER_CALLER = "+14155550177"


def schema_vocabulary() -> str:
    """Every word of the product's database schemas (its migrations), lower case: a word of the
    transcript that also names a table or column (the sample's "blocked", say) is not a telltale."""
    root = Path(__file__).resolve().parents[2]
    return " ".join(p.read_text().lower() for p in root.glob("services/*/src/*/migrations/versions/*.py"))


def telltales() -> list[bytes]:
    """What must not read back: the number, and distinctive words of what the caller said."""
    schema = schema_vocabulary()
    words = [w.strip(".,!?") for w in SAMPLE.transcript.split() if len(w.strip(".,!?")) >= 7]
    words = [w for w in words if w.lower() not in schema]
    return [SAMPLE.caller.encode(), SAMPLE.caller.lstrip("+").encode(), *(w.encode() for w in words[:4])]


def files_holding(directory: Path, needles: list[bytes]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        raw = path.read_bytes()
        hits = [n.decode() for n in needles if n in raw]
        if hits:
            found[str(path.relative_to(directory))] = hits
    return found


async def until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("voiceticket_sandbox"):
            return  # the stand-ins are Twilio's, OpenAI's and Jira's side, not ours
        self.lines.append(f"{record.getMessage()} {record.__dict__}")


async def test_erasure_on_the_embedded_runtime_leaves_nothing_that_reads_back(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    logs = Captured()
    logging.getLogger().addHandler(logs)
    try:
        async with run_sandboxes() as urls, httpx.AsyncClient(timeout=30) as http:
            await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
            (tmp_path / "seed.json").write_text(json.dumps(seed(urls.twilio, urls.openai, urls.jira)))
            options = EmbeddedOptions.against_sandboxes(data_dir, urls.twilio, tmp_path / "seed.json")
            async with EmbeddedRuntime(options) as runtime:
                caller = CallerSimulator(runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, urls.twilio)
                call = await caller.play_call(
                    SAMPLE.caller, SUPPORT_LINE, SAMPLE.audio, SAMPLE.transcript, SAMPLE.duration_seconds
                )
                other = await caller.play_call(
                    OTHER_CALLER, SUPPORT_LINE, SAMPLE.audio + b"\0", "Another caller entirely.", 5
                )

                async def both_texted() -> bool:
                    return len((await http.get(f"{urls.twilio}/_sandbox/messages")).json()) >= 2

                await until(both_texted)
                await asyncio.sleep(0.5)  # the notification events are stored too
                # Sealed all along: nothing of the caller is in clear in any of our files.
                assert files_holding(data_dir, telltales()) == {}

                admin = {"Authorization": f"Bearer {runtime.admin_token.get_secret_value()}"}
                base = runtime.config_api_url
                export = (
                    await http.post(
                        f"{base}/v1/privacy/exports", json={"phone": SAMPLE.caller}, headers=admin
                    )
                ).json()
                held = await EmbeddedArchive(data_dir / "bus.db").records([call.call_sid])

                report = (
                    await http.post(
                        f"{base}/v1/privacy/erasures",
                        json={"phone": SAMPLE.caller, "delete_recordings": True},
                        headers=admin,
                    )
                ).json()
                after = (
                    await http.post(
                        f"{base}/v1/privacy/exports", json={"phone": SAMPLE.caller}, headers=admin
                    )
                ).json()
                still_other = await EmbeddedArchive(data_dir / "bus.db").records([other.call_sid])
                issues = (await http.get(f"{urls.jira}/_sandbox/issues")).json()
                invalid = await invalid_provider_requests(http, urls.twilio, urls.openai, urls.jira)
                audit = (await http.get(f"{base}/v1/audit", headers=admin)).json()["items"]
    finally:
        logging.getLogger().removeHandler(logs)

    # The export: the caller's one call, every record the log held of it, opened.
    (exported,) = export["calls"]
    assert exported["call_sid"] == call.call_sid
    assert len(exported["records"]) == len(held) >= 6
    assert all(r["readable"] for r in exported["records"])
    transcribed = [r["data"] for r in exported["records"] if r["event_type"].endswith("call.transcribed.v1")]
    assert transcribed and transcribed[0]["transcript"] and transcribed[0]["caller_number"] == SAMPLE.caller
    (jira_request,) = export["customer_systems"]["jira_requests"]
    assert jira_request["issue_key"] in {i["key"] for i in issues}
    assert [r["recording_sid"] for r in export["customer_systems"]["twilio_recordings"]] == [
        call.recording_sid
    ]

    # The erasure: what the export showed is what went.
    assert report["keys_destroyed"] == 1 and report["event_log_records_deleted"] == len(held)
    assert [r["deleted"] for r in report["customer_systems"]["twilio_recordings"]] == [True]
    assert after["calls"][0]["records"] == [] and after["calls"][0]["erased_because"] == "caller_erasure"
    assert still_other, "another caller's call is untouched"

    # Nothing reads back: no file of ours, no log line.
    assert files_holding(data_dir, telltales()) == {}
    assert await EmbeddedArchive(data_dir / "bus.db").records([call.call_sid]) == [], "its rows are deleted"
    assert [line for line in logs.lines if any(t.decode() in line for t in telltales())] == []
    assert {"privacy.export", "privacy.erase"} <= {e["action"] for e in audit}
    assert invalid == []


# --- the distributed deployment: six processes on Kafka ------------------------------------------

KAFKA_CALLER = "+14155550142"
KAFKA_TRANSCRIPT = (
    "Hello, this is Morgan Oakridge. The invoicing portal rejects every login since the upgrade, "
    "please have someone call me back about it."
)
TELLTALES = [KAFKA_CALLER.encode(), b"Oakridge", b"invoicing portal"]


def _wait(predicate: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    return predicate()


async def _raw_records(bootstrap: str, namespace: str) -> list[tuple[str, bytes]]:
    """Every record of the stack's topics, as the broker holds it: (topic, key + value + headers)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(f"{namespace}.")]
        parts = [
            TopicPartition(d["topic"], p["partition"])
            for d in await admin.describe_topics(topics)
            for p in d["partitions"]
        ]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        out: list[tuple[str, bytes]] = []
        while any([await consumer.position(tp) < offset for tp, offset in end.items()]):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for r in batch:
                    raw = (
                        (r.key or b"")
                        + (r.value or b"")
                        + b"".join(k.encode() + (v or b"") for k, v in r.headers)
                    )
                    out.append((r.topic, raw))
        return out
    finally:
        await consumer.stop()


async def _ledger_rows(dsn: str) -> list[str]:
    """The transcriber's and analyzer's kept outcomes, as Postgres holds them."""
    import asyncpg

    rows: list[str] = []
    for database, table in (("transcriber", "transcriber_outcomes"), ("analyzer", "analyzer_outcomes")):
        conn = await asyncpg.connect(dsn.rsplit("/", 1)[0] + f"/{database}")
        try:
            rows += [r["outcome"] for r in await conn.fetch(f"SELECT outcome FROM {table}")]  # noqa: S608 - fixed names
        finally:
            await conn.close()
    return rows


async def _replay_all(bootstrap: str, namespace: str, group: str) -> tuple[int, int]:
    from voiceticket_common.bus.kafka import KafkaEventBus

    bus = KafkaEventBus(bootstrap, "privacy-test", topic_namespace=namespace)
    await bus.start()
    try:
        letters = await bus.dead_letters(group)
        for letter in letters:
            await bus.replay(letter)
        await asyncio.sleep(5)  # time enough to be dead-lettered again, were it not dropped
        return len(letters), len(await bus.dead_letters(group))
    finally:
        await bus.stop()


def test_erasure_on_kafka_crypto_shreds_every_topic_and_dead_letter(
    kafka_bootstrap: str, postgres_dsn: str, tmp_path: Path
) -> None:
    from voiceticket_sandbox.caller import make_tone_wav
    from voiceticket_sandbox.devstack import ACCOUNT_SID as STACK_ACCOUNT
    from voiceticket_sandbox.devstack import AUTH_TOKEN as STACK_TOKEN
    from voiceticket_sandbox.devstack import SUPPORT_LINE as STACK_LINE
    from voiceticket_sandbox.devstack import Stack

    namespace = "privacy-" + tmp_path.name[-8:].replace("_", "")
    stack = Stack(
        tmp_path,
        kafka_bootstrap,
        postgres_dsn,
        topic_namespace=namespace,
        extra_env={
            "CONFIG_API_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "CONFIG_API_KAFKA_TOPIC_NAMESPACE": namespace,
        },
    )
    try:
        stack.start()
        caller = CallerSimulator(stack.ingress_url, STACK_ACCOUNT, STACK_TOKEN, stack.sandbox.twilio)
        first = asyncio.run(caller.play_call(KAFKA_CALLER, STACK_LINE, make_tone_wav(2.0), KAFKA_TRANSCRIPT))
        assert _wait(
            lambda: [i for i in stack.issues() if first.call_sid in str(i)] and stack.sms_sent(), 180
        ), "the first call did not become a ticket and an SMS:\n" + "\n".join(
            f"--- {name}\n{text[-2000:]}" for name, text in stack.logs().items()
        )
        # The second call is refused by Jira for good: jira-writer dead-letters it.
        httpx.post(
            f"{stack.sandbox.jira}/_sandbox/faults",
            json={
                "method": "POST",
                "path_regex": "/rest/servicedeskapi/request$",
                "status": 400,
                "times": None,
            },
        ).raise_for_status()
        second = asyncio.run(
            caller.play_call(
                KAFKA_CALLER, STACK_LINE, make_tone_wav(2.5, frequency=500), KAFKA_TRANSCRIPT + " Again."
            )
        )
        admin = {"Authorization": f"Bearer {stack.admin_token}"}

        def privacy(operation: str) -> Any:
            url = f"{stack.config_api_url}/v1/privacy/{operation}"
            return httpx.post(url, json={"phone": KAFKA_CALLER}, headers=admin, timeout=30).json()

        def dead_lettered() -> dict[str, Any] | None:
            export = privacy("exports")
            calls = {c["call_sid"]: c for c in export["calls"]}
            letters = [r for r in calls.get(second.call_sid, {}).get("records", []) if r["dead_letter_group"]]
            return export if letters else None

        export = _wait(dead_lettered, 120)
        assert export, (
            "the refused call was not dead-lettered in time:\n" + stack.logs()["jira-writer"][-3000:]
        )
        raw_before = asyncio.run(_raw_records(kafka_bootstrap, namespace))
        ledgers = asyncio.run(_ledger_rows(postgres_dsn))

        report = privacy("erasures")
        after = privacy("exports")
        # An operator replays the dead letter: jira-writer drops it unread, and does not dead-letter it again.
        letters_before, letters_after = asyncio.run(
            _replay_all(kafka_bootstrap, namespace, "voiceticket-jira-writer")
        )
        assert _wait(lambda: "record of an erased call dropped" in stack.logs()["jira-writer"], 60)
        logs = stack.logs()
    finally:
        stack.stop()

    # Sealed at rest all along: no record of any topic, dead letters included, holds the caller in clear.
    assert raw_before and [t for t, raw in raw_before if any(n in raw for n in TELLTALES)] == []
    assert ledgers and all(
        "sealed" in row and not any(n.decode() in row for n in TELLTALES) for row in ledgers
    )
    # The export opened them: both calls, the dead letter included, the transcript readable.
    assert {c["call_sid"] for c in export["calls"]} == {first.call_sid, second.call_sid}
    opened = [r for c in export["calls"] for r in c["records"]]
    assert all(r["readable"] for r in opened)
    assert any("invoicing portal" in json.dumps(r["data"]) for r in opened if r["dead_letter_group"])
    # The erasure destroyed both keys: every record is still there, and none opens.
    assert report["keys_destroyed"] == 2 and report["event_log"] == "kafka"
    assert report["event_log_records_deleted"] is None
    again = [r for c in after["calls"] for r in c["records"]]
    assert len(again) >= len(opened)
    personal = ("caller_number", "transcript", "analysis", "summary")
    assert [r["event_type"] for r in again if any(f in (r["data"] or {}) for f in personal)] == []
    assert sum(not r["readable"] for r in again) >= 6  # every record that held personal fields
    assert "invoicing portal" not in json.dumps(after)
    assert letters_before >= 1 and letters_after == letters_before
    for name, text in logs.items():
        assert all(n.decode() not in text for n in TELLTALES), f"{name} logged the caller's data"
