"""The chat completions adapter against the OpenAI stand-in, with our strict schema."""

from __future__ import annotations

import json

import httpx
from pydantic import SecretStr

from voiceticket_analyzer.adapters import OpenAIChatModel
from voiceticket_analyzer.ports import LanguageModelTarget
from voiceticket_analyzer.prompt import analysis_schema, messages
from voiceticket_common.events import Analysis


async def test_strict_schema_request_is_valid_and_answer_parses(sandbox) -> None:  # type: ignore[no-untyped-def]
    model = OpenAIChatModel(["127.0.0.1"])
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
