from __future__ import annotations

from voiceticket_common.settings import ServiceSettings


class AnalyzerSettings(ServiceSettings):
    llm_timeout_seconds: float = 60.0
    max_transcript_chars: int = 20_000
