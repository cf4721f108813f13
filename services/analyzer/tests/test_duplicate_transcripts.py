"""A transcript is analysed once (ADR 8): duplicates and redeliveries re-emit the stored outcome,
a new transcript of the call is analysed anew, a triage made while the model was down is not final."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from analyzer_testkit import GOOD

from voiceticket_analyzer.bootstrap import adapters
from voiceticket_analyzer.handlers import AnalyzerDeps, analyze_transcript
from voiceticket_analyzer.ledger import AnalysisRow, SqlAnalysisLedger
from voiceticket_analyzer.ports import AnalysisKey, Completion
from voiceticket_analyzer.settings import AnalyzerSettings
from voiceticket_common.bus import TransientError
from voiceticket_common.events import CallAnalyzed, CallTranscribed
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import AnalyzerView
from voiceticket_common.testing import (
    LINE,
    DownLedger,
    FakeClock,
    Outcomes,
    RecordingSleep,
    StaticRuntimeConfig,
    call_transcribed,
    check_ledger_in_database,
    count_rows,
    outcome_ledger,
)

TRANSCRIPT = "Hi, the VPN is down for the whole office. Account 12345678."


class CountingModel:
    """Answers with the outcomes in turn (the last repeats); counts every call."""

    def __init__(self, *outcomes: Completion | Exception) -> None:
        self.outcomes = Outcomes(*outcomes)
        self.calls = 0

    async def complete(self, messages, schema, target):  # type: ignore[no-untyped-def]
        self.calls += 1
        return self.outcomes.next()


def answered(data: dict[str, object] = GOOD) -> Completion:
    return Completion(content=json.dumps(data), refusal=None, prompt_tokens=100, completion_tokens=50)


def config() -> StaticRuntimeConfig[AnalyzerView]:
    line = {"language_mode": "auto", "request_types": {"incident": "11"}, "request_type_id": "11"}
    tenant = {"openai_api_key": "sk-test", "openai_base_url": "http://127.0.0.1:1/v1"}
    return StaticRuntimeConfig.of(AnalyzerView, {LINE: ("acme", line, tenant)})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 5, 1, 9, 0, tzinfo=UTC))


@pytest_asyncio.fixture
async def ledger(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqlAnalysisLedger]:
    async with outcome_ledger(
        SqlAnalysisLedger, f"sqlite+aiosqlite:///{tmp_path}/analyzer.db", clock
    ) as ledger:
        yield ledger


def deps(model: CountingModel, ledger: object) -> AnalyzerDeps:
    return AnalyzerDeps(
        config=config(),
        model=model,
        budget=RetryBudget(2, 60.0),
        sleep=RecordingSleep(),
        outcomes=ledger,  # type: ignore[arg-type]
    )


def transcribed(text: str = TRANSCRIPT) -> CallTranscribed:
    """What the transcriber emits for each duplicate: the same content, a new record."""
    return call_transcribed(transcript=text)


async def analysed(d: AnalyzerDeps, event: CallTranscribed | None = None) -> CallAnalyzed:
    [result] = await analyze_transcript(event or transcribed(), d)
    assert isinstance(result, CallAnalyzed)
    return result


async def test_five_deliveries_of_one_transcript_cost_one_model_call_and_emit_one_outcome(
    ledger: SqlAnalysisLedger,
) -> None:
    model = CountingModel(answered())
    d = deps(model, ledger)
    outcomes = [await analysed(d) for _ in range(5)]
    assert model.calls == 1
    assert all(o == outcomes[0] for o in outcomes), "the stored event, occurred_at included"
    assert {o.deterministic_id() for o in outcomes} == {outcomes[0].deterministic_id()}
    assert outcomes[0].analysis.summary == "VPN down for the whole office" and not outcomes[0].degraded


async def test_a_crash_after_storing_and_before_publishing_re_emits_the_outcome(
    ledger: SqlAnalysisLedger,
) -> None:
    model = CountingModel(answered())
    d = deps(model, ledger)
    event = transcribed()
    lost = await analysed(d, event)  # stored, then the process died before publishing
    assert await analysed(d, event) == lost  # the same record, redelivered
    assert model.calls == 1


async def test_a_new_transcript_of_the_call_is_analysed_anew(ledger: SqlAnalysisLedger) -> None:
    model = CountingModel(answered(), answered({**GOOD, "summary": "Printer jams"}))
    d = deps(model, ledger)
    first = await analysed(d)
    second = await analysed(d, transcribed("The printer on the second floor jams."))
    assert (model.calls, second.analysis.summary) == (2, "Printer jams")
    assert AnalysisKey.of(transcribed()) != AnalysisKey.of(
        transcribed("The printer on the second floor jams.")
    )
    assert await analysed(d) == first and model.calls == 2


async def test_a_triage_made_while_the_model_was_down_is_kept_only_briefly(
    ledger: SqlAnalysisLedger, clock: FakeClock
) -> None:
    model = CountingModel(TransientError("HTTP 503"), TransientError("HTTP 503"), answered())
    d = deps(model, ledger)
    triage = await analysed(d)
    assert (triage.degraded_reason, model.calls) == ("llm_unavailable", 2)
    clock.now += timedelta(minutes=4)
    assert await analysed(d) == triage and model.calls == 2  # a burst of duplicates: re-emitted
    clock.now += timedelta(minutes=2)
    recovered = await analysed(d)  # after the short degraded time the model is asked again
    assert (recovered.degraded, model.calls) == (False, 3)
    clock.now += timedelta(hours=23)
    assert await analysed(d) == recovered and model.calls == 3  # final outcomes: kept for the retention


async def test_a_triage_for_no_speech_is_final(ledger: SqlAnalysisLedger, clock: FakeClock) -> None:
    model = CountingModel(answered())
    d = deps(model, ledger)
    empty = await analysed(d, transcribed(""))
    clock.now += timedelta(hours=1)
    assert await analysed(d, transcribed("")) == empty
    assert (empty.degraded_reason, model.calls) == ("no_speech", 0)


async def test_outcomes_expire_after_the_retention_and_expired_rows_are_deleted(
    ledger: SqlAnalysisLedger, clock: FakeClock
) -> None:
    model = CountingModel(answered())
    d = deps(model, ledger)
    await analysed(d)
    clock.now += timedelta(hours=24, seconds=1)
    assert await ledger.find(AnalysisKey.of(transcribed())) is None, "never served once expired"
    await analysed(d, call_transcribed(call_sid="CA" + "b" * 32, transcript=TRANSCRIPT))
    assert await count_rows(ledger._ledger.sessions, AnalysisRow) == 1, (
        "keeping a new outcome deleted the expired one"
    )


async def test_an_unavailable_ledger_never_stops_the_call() -> None:
    model = CountingModel(answered())
    assert not (await analysed(deps(model, DownLedger()))).degraded
    assert model.calls == 1


async def test_the_service_keeps_its_ledger_in_its_database(tmp_path: Path) -> None:
    settings = AnalyzerSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/a.db", outcome_retention_seconds=3600
    )
    retentions = (timedelta(hours=1), timedelta(minutes=5))
    await check_ledger_in_database(adapters, settings, config(), SqlAnalysisLedger, retentions)
    assert (tmp_path / "a.db").exists()
