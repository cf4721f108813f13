"""OpenAI (and compatible servers) at production depth, on the embedded runtime with the
spec-validating sandboxes.

A call on a line that enforces German reaches speech-to-text with the language hint and the
tenant's vocabulary and the model with the German ticket-language rule, and records its token
usage and estimated cost; a silent recording and a faint hum the model would "transcribe" as
"Thank you for watching." yield no invented text but a triage request; an OpenAI outage longer
than the analyzer's retry budget still yields exactly one request, marked for triage; a 429 with
Retry-After is waited out, never retried early.
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sandboxed_runtime import SandboxedRuntime, new_caller, one_ticket, sandboxed_runtime

from voiceticket.samples import sample_calls
from voiceticket_analyzer.triage import TRIAGE_MARKERS
from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.demo_tenant import SUPPORT_LINE

pytestmark = pytest.mark.asyncio(loop_scope="module")

GERMAN_LINE = "+15005550010"
VOCABULARY = ["Drucker", "FlexiBill", "Acme Router X2"]
LLM_ATTEMPTS, LLM_BUDGET_SECONDS = 3, 4.0
ANALYZER_GROUP = "voiceticket-analyzer"
CONTRACT_PATTERN = {"kind": "contract_number", "pattern": r"\bVT-\d{6}\b"}


class Stack(SandboxedRuntime):
    async def event(self, call_sid: str, event_type: str) -> dict[str, Any]:
        """The data of the call's one ``event_type`` record on the bus (read beside the bus, WAL),
        its sealed personal fields opened with the call's key."""
        with sqlite3.connect(self.data_dir / "bus.db") as conn:
            rows = conn.execute(
                "SELECT value FROM bus_records WHERE key = ? AND topic = ?",
                (call_sid.encode(), f"voiceticket.{event_type}.v1"),
            ).fetchall()
        [(value,)] = rows
        sealer = self.runtime.bus.sealer
        assert sealer is not None
        return await sealer.open(json.loads(value), purpose=f"io.voiceticket.{event_type}.v1")

    async def openai_requests(self, path_end: str) -> list[dict[str, Any]]:
        records = (await self.http.get(f"{self.urls.openai}/_sandbox/requests")).json()
        return [r for r in records if r["path"].endswith(path_end)]

    async def fault(self, **spec: Any) -> None:
        (await self.http.post(f"{self.urls.openai}/_sandbox/faults", json=spec)).raise_for_status()


def with_vocabulary_and_a_german_line(config: dict[str, Any]) -> None:
    config["tenants"][0]["vocabulary"] = VOCABULARY
    config["tenants"][0]["redaction"] = {"custom_patterns": [CONTRACT_PATTERN]}
    german = {
        **config["lines"][0],
        "number": GERMAN_LINE,
        "language_mode": "enforced",
        "language": "de",
    }
    config["lines"].append(german)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("openai-depth")
    with pytest.MonkeyPatch.context() as env:
        # Settings come from the environment, as in a deployment: a small budget keeps the outage short.
        env.setenv("VOICETICKET_LLM_RETRY_ATTEMPTS", str(LLM_ATTEMPTS))
        env.setenv("VOICETICKET_LLM_RETRY_BUDGET_SECONDS", str(LLM_BUDGET_SECONDS))
        async with sandboxed_runtime(Stack, data_dir, with_vocabulary_and_a_german_line) as stack:
            yield stack
            assert await stack.runtime.bus.dead_letters(ANALYZER_GROUP) == []
            assert await stack.runtime.bus.dead_letters("voiceticket-transcriber") == []


def pcm_wav(samples: list[int], rate: int = 8000) -> bytes:
    data = struct.pack(f"<{len(samples)}h", *samples)
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1, rate,
                         rate * 2, 2, 16, b"data", len(data))  # fmt: skip
    return header + data


def is_triage(issue: dict[str, Any]) -> bool:
    return issue["requestFieldValues"]["description"].split("\n----")[0].strip().endswith(TRIAGE_MARKERS)


