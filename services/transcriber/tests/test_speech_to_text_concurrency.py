"""Flow control toward speech-to-text: a burst of recordings, handled at once through the
transcriber's own routes, sends at most the tenant's ``provider_concurrency.speech_to_text``
requests to its OpenAI at a time; a 429's Retry-After is waited out holding no slot."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from staged_audio import WrittenRecordings

from voiceticket_common.bus import Dispatcher, TransientError
from voiceticket_common.events import CallTranscribed
from voiceticket_common.provider_limits import limits
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import TranscriberView
from voiceticket_common.testing import CALL_SID, LINE, Outcomes, StaticRuntimeConfig, recording_completed
from voiceticket_sandbox import SandboxState, create_openai_app, make_tone_wav
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.testing import InFlight
from voiceticket_transcriber.adapters import OpenAITranscriptionEngine
from voiceticket_transcriber.bootstrap import SERVICE
from voiceticket_transcriber.handlers import TranscriberDeps
from voiceticket_transcriber.ports import Transcript

RECORDINGS = 10
_tenants = itertools.count()


def tenant() -> str:
    # The routes use the process's registry: a tenant of its own per test keeps tests apart.
    return f"stt-tenant-{next(_tenants)}"


def config(tenant_id: str, base_url: str, limit: int | None) -> StaticRuntimeConfig[TranscriberView]:
    fields = {
        "twilio_account_sid": "AC" + "a" * 32,
        "twilio_auth_token": "tok",
        "openai_base_url": base_url,
        "openai_api_key": "sk-test",
        "transcription_model": "gpt-4o-mini-transcribe",
        "provider_concurrency": {"speech_to_text": limit},
    }
    return StaticRuntimeConfig.of(TranscriberView, {LINE: (tenant_id, {}, fields)})


def recordings(tenant_id: str, n: int) -> list[Any]:
    return [recording_completed(tenant_id=tenant_id, call_sid=CALL_SID[:-4] + f"{i:04d}") for i in range(n)]


async def burst(limit: int | None, specs: None) -> InFlight:
    tenant_id = tenant()
    stand_in = InFlight(create_openai_app(SandboxState()), delay=0.15)
    audio = make_tone_wav(1.0)
    async with serve_app(stand_in) as origin, OpenAITranscriptionEngine(["http://127.0.0.1:*"]) as engine:
        deps = TranscriberDeps(
            config=config(tenant_id, origin + "/v1", limit),
            recordings=WrittenRecordings(audio),
            engine=engine,
        )
        dispatch = Dispatcher(SERVICE.routes, deps)  # the routes as the bus runs them
        results = await asyncio.gather(*(dispatch(e) for e in recordings(tenant_id, RECORDINGS)))
    assert all(isinstance(e, CallTranscribed) and not e.transcript_missing for [e] in results)
    assert stand_in.total == RECORDINGS
    assert limits.in_use(tenant_id, "speech_to_text") == 0
    return stand_in


async def test_a_burst_never_exceeds_the_tenants_speech_to_text_limit(specs: None) -> None:
    stand_in = await burst(3, specs)
    assert stand_in.peak == 3


async def test_unlimited_sends_the_burst_at_once(specs: None) -> None:
    stand_in = await burst(None, specs)
    assert stand_in.peak > 3  # more than the limit would let through (all of them, on an idle machine)


class RateLimitedEngine:
    """A 429 with Retry-After, then a transcript; notes the tenant's slots held at each moment."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.outcomes = Outcomes(TransientError("rate limited", retry_after=5.0), "Hello.")
        self.held_in_attempts: list[int] = []
        self.held_while_sleeping: list[int] = []

    async def transcribe(self, recording: Any, target: Any) -> Transcript:
        self.held_in_attempts.append(limits.in_use(self.tenant_id, "speech_to_text"))
        return Transcript(self.outcomes.next())

    async def sleep(self, seconds: float) -> None:
        self.held_while_sleeping.append(limits.in_use(self.tenant_id, "speech_to_text"))


async def test_retry_after_is_waited_out_without_a_slot() -> None:
    tenant_id = tenant()
    engine = RateLimitedEngine(tenant_id)
    deps = TranscriberDeps(
        config=config(tenant_id, "http://127.0.0.1:1/v1", 1),
        recordings=WrittenRecordings(make_tone_wav(1.0)),
        engine=engine,
        budget=RetryBudget(3, 60),
        sleep=engine.sleep,
    )
    [event] = await Dispatcher(SERVICE.routes, deps)(recordings(tenant_id, 1)[0])
    assert isinstance(event, CallTranscribed) and event.transcript == "Hello."
    assert engine.held_in_attempts == [1, 1]  # each attempt in the tenant's one slot...
    assert engine.held_while_sleeping == [0]  # ...and none while Retry-After is waited out
