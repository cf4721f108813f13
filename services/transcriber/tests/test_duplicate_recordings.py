"""A recording is transcribed once (ADR 8): duplicates and redeliveries re-emit the stored outcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from voiceticket_common.bus import TransientError
from voiceticket_common.events import CallTranscribed, RecordingCompleted
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import TranscriberView
from voiceticket_common.testing import (
    LINE,
    DownLedger,
    FakeClock,
    Outcomes,
    RecordingSleep,
    StaticRuntimeConfig,
    check_ledger_in_database,
    count_rows,
    outcome_ledger,
    recording_completed,
)
from voiceticket_transcriber.bootstrap import adapters
from voiceticket_transcriber.handlers import TranscriberDeps, transcribe_recording
from voiceticket_transcriber.ledger import SqlTranscriptLedger, TranscriptRow
from voiceticket_transcriber.ports import RecordingKey, Transcript
from voiceticket_transcriber.settings import TranscriberSettings

WAV = b"RIFF...."


class CountingRecordings:
    """Downloads that may fail first (the given outcomes in turn), then always give ``WAV``."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.fetched = 0

    async def fetch(self, account, recording_sid, into):  # type: ignore[no-untyped-def]
        self.fetched += 1
        if self.failures:
            raise self.failures.pop(0)
        into.write(WAV)
        return "audio/x-wav"


class CountingEngine:
    """Speech-to-text answering with the outcomes in turn (the last repeats); counts every call."""

    def __init__(self, *outcomes: str | Exception) -> None:
        self.outcomes = Outcomes(*outcomes)
        self.calls = 0

    async def transcribe(self, recording, target):  # type: ignore[no-untyped-def]
        self.calls += 1
        return Transcript(self.outcomes.next())


def config() -> StaticRuntimeConfig[TranscriberView]:
    tenant = {
        "twilio_account_sid": "AC" + "a" * 32,
        "twilio_auth_token": "tok",
        "openai_base_url": "http://127.0.0.1:1/v1",
        "openai_api_key": "sk-test",
        "transcription_model": "whisper-1",
    }
    return StaticRuntimeConfig.of(TranscriberView, {LINE: ("acme", {"language_mode": "auto"}, tenant)})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 5, 1, 9, 0, tzinfo=UTC))


@pytest_asyncio.fixture
async def ledger(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqlTranscriptLedger]:
    database = f"sqlite+aiosqlite:///{tmp_path}/transcriber.db"
    async with outcome_ledger(SqlTranscriptLedger, database, clock) as ledger:
        yield ledger


def deps(
    engine: CountingEngine, ledger: object, recordings: CountingRecordings | None = None
) -> TranscriberDeps:
    return TranscriberDeps(
        config=config(),
        recordings=recordings or CountingRecordings(),
        engine=engine,
        budget=RetryBudget(attempts=2, seconds=60.0),
        sleep=RecordingSleep(),
        outcomes=ledger,  # type: ignore[arg-type]
    )


def callback() -> RecordingCompleted:
    """What ingress publishes for each delivery of the recording callback: same SIDs, new record."""
    return recording_completed(duration_seconds=9)


async def transcribed(d: TranscriberDeps) -> CallTranscribed:
    [event] = await transcribe_recording(callback(), d)
    assert isinstance(event, CallTranscribed)
    return event


async def test_five_deliveries_of_one_recording_cost_one_transcription_and_emit_one_outcome(
    ledger: SqlTranscriptLedger,
) -> None:
    engine, recordings = CountingEngine("My VPN is down."), CountingRecordings()
    d = deps(engine, ledger, recordings)
    outcomes = [await transcribed(d) for _ in range(5)]
    assert (engine.calls, recordings.fetched) == (1, 1), "one download, one speech-to-text call"
    assert all(o == outcomes[0] for o in outcomes), "the stored event, occurred_at included"
    assert {o.deterministic_id() for o in outcomes} == {outcomes[0].deterministic_id()}
    assert outcomes[0].transcript == "My VPN is down."


async def test_a_crash_after_storing_and_before_publishing_re_emits_the_outcome(
    ledger: SqlTranscriptLedger,
) -> None:
    engine = CountingEngine("Please reset my password.")
    d = deps(engine, ledger)
    lost = await transcribed(d)  # stored, then the process died before publishing: output discarded
    redelivered = await transcribed(d)  # the same record again, since its offset was never committed
    assert redelivered == lost and redelivered.transcript == "Please reset my password."
    assert engine.calls == 1


async def test_a_transient_failure_leaves_nothing_that_blocks_the_retry(ledger: SqlTranscriptLedger) -> None:
    engine, recordings = CountingEngine("The printer jams."), CountingRecordings(TransientError("media 404"))
    d = deps(engine, ledger, recordings)
    with pytest.raises(TransientError):
        await transcribed(d)
    assert await count_rows(ledger._ledger.sessions, TranscriptRow) == 0
    assert (await transcribed(d)).transcript == "The printer jams."  # the bus's retry
    assert (await transcribed(d)).transcript == "The printer jams."  # a duplicate
    assert engine.calls == 1


async def test_a_transcript_missing_because_speech_to_text_was_down_is_kept_only_briefly(
    ledger: SqlTranscriptLedger, clock: FakeClock
) -> None:
    engine = CountingEngine(TransientError("503"), TransientError("503"), "The VPN is down again.")
    d = deps(engine, ledger)
    missing = await transcribed(d)
    assert missing.transcript_missing and engine.calls == 2  # the budget's two attempts
    clock.now += timedelta(minutes=4)
    assert await transcribed(d) == missing and engine.calls == 2  # a burst of duplicates: re-emitted
    clock.now += timedelta(minutes=2)
    recovered = await transcribed(d)  # after the short degraded time: speech-to-text is asked again
    assert (recovered.transcript, recovered.transcript_missing, engine.calls) == (
        "The VPN is down again.",
        False,
        3,
    )
    clock.now += timedelta(hours=23)
    # Final outcomes are kept for the retention.
    assert await transcribed(d) == recovered and engine.calls == 3


async def test_outcomes_expire_after_the_retention_and_expired_rows_are_deleted(
    ledger: SqlTranscriptLedger, clock: FakeClock
) -> None:
    engine = CountingEngine("First caller.")
    d = deps(engine, ledger)
    first = await transcribed(d)
    clock.now += timedelta(hours=24, seconds=1)
    assert await ledger.find(RecordingKey.of(first)) is None, "never served"
    other = recording_completed(call_sid="CA" + "b" * 32, recording_sid="RE" + "b" * 32)
    await transcribe_recording(other, d)  # keeping a new outcome deletes the expired one
    assert await count_rows(ledger._ledger.sessions, TranscriptRow) == 1
    assert (await transcribed(d)).occurred_at > first.occurred_at and engine.calls == 3


async def test_an_unavailable_ledger_never_stops_the_call() -> None:
    engine = CountingEngine("Hello.")
    assert (await transcribed(deps(engine, DownLedger()))).transcript == "Hello."
    assert engine.calls == 1


async def test_the_service_keeps_its_ledger_in_its_database(tmp_path: Path) -> None:
    settings = TranscriberSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/t.db", degraded_outcome_seconds=60
    )
    retentions = (timedelta(hours=24), timedelta(minutes=1))
    await check_ledger_in_database(adapters, settings, config(), SqlTranscriptLedger, retentions)
    assert (tmp_path / "t.db").exists()
