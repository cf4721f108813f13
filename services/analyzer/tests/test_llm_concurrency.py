"""Flow control toward the language model: a burst of transcripts analysed at once sends at most
the tenant's ``provider_concurrency.llm`` requests to its OpenAI at a time, and a backoff for a
429's Retry-After holds no slot."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from analyzer_testkit import GOOD

from voiceticket_analyzer.adapters import OpenAIChatModel
from voiceticket_analyzer.handlers import AnalyzerDeps, analyze_transcript
from voiceticket_analyzer.ports import Completion
from voiceticket_common.bus import TransientError
from voiceticket_common.events import CallAnalyzed
from voiceticket_common.provider_limits import ProviderLimits
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import AnalyzerView
from voiceticket_common.testing import CALL_SID, LINE, Outcomes, StaticRuntimeConfig, call_transcribed
from voiceticket_sandbox import SandboxState, create_openai_app
from voiceticket_sandbox.server import serve_app
from voiceticket_sandbox.testing import InFlight

CALLS = 12


def view(base_url: str, llm: int | None) -> StaticRuntimeConfig[AnalyzerView]:
    tenant = {"openai_base_url": base_url, "openai_api_key": "sk-test", "provider_concurrency": {"llm": llm}}
    line = {"request_types": {"incident": "11", "service_request": "12"}, "request_type_id": "12"}
    return StaticRuntimeConfig.of(AnalyzerView, {LINE: ("acme", line, tenant)})


def calls(n: int) -> list[Any]:
    return [
        call_transcribed(call_sid=CALL_SID[:-4] + f"{i:04d}", transcript="Hi, the VPN is down. Urgent.")
        for i in range(n)
    ]


async def burst(limit: int | None, specs: None) -> InFlight:
    stand_in = InFlight(create_openai_app(SandboxState()), delay=0.15)
    async with serve_app(stand_in) as origin, OpenAIChatModel(["http://127.0.0.1:*"]) as model:
        deps = AnalyzerDeps(config=view(origin + "/v1", limit), model=model, slots=ProviderLimits())
        results = await asyncio.gather(*(analyze_transcript(e, deps) for e in calls(CALLS)))
    analysed = [r for [r] in results]
    assert all(isinstance(r, CallAnalyzed) and not r.degraded for r in analysed)
    assert stand_in.total == CALLS
    return stand_in


async def test_a_burst_never_exceeds_the_tenants_llm_limit(specs: None) -> None:
    stand_in = await burst(3, specs)
    assert stand_in.peak == 3


async def test_unlimited_sends_the_burst_at_once(specs: None) -> None:
    stand_in = await burst(None, specs)
    assert stand_in.peak > 3  # more than the limit would let through (all of them, on an idle machine)


class LimitedModel:
    """A 429 with Retry-After first, then good answers; notes the slots held at each backoff."""

    def __init__(self, slots: ProviderLimits) -> None:
        self.slots = slots
        self.outcomes = Outcomes(TransientError("rate limited", retry_after=5.0), _ok())
        self.held_while_sleeping: list[int] = []

    async def complete(self, messages: Any, schema: Any, target: Any) -> Completion:
        assert self.slots.in_use("acme", "llm") == 1  # each attempt holds one slot...
        return self.outcomes.next()

    async def sleep(self, seconds: float) -> None:
        self.held_while_sleeping.append(self.slots.in_use("acme", "llm"))


def _ok() -> Completion:
    return Completion(content=json.dumps(GOOD), refusal=None, prompt_tokens=10, completion_tokens=5)


async def test_retry_after_is_waited_out_without_a_slot() -> None:
    slots = ProviderLimits()
    model = LimitedModel(slots)
    deps = AnalyzerDeps(
        config=view("http://127.0.0.1:1/v1", 1),
        model=model,
        slots=slots,
        budget=RetryBudget(3, 60),
        sleep=model.sleep,
    )
    [event] = await analyze_transcript(calls(1)[0], deps)
    assert isinstance(event, CallAnalyzed) and not event.degraded
    assert model.held_while_sleeping == [0]  # ...and none while Retry-After is waited out
    assert slots.in_use("acme", "llm") == 0
