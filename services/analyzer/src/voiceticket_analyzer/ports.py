"""The analyzer's outside world: a language model that fills a strict JSON schema, and where the
analyses it produced are kept for duplicates."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from voiceticket_common.events import CallAnalyzed, CallTranscribed
from voiceticket_common.ledger import LedgerUnavailable as LedgerUnavailable
from voiceticket_common.ledger import OutcomeStore
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


@dataclass(frozen=True)
class AnalysisKey:
    """What an analysis is kept under: the call and a digest of what it was made from (the
    transcript, its language and whether it is missing), so a new transcript is analysed anew."""

    tenant_id: str
    call_sid: str
    transcript_sha256: str

    @classmethod
    def of(cls, event: CallTranscribed) -> AnalysisKey:
        made_from = json.dumps([event.transcript_missing, event.language, event.transcript])
        return cls(event.tenant_id, event.call_sid, hashlib.sha256(made_from.encode()).hexdigest())


AnalysisLedger = OutcomeStore[AnalysisKey, CallAnalyzed]
"""The ``call.analyzed`` each transcript produced, kept for a while (ADR 8). When it is
unavailable (``LedgerUnavailable``) the transcript is analysed (again): the call is not delayed."""
