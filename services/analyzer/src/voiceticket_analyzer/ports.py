"""The analyzer's outside world: a language model that fills a strict JSON schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import SecretStr


@dataclass(frozen=True)
class LanguageModelTarget:
    base_url: str
    api_key: SecretStr
    model: str


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
