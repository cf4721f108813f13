"""The chat completions adapter against the OpenAI stand-in, with our strict schema."""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from voiceticket_analyzer.adapters import OpenAIChatModel
from voiceticket_analyzer.ports import LanguageModelTarget
from voiceticket_analyzer.prompt import analysis_schema, messages
from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.events import Analysis
from voiceticket_sandbox.strict_schema import strict_schema_problems


async def test_strict_schema_request_is_valid_and_answer_parses(sandbox) -> None:  # type: ignore[no-untyped-def]
    model = OpenAIChatModel(["http://127.0.0.1:*"])
    try:
        completion = await model.complete(
            messages("Hi, this is urgent: our VPN is down. My account number is 44817723.", None),
            analysis_schema(["incident", "service_request"]),
            LanguageModelTarget(sandbox.urls.openai + "/v1", SecretStr(sandbox.openai_key), "gpt-4o-mini"),
        )
    finally:
        await model.aclose()
    analysis = Analysis.model_validate(json.loads(completion.content))
    assert analysis.intent in ("incident", "service_request")
    assert completion.prompt_tokens > 0
    async with httpx.AsyncClient() as client:
        [request] = (await client.get(f"{sandbox.urls.openai}/_sandbox/requests")).json()
    assert request["valid"], request


def test_our_schema_meets_the_strict_structured_output_rules() -> None:
    for intents in (["incident", "service_request"], ["password_reset", "billing", "other"]):
        assert strict_schema_problems(analysis_schema(intents)) == []


async def test_the_request_is_strict_json_schema_with_temperature_zero(sandbox) -> None:  # type: ignore[no-untyped-def]
    model = OpenAIChatModel(["http://127.0.0.1:*"])
    try:
        await model.complete(
            messages("Hallo, mein Drucker druckt nicht.", "de"),
            analysis_schema(["incident", "other"]),
            LanguageModelTarget(sandbox.urls.openai + "/v1", SecretStr(sandbox.openai_key), "gpt-4o-mini"),
        )
    finally:
        await model.aclose()
    [request] = sandbox.state.records_of("openai")
    body = request["body"]
    assert request["valid"] and body["temperature"] == 0 and body["model"] == "gpt-4o-mini"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["response_format"]["json_schema"]["name"] == "call_analysis"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [
        ({"status": 429, "retry_after": 7}, TransientError, 7.0),
        ({"status": 503, "retry_after": 2}, TransientError, 2.0),
        ({"status": 500}, TransientError, None),
        (
            {
                "status": 429,
                "body": {
                    "error": {
                        "message": "You exceeded your current quota.",
                        "type": "insufficient_quota",
                        "param": None,
                        "code": "insufficient_quota",
                    }
                },
            },
            PermanentError,
            None,
        ),
        ({"status": 401}, PermanentError, None),
    ],
    ids=["429-retry-after", "503-retry-after", "500", "insufficient-quota", "401"],
)
async def test_provider_errors_map_to_retry_or_dead_letter(sandbox, fault, error, retry_after) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        spec = {"path_regex": "/chat/completions$", "times": 1, **fault}
        (await client.post(f"{sandbox.urls.openai}/_sandbox/faults", json=spec)).raise_for_status()
    model = OpenAIChatModel(["http://127.0.0.1:*"])
    try:
        with pytest.raises(error) as raised:
            await model.complete(
                messages("My VPN is down.", None),
                analysis_schema(["incident"]),
                LanguageModelTarget(
                    sandbox.urls.openai + "/v1", SecretStr(sandbox.openai_key), "gpt-4o-mini"
                ),
            )
    finally:
        await model.aclose()
    assert type(raised.value) is error
    if error is TransientError:
        assert raised.value.retry_after == retry_after