async def test_enforced_german_ticket_language_with_vocabulary_hint_and_usage(stack: Stack) -> None:
    sample = sample_calls()["drucker-de"]
    played = await stack.caller().play_call(
        new_caller(), GERMAN_LINE, sample.audio, sample.transcript, sample.duration_seconds
    )
    issue = await one_ticket(stack, played.call_sid)

    [stt] = [r for r in await stack.openai_requests("/audio/transcriptions")
             if r["body"]["files"][0]["size"] == len(sample.audio)]  # fmt: skip
    fields = stt["body"]["fields"]
    # The enforced language is the ticket's, never forced on speech-to-text: the caller may speak another.
    assert (fields["model"], fields["response_format"]) == ("gpt-4o-mini-transcribe", "json")
    assert "language" not in fields
    assert fields["prompt"] == "Drucker, FlexiBill, Acme Router X2."
    [chat] = [r for r in await stack.openai_requests("/chat/completions")
              if sample.transcript[:40] in r["body"]["messages"][1]["content"]]  # fmt: skip
    assert "in the language with ISO 639-1 code 'de'" in chat["body"]["messages"][0]["content"]
    assert chat["body"]["response_format"]["json_schema"]["strict"] is True
    assert "*Language:* de" in issue["requestFieldValues"]["description"] and not is_triage(issue)
    analyzed = await stack.event(played.call_sid, "call.analyzed")
    assert (
        analyzed["degraded"] is False and analyzed["prompt_tokens"] > 0 and analyzed["completion_tokens"] > 0
    )
    assert analyzed["estimated_cost_usd"] > 0
    transcribed = await stack.event(played.call_sid, "call.transcribed")
    # gpt-4o models answer plain json, which names no language: the analyzer goes by the line's.
    assert transcribed["language"] is None and transcribed["estimated_cost_usd"] > 0
    assert analyzed["estimated_cost_usd"] > transcribed["estimated_cost_usd"]  # speech-to-text plus analysis


async def test_silence_and_hum_yield_no_invented_text_but_a_triage_request(stack: Stack) -> None:
    silent = pcm_wav([0] * 8000 * 4)
    hum = pcm_wav([int(300 * math.sin(2 * math.pi * 60 * i / 8000)) for i in range(8000 * 3)])  # -40 dBFS
    caller = stack.caller()
    # What a Whisper-style model would make of them, were it asked:
    quiet = await caller.play_call(new_caller(), SUPPORT_LINE, silent, "Thank you for watching.", 4)
    humming = await caller.play_call(new_caller(), SUPPORT_LINE, hum, "Thanks for watching!", 3)

    for played in (quiet, humming):
        issue = await one_ticket(stack, played.call_sid)
        assert issue["requestFieldValues"]["summary"] == "Voicemail without recognisable speech"
        assert is_triage(issue)
        body = " ".join(c["body"] for c in issue["comments"]).lower()
        assert "watching" not in body and "no speech was recognised" in body
        assert (await stack.event(played.call_sid, "call.transcribed"))["transcript"] == ""
        analyzed = await stack.event(played.call_sid, "call.analyzed")
        assert (analyzed["degraded"], analyzed["degraded_reason"]) == (True, "no_speech")
    sizes = [r["body"]["files"][0]["size"] for r in await stack.openai_requests("/audio/transcriptions")]
    assert len(silent) not in sizes  # silence never reached speech-to-text
    assert len(hum) in sizes  # the hum did; its invented text was filtered


async def test_an_llm_outage_past_the_budget_still_yields_one_request_marked_for_triage(stack: Stack) -> None:
    chat_before = len(await stack.openai_requests("/chat/completions"))
    await stack.fault(method="POST", path_regex="/chat/completions$", status=503, times=None)
    try:
        played = await stack.caller().play_call(
            new_caller(), SUPPORT_LINE, make_tone_wav(seconds=1.37, frequency=613.0),
            "My laptop does not start since this morning. It shows a blue screen.", 9,
        )  # fmt: skip
        issue = await one_ticket(stack, played.call_sid, timeout=LLM_BUDGET_SECONDS + 40)
    finally:
        await stack.http.delete(f"{stack.urls.openai}/_sandbox/faults")
    assert issue["requestFieldValues"]["summary"] == "My laptop does not start since this morning."
    assert is_triage(issue)
    analyzed = await stack.event(played.call_sid, "call.analyzed")
    assert (analyzed["degraded"], analyzed["degraded_reason"], analyzed["model"]) == (
        True,
        "llm_unavailable",
        "heuristic",
    )
    chat = (await stack.openai_requests("/chat/completions"))[chat_before:]
    assert [r["status"] for r in chat] == [503] * LLM_ATTEMPTS
    assert chat[-1]["time"] - chat[0]["time"] <= LLM_BUDGET_SECONDS


