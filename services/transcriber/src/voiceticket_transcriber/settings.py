from __future__ import annotations

from voiceticket_common.settings import ServiceSettings


class TranscriberSettings(ServiceSettings):
    max_recording_bytes: int = 25 * 1024 * 1024
    """OpenAI's upload limit; larger recordings are refused (re-encoding comes with the provider issue)."""
    download_timeout_seconds: float = 30.0
