"""The analyzer's outside world: a language model that fills a strict JSON schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from voiceticket_common.openai_client import OpenAIEndpoint

LanguageModelTarget = OpenAIEndpoint
"""The tenant's chat-completions server and analysis model."""


@dataclass(frozen=True)
class Completion:
    content: str | None
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int


class LanguageModel(Protocol):
    async def complete(
        self, messages: list[dict[str, str]], schema: dict[str, Any], target: LanguageModelTarget
    ) -> Completion: ...