async def test_429_with_retry_after_is_waited_out_for_speech_to_text_and_analysis(stack: Stack) -> None:
    stt_before = len(await stack.openai_requests("/audio/transcriptions"))
    chat_before = len(await stack.openai_requests("/chat/completions"))
    await stack.fault(method="POST", path_regex="/audio/transcriptions$", status=429, retry_after=2, times=1)
    await stack.fault(method="POST", path_regex="/chat/completions$", status=429, retry_after=2, times=1)
    played = await stack.caller().play_call(
        new_caller(), SUPPORT_LINE, make_tone_wav(seconds=1.41, frequency=619.0),
        "I need access to the shared finance drive for a new colleague.", 11,
    )  # fmt: skip
    issue = await one_ticket(stack, played.call_sid)

    for path, before in (("/audio/transcriptions", stt_before), ("/chat/completions", chat_before)):
        limited, answered = (await stack.openai_requests(path))[before:]
        assert (limited["status"], answered["status"]) == (429, 200), path
        waited = answered["time"] - limited["time"]
        assert waited >= 2.0, f"{path}: retried after {waited:.2f}s, before Retry-After"
    assert not is_triage(issue)
    assert issue["requestFieldValues"]["summary"].startswith("I need access to the shared finance drive")


CARD_CALL = (
    "Hello, this is about the Galileo invoice and my contract VT-483920. I want to pay by card: my card "
    "number is 4111 1111 1111 1111, it expires oh three twenty seven and the security code is seven "
    "three one. Please book the payment."
)
CARD_TRACES = ("4111", "1111 1111", "seven three one", "03/27", "oh three twenty seven", "VT-483920")


async def test_no_card_data_reaches_the_model_or_jira_and_the_property_counts_it(stack: Stack) -> None:
    audio = make_tone_wav(seconds=1.7, frequency=733)
    played = await stack.caller().play_call(new_caller(), SUPPORT_LINE, audio, CARD_CALL, 14)
    issue = await one_ticket(stack, played.call_sid)

    # Speech-to-text heard it (the stand-in answered with the registered transcript) ...
    assert any(
        r["body"]["files"][0]["size"] == len(audio)
        for r in await stack.openai_requests("/audio/transcriptions")
    )
    # ... but from there on only the redacted text travels.
    chats = [r for r in await stack.openai_requests("/chat/completions")
             if "Galileo invoice" in json.dumps(r["body"])]  # fmt: skip
    assert chats, "the analyzer asked the model about this call"
    jira = [r for r in (await stack.http.get(f"{stack.urls.jira}/_sandbox/requests")).json()
            if played.call_sid in json.dumps(r["body"]) or issue["key"] in r["path"]]  # fmt: skip
    assert jira, "jira-writer wrote the request"
    for record in [*chats, *jira]:
        body = json.dumps(record["body"], ensure_ascii=False)
        assert not [t for t in CARD_TRACES if t in body], (record["path"], body)
    assert "[redacted: payment card]" in json.dumps(chats[0]["body"])
    counts = {"card_expiry": 1, "card_security_code": 1, "contract_number": 1, "payment_card": 1}
    assert issue["properties"]["voiceticket.call"]["redactions"] == counts
    transcribed = await stack.event(played.call_sid, "call.transcribed")
    assert transcribed["redactions"] == counts and "4111" not in transcribed["transcript"]
    assert (await stack.event(played.call_sid, "call.analyzed"))["redactions"] == counts
