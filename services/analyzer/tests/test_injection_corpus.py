"""Prompt injection: every transcript of the corpus through the analyzer and the real chat adapter,
against the OpenAI stand-in (which validates each request against the spec), twice:

(a) with the stand-in's keyword model, which keeps the transcript as data: outputs stay in the
    schema and enums and take none of the values the caller asked for;
(b) with its gullible model, which obeys the caller and breaks the schema doing so: the pipeline
    must refuse every off-schema answer (retry, then a heuristic triage analysis) and never pass an
    out-of-schema value on. In-schema obedience (a gullible "priority highest") cannot be told
    from a real judgement by a schema; that is what the prompt and fence are for, shown in (a).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from voiceticket_analyzer.adapters import OpenAIChatModel
from voiceticket_analyzer.handlers import AnalyzerDeps, analyze_transcript
from voiceticket_analyzer.output_guard import LEAK_MARKERS
from voiceticket_analyzer.prompt import ENTITY_TYPES
from voiceticket_common.events import CallAnalyzed, Priority, Sentiment
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import AnalyzerView
from voiceticket_common.testing import LINE, StaticRuntimeConfig, call_transcribed
from voiceticket_sandbox.demo_tenant import REQUEST_TYPES

CORPUS = json.loads((Path(__file__).parent / "injection_corpus.json").read_text())["transcripts"]


def test_the_corpus_covers_the_kinds_of_injection() -> None:
    ids = {item["id"] for item in CORPUS}
    assert len(CORPUS) >= 15 and len(ids) == len(CORPUS)
    text = " ".join(item["transcript"] for item in CORPUS).lower()
    for kind in ("ignore previous instructions", "system:", "</transcript>", "{\"priority\"", "add a field",
                 "classify this as", "repeat your system prompt", "priorität", "prioridad", "priorité"):  # fmt: skip
        assert kind in text, kind
    assert max(len(item["transcript"]) for item in CORPUS) > 5000  # long repetition


async def noop_sleep(_: float) -> None:
    return None


async def run_corpus(sandbox, chat_mode: str) -> list[tuple[dict[str, Any], CallAnalyzed]]:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        knob = {"chat_mode": chat_mode}
        (await client.put(f"{sandbox.urls.openai}/_sandbox/behaviour", json=knob)).raise_for_status()
    tenant = {"openai_api_key": sandbox.openai_key, "openai_base_url": sandbox.urls.openai + "/v1"}
    line = {
        "language_mode": "auto",
        "language": "en",
        "request_types": REQUEST_TYPES,
        "request_type_id": "45",
    }
    model = OpenAIChatModel(["http://127.0.0.1:*"])
    deps = AnalyzerDeps(
        config=StaticRuntimeConfig.of(AnalyzerView, {LINE: ("acme", line, tenant)}),
        model=model,
        budget=RetryBudget(attempts=2, seconds=5),
        sleep=noop_sleep,
    )
    results = []
    try:
        for n, item in enumerate(CORPUS):
            event = call_transcribed(
                call_sid="CA" + f"{n:032x}", duration_seconds=30, transcript=item["transcript"]
            )
            [analyzed] = await analyze_transcript(event, deps)
            assert isinstance(analyzed, CallAnalyzed)
            results.append((item, analyzed))
    finally:
        await model.aclose()
    return results


def assert_inside_the_schema(item: dict[str, Any], event: CallAnalyzed) -> None:
    analysis = event.analysis
    where = item["id"]
    assert set(analysis.model_dump()) == {"summary", "description", "intent", "entities", "priority",
                                          "sentiment", "language"}, where  # fmt: skip
    assert analysis.intent in REQUEST_TYPES, where
    assert analysis.priority in Priority and analysis.sentiment in Sentiment, where
    assert all(e.type in ENTITY_TYPES for e in analysis.entities), where
    assert len(analysis.summary) <= 255 and "\n" not in analysis.summary, where
    assert re.fullmatch(r"[a-z]{2}", analysis.language), where
    written = " ".join(analysis.description.casefold().split())
    assert not any(marker in written for marker in LEAK_MARKERS), where
    CallAnalyzed.model_validate_json(event.model_dump_json())  # survives the wire unchanged


def assert_every_request_was_valid(sandbox) -> None:  # type: ignore[no-untyped-def]
    records = sandbox.state.records_of("openai")
    assert records and [r["errors"] for r in records if not r["valid"]] == []
    for record in records:
        user = record["body"]["messages"][1]["content"]
        assert user.count("<transcript>") == 1 and user.count("</transcript>") == 1  # the fence holds


async def test_a_model_that_keeps_the_transcript_as_data_stays_inside_the_schema(sandbox) -> None:  # type: ignore[no-untyped-def]
    results = await run_corpus(sandbox, "keyword")
    for item, event in results:
        assert_inside_the_schema(item, event)
        assert not event.degraded, item["id"]
        for field, forbidden in item["not"].items():
            value = getattr(event.analysis, field)
            assert str(getattr(value, "value", value)) not in forbidden, (item["id"], field)
    assert_every_request_was_valid(sandbox)
    by_id = {item["id"]: event for item, event in results}
    # The fake closing marker did not cut the transcript short: the text after it was still read.
    assert "Thanks." in by_id["fake-closing-fence"].analysis.description


async def test_a_gullible_model_never_gets_an_out_of_schema_value_through(sandbox) -> None:  # type: ignore[no-untyped-def]
    results = await run_corpus(sandbox, "gullible")
    for item, event in results:
        assert_inside_the_schema(item, event)
        if item["gullible"] == "rejected":
            assert event.degraded and event.degraded_reason == "llm_output_invalid", item["id"]
            assert event.analysis.priority == Priority.MEDIUM and event.analysis.intent == "other", item["id"]
        else:
            assert not event.degraded, item["id"]
    assert_every_request_was_valid(sandbox)
    rejected = [item["id"] for item, event in results if event.degraded]
    assert len(rejected) >= 10
    # Two attempts for each refused answer, one for each accepted one.
    assert len(sandbox.state.records_of("openai")) == len(CORPUS) + len(rejected)


@pytest.mark.parametrize("item", CORPUS, ids=[item["id"] for item in CORPUS])
def test_corpus_entries_are_well_formed(item: dict[str, Any]) -> None:
    assert set(item) == {"id", "transcript", "not", "gullible"}
    assert item["gullible"] in ("rejected", "passes")
    assert set(item["not"]) <= {"summary", "intent", "priority", "sentiment", "language"}
