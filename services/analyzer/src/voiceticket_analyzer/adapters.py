"""OpenAI (or a compatible server) chat completions with strict structured output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.shared_params import ResponseFormatJSONSchema

from voiceticket_common.http import provider_client
from voiceticket_common.openai_client import sdk_http_client
from voiceticket_common.openai_errors import translate_openai_error
from voiceticket_common.resources import AsyncResource

from .ports import Completion, LanguageModelTarget


class OpenAIChatModel(AsyncResource):
    def __init__(self, allowed_hosts: Sequence[str], timeout: float = 60.0) -> None:
        self._http = provider_client("openai", allowed_hosts, timeout=timeout)

    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], target: LanguageModelTarget
    ) -> Completion:
        client = openai.AsyncOpenAI(
            api_key=target.api_key.get_secret_value(),
            base_url=target.base_url,
            http_client=sdk_http_client(self._http),
            max_retries=0,
        )
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {"name": "call_analysis", "schema": schema, "strict": True},
        }
        try:
            response = await client.chat.completions.create(
                model=target.model,
                messages=[_chat_message(m) for m in messages],
                temperature=0,
                response_format=response_format,
            )
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, "analysis") from None
        message = response.choices[0].message
        usage = response.usage
        return Completion(
            content=message.content,
            refusal=getattr(message, "refusal", None),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _chat_message(message: dict[str, str]) -> ChatCompletionMessageParam:
    """One of the prompt's ``{"role": ..., "content": ...}`` messages as the SDK's typed message."""

    role, content = message["role"], message["content"]
    if role == "system":
        return ChatCompletionSystemMessageParam(role="system", content=content)
    if role == "user":
        return ChatCompletionUserMessageParam(role="user", content=content)
    if role == "assistant":
        return ChatCompletionAssistantMessageParam(role="assistant", content=content)
    raise ValueError(f"unsupported chat message role {role!r}")
