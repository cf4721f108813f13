"""Malformed chat completions through the real adapter and the real openai SDK (httpx MockTransport).

An OpenAI-compatible server can answer 200 with almost anything. Whatever it is, the answer must
count as an off-schema attempt: retried within the budget (a good answer next time is used), and
past the budget a heuristic analysis marked for triage (``llm_output_invalid``). It must never
escape as an unexpected exception, which the bus would dead-letter, losing the call.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from analyzer_testkit import GOOD
from pydantic import SecretStr

from voiceticket_analyzer.adapters import OpenAIChatModel
from voiceticket_analyzer.handlers import AnalyzerDeps, analyze_transcript
from voiceticket_common.events import CallAnalyzed
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import AnalyzerLine, AnalyzerTenant, AnalyzerView
from voiceticket_common.testing import LINE, RecordingSleep, StaticRuntimeConfig, call_transcribed

HOST = "llm.example.test"
TRANSCRIPT = "Hi, the VPN is down. Account 12345678."
USAGE = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
ATTEMPTS = 3


def completion(
    message: Any = None, finish_reason: Any = "stop", usage: Any = USAGE, **body: Any
) -> dict[str, Any]:
    """A chat.completion body with one choice holding ``message`` (None: the good analysis)."""

    if message is None:
        message = {"role": "assistant", "content": json.dumps(GOOD), "refusal": None}
    choice = {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
    answer: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [choice],
        "usage": usage,
    }
    answer.update(body)
    return {k: v for k, v in answer.items() if v is not _MISSING}


_MISSING = object()
ASSISTANT = {"role": "assistant"}
TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "create_ticket", "arguments": json.dumps(GOOD)},
}
Answer = tuple[int, str, bytes]
JSON = "application/json"


def as_json(body: Any) -> Answer:
    return 200, JSON, json.dumps(body).encode()


MALFORMED: dict[str, Answer] = {
    "empty-choices": as_json(completion(choices=[])),
    "choices-null": as_json(completion(choices=None)),
    "choices-missing": as_json(completion(choices=_MISSING)),
    "choices-an-object": as_json(completion(choices={"0": {"message": {"content": json.dumps(GOOD)}}})),
    "choice-null": as_json(completion(choices=[None])),
    "choice-a-string": as_json(completion(choices=[json.dumps(GOOD)])),
    "message-null": as_json(
        {**completion(), "choices": [{"index": 0, "message": None, "finish_reason": "stop"}]}
    ),
    "message-missing": as_json({**completion(), "choices": [{"index": 0, "finish_reason": "stop"}]}),
    "message-a-string": as_json(completion(message=json.dumps(GOOD))),
    "content-and-refusal-missing": as_json(completion(message=ASSISTANT)),
    "content-and-refusal-null": as_json(completion(message={**ASSISTANT, "content": None, "refusal": None})),
    "content-empty": as_json(completion(message={**ASSISTANT, "content": ""})),
    "content-whitespace": as_json(completion(message={**ASSISTANT, "content": " \n "})),
    "content-a-number": as_json(completion(message={**ASSISTANT, "content": 42})),
    "content-an-object": as_json(completion(message={**ASSISTANT, "content": GOOD})),
    "content-a-list-of-parts": as_json(
        completion(message={**ASSISTANT, "content": [{"type": "text", "text": json.dumps(GOOD)}]})
    ),
    "refusal-not-a-string": as_json(completion(message={**ASSISTANT, "content": None, "refusal": {"x": 1}})),
    "finish-length-truncated": as_json(
        completion(message={**ASSISTANT, "content": json.dumps(GOOD)[:40]}, finish_reason="length")
    ),
    "finish-length-complete-json": as_json(completion(finish_reason="length")),
    "finish-content-filter": as_json(
        completion(message={**ASSISTANT, "content": None}, finish_reason="content_filter")
    ),
    "finish-content-filter-partial": as_json(completion(finish_reason="content_filter")),
    "tool-calls-only": as_json(
        completion(
            message={**ASSISTANT, "content": None, "tool_calls": [TOOL_CALL]}, finish_reason="tool_calls"
        )
    ),
    "function-call-only": as_json(
        completion(
            message={**ASSISTANT, "content": None, "function_call": TOOL_CALL["function"]},
            finish_reason="function_call",
        )
    ),
    "content-not-json": as_json(completion(message={**ASSISTANT, "content": "Sure! The VPN is down."})),
    "error-object-with-200": as_json({"error": {"message": "model overloaded", "type": "server_error"}}),
    "body-a-list": as_json([completion()]),
    "body-a-string": as_json("ok"),
    "body-null": as_json(None),
    "html-body-200": (200, "text/html", b"<html><body>Bad gateway</body></html>"),
    "plain-text-body-200": (200, "text/plain", b"upstream timed out"),
    "invalid-json-body-200": (200, JSON, b'{"id": "chatcmpl-1", "choices": [{"message": '),
    "empty-body-200": (200, JSON, b""),
    "no-content-type-200": (200, "", json.dumps(completion()).encode()[:30]),
    "event-stream-body-200": (200, "text/event-stream", b'data: {"choices": []}\n\ndata: [DONE]\n\n'),
    "usage-missing-and-no-choices": as_json(completion(choices=[], usage=_MISSING)),
    "usage-negative-and-no-choices": as_json(
        completion(choices=[], usage={"prompt_tokens": -5, "completion_tokens": -1, "total_tokens": -6})
    ),
    "usage-not-numbers-and-null-message": as_json(
        {
            **completion(usage={"prompt_tokens": "lots", "completion_tokens": None}),
            "choices": [{"index": 0, "message": None, "finish_reason": "stop"}],
        }
    ),
}

BAD_USAGE = {
    "usage-missing": _MISSING,
    "usage-null": None,
    "usage-negative": {"prompt_tokens": -100, "completion_tokens": -50, "total_tokens": -150},
    "usage-fields-null": {"prompt_tokens": None, "completion_tokens": None},
    "usage-fields-strings": {"prompt_tokens": "100", "completion_tokens": "fifty"},
    "usage-fields-floats": {"prompt_tokens": 1.5, "completion_tokens": True},
    "usage-a-list": [100, 50],
}


class Server:
    """Answers /chat/completions with ``answers`` in turn (the last one repeating)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        status, content_type, body = self.answers[min(self.requests, len(self.answers) - 1)]
        self.requests += 1
        headers = {"content-type": content_type} if content_type else {}
        return httpx.Response(status, headers=headers, content=body)


