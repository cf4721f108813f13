"""Twilio retrying a recording callback, on the embedded runtime with the spec-validating sandboxes.

The same ``completed`` recording status callback delivered five times (what Twilio does when it
does not see our 204 in time) is five ``call.recording.completed`` records. The transcriber and the
analyzer keep the outcome they produced (ADR 8), so the OpenAI stand-in sees one transcription and
one chat request, every duplicate re-emits the same stored outcome, and one ticket exists.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sandboxed_runtime import SandboxedRuntime, new_caller, one_ticket, sandboxed_runtime

from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, SUPPORT_LINE
from voiceticket_sandbox.testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

DELIVERIES = 5
TRANSCRIPT = "The label printer in the warehouse prints every label twice since Monday."


class Stack(SandboxedRuntime):
    def records(self, call_sid: str, event_type: str) -> list[dict[str, Any]]:
        """(headers, data) of the call's ``event_type`` records on the bus (read beside it, WAL)."""
        with sqlite3.connect(self.data_dir / "bus.db") as conn:
            rows = conn.execute(
                "SELECT headers, value FROM bus_records WHERE key = ? AND topic = ? ORDER BY position",
                (call_sid.encode(), f"voiceticket.{event_type}.v1"),
            ).fetchall()
        return [{"headers": dict(json.loads(h)), "data": json.loads(v)} for h, v in rows]

    async def openai_requests(self, path_end: str) -> list[dict[str, Any]]:
        records = (await self.http.get(f"{self.urls.openai}/_sandbox/requests")).json()
        return [r for r in records if r["path"].endswith(path_end)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("duplicate-callbacks")
    async with sandboxed_runtime(Stack, data_dir, lambda config: None) as stack:
        yield stack
        assert await stack.runtime.bus.dead_letters("voiceticket-transcriber") == []
        assert await stack.runtime.bus.dead_letters("voiceticket-analyzer") == []


async def test_a_recording_callback_delivered_five_times_costs_one_transcription_and_one_analysis(
    stack: Stack,
) -> None:
    audio = make_tone_wav(seconds=1.53, frequency=421.0)  # distinct audio: the stand-in keys by sha256
    caller = stack.caller()
    played = await caller.play_call(new_caller(), SUPPORT_LINE, audio, TRANSCRIPT, 14)
    assert played.recording_status == 204 and played.recording_callback_url
    retry = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": played.call_sid,
        "RecordingSid": played.recording_sid,
        "RecordingUrl": f"{stack.urls.twilio}/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{played.recording_sid}",
        "RecordingStatus": "completed",
        "RecordingDuration": "14",
        "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
    }
    for _ in range(DELIVERIES - 1):  # Twilio's retries of the same callback
        assert (await caller.post_signed(played.recording_callback_url, retry)).status_code == 204

    issue = await one_ticket(stack, played.call_sid)
    assert "prints every label twice" in issue["comments"][0]["body"]
    # Every delivery has been through both services once they have all produced their outcome.
    await eventually(lambda: len(stack.records(played.call_sid, "call.analyzed")) == DELIVERIES, 40)
    assert len(stack.records(played.call_sid, "call.recording.completed")) == DELIVERIES

    stt = [r for r in await stack.openai_requests("/audio/transcriptions")
           if r["body"]["files"][0]["size"] == len(audio)]  # fmt: skip
    chat = [r for r in await stack.openai_requests("/chat/completions")
            if TRANSCRIPT[:40] in r["body"]["messages"][1]["content"]]  # fmt: skip
    assert (len(stt), len(chat)) == (1, 1), (
        f"{len(stt)} STT + {len(chat)} LLM calls for {DELIVERIES} callbacks"
    )

    for event_type in ("call.transcribed", "call.analyzed"):
        outcomes = stack.records(played.call_sid, event_type)
        assert len(outcomes) == DELIVERIES
        assert len({o["headers"]["ce_id"] for o in outcomes}) == 1, f"{event_type}: one event id"
        sealer = stack.runtime.bus.sealer
        assert sealer is not None and all("sealed" in o["data"] for o in outcomes)
        opened = [await sealer.open(dict(o["data"]), purpose=o["headers"]["ce_type"]) for o in outcomes]
        assert len({json.dumps(o, sort_keys=True) for o in opened}) == 1, (
            f"{event_type}: re-emitted as stored"
        )
    assert len(await stack.issues_of(played.call_sid)) == 1
