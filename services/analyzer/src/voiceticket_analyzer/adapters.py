"""OpenAI (or a compatible server) chat completions with strict structured output.

The answer's body is read here rather than by the SDK's models, which trust the server's shape: an
OpenAI-compatible server may answer 200 with no choices, a null message, content that is not text,
a truncated or filtered answer, or no JSON at all. Each of those becomes a ``Completion`` without
content, which the handler counts as an off-schema attempt (retried within the budget, then a
heuristic analysis for triage), never an exception that would dead-letter the call. Token usage that
is missing or not a count of tokens is taken as 0, so the cost estimate never goes negative.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx
import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.shared_params import ResponseFormatJSONSchema

from voiceticket_common.http import AllowListTransport, provider_client, tenant_hosts
from voiceticket_common.openai_client import sdk_http_client
from voiceticket_common.openai_errors import translate_openai_error
from voiceticket_common.resources import AsyncResource

from .ports import Completion, LanguageModelTarget

log = logging.getLogger(__name__)

UNUSABLE_FINISH_REASONS = frozenset({"length", "content_filter", "tool_calls", "function_call"})
"""Finish reasons under which the content is not the whole answer we asked for: cut at the token
limit, cut by a content filter, or a tool call instead of the schema's JSON."""


class OpenAIChatModel(AsyncResource):
    def __init__(
        self,
        allowed_hosts: Sequence[str],
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        allow_tenant_hosts: bool = True,
    ) -> None:
        """``transport`` replaces the network under the allow-list (a test's ``httpx.MockTransport``);
        ``allow_tenant_hosts``: the target's own server is allowed (``voiceticket_common.http``)."""
        if transport is None:
            self._http = provider_client(
                "openai", allowed_hosts, timeout=timeout, allow_tenant_hosts=allow_tenant_hosts
            )
        else:
            self._http = httpx.AsyncClient(
                transport=AllowListTransport(
                    allowed_hosts, "openai", transport, allow_tenant_hosts=allow_tenant_hosts
                ),
                timeout=httpx.Timeout(timeout, connect=10.0),
            )

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
            # The raw response: errors (4xx, 5xx, timeouts) are still raised, the body parsed below.
            with tenant_hosts(target.base_url):  # the tenant's LLM server, for this request only
                raw = await client.chat.completions.with_raw_response.create(
                    model=target.model,
                    messages=[_chat_message(m) for m in messages],
                    temperature=0,
                    response_format=response_format,
                )
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, "analysis") from None
        return completion_from_body(raw.http_response.content)

    async def aclose(self) -> None:
        await self._http.aclose()


def completion_from_body(body: bytes) -> Completion:
    """The first choice's content or refusal and the token usage of a chat.completion body.

    Whatever the body holds, this returns: an unusable answer is a ``Completion`` with neither
    content nor refusal (the reason is logged, never the content, which may quote the caller).
    """

    try:
        data: object = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return _unusable("the body is not JSON", None)
    if not isinstance(data, dict):
        return _unusable("the body is not a JSON object", None)
    usage = data.get("usage")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        return _unusable("no choices", usage)
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        return _unusable("no message", usage)
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal.strip():
        return _completion(None, refusal, usage)
    finish_reason = choice.get("finish_reason")
    if finish_reason in UNUSABLE_FINISH_REASONS:
        return _unusable(f"finish_reason {finish_reason}", usage)
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        return _unusable("no text content", usage)
    return _completion(content, None, usage)


def _unusable(problem: str, usage: object) -> Completion:
    log.warning("unusable chat completion; counted as an off-schema answer", extra={"problem": problem})
    return _completion(None, None, usage)


def _completion(content: str | None, refusal: str | None, usage: object) -> Completion:
    prompt_tokens, completion_tokens = _tokens(usage, "prompt_tokens"), _tokens(usage, "completion_tokens")
    if usage is not None and None in (prompt_tokens, completion_tokens):
        log.warning("chat completion usage is not a token count; counted as 0")
    return Completion(
        content=content,
        refusal=refusal,
        prompt_tokens=prompt_tokens or 0,
        completion_tokens=completion_tokens or 0,
    )


def _tokens(usage: object, field: str) -> int | None:
    """A non-negative whole number of tokens, else None."""

    value = usage.get(field) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


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