def deps(model: OpenAIChatModel) -> AnalyzerDeps:
    view = AnalyzerView(
        tenant_id="acme",
        line=AnalyzerLine(
            number=LINE,
            language_mode="auto",
            language="en",
            request_types={"incident": "11", "service_request": "12"},
            request_type_id="12",
        ),
        tenant=AnalyzerTenant(openai_api_key=SecretStr("sk-test"), openai_base_url=f"https://{HOST}/v1"),
    )
    return AnalyzerDeps(
        config=StaticRuntimeConfig({LINE: view}),
        model=model,
        budget=RetryBudget(ATTEMPTS, 60),
        sleep=RecordingSleep(),
    )


async def analyse(server: Server) -> CallAnalyzed:
    async with OpenAIChatModel([HOST], transport=httpx.MockTransport(server)) as model:
        [event] = await analyze_transcript(call_transcribed(transcript=TRANSCRIPT), deps(model))
    assert isinstance(event, CallAnalyzed)
    return event


def test_the_corpus_covers_the_kinds_of_malformed_completion() -> None:
    for kind in ("empty-choices", "message-null", "content-and-refusal-missing", "content-a-number",
                 "finish-length", "finish-content-filter", "html-body-200", "usage-negative",
                 "usage-missing", "tool-calls-only"):  # fmt: skip
        assert any(case.startswith(kind) for case in MALFORMED), kind


@pytest.mark.parametrize("answer", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_completion_past_the_budget_degrades_to_triage(answer: Answer) -> None:
    server = Server(answer)
    event = await analyse(server)
    assert server.requests == ATTEMPTS  # an off-schema attempt each time: retried within the budget
    assert (event.degraded, event.degraded_reason, event.model) == (True, "llm_output_invalid", "heuristic")
    assert event.analysis.summary == "Hi, the VPN is down."
    assert event.prompt_tokens is not None and event.prompt_tokens >= 0
    assert event.completion_tokens is not None and event.completion_tokens >= 0
    assert event.estimated_cost_usd is None or event.estimated_cost_usd >= 0


@pytest.mark.parametrize("answer", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_completion_is_retried_and_the_next_good_one_used(answer: Answer) -> None:
    server = Server(answer, as_json(completion()))
    event = await analyse(server)
    assert server.requests == 2
    assert not event.degraded and event.analysis.intent == "incident" and event.model == "gpt-4o-mini"
    assert event.prompt_tokens is not None and event.prompt_tokens >= 100


@pytest.mark.parametrize("usage", BAD_USAGE.values(), ids=BAD_USAGE.keys())
async def test_bad_usage_beside_a_good_answer_costs_nothing_extra_and_never_goes_negative(usage: Any) -> None:
    server = Server(as_json(completion(usage=usage)))
    event = await analyse(server)
    assert server.requests == 1 and not event.degraded and event.analysis.intent == "incident"
    assert event.prompt_tokens is not None and event.prompt_tokens >= 0
    assert event.completion_tokens is not None and event.completion_tokens >= 0
    assert event.estimated_cost_usd is None or event.estimated_cost_usd >= 0


async def test_a_well_formed_completion_passes_through_the_sdk_unchanged() -> None:
    server = Server(as_json(completion()))
    event = await analyse(server)
    assert server.requests == 1 and not event.degraded
    assert (event.prompt_tokens, event.completion_tokens) == (100, 50)


async def test_a_refusal_is_still_a_refusal() -> None:
    refused = completion(message={**ASSISTANT, "content": None, "refusal": "I can't help with that."})
    server = Server(as_json(refused))
    event = await analyse(server)
    assert server.requests == 1 and event.degraded_reason == "llm_refused"
