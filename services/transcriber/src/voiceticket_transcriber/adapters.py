"""Real adapters: Twilio recording media over HTTPS (``recording_source.py``), OpenAI (or
compatible) speech-to-text, the local Whisper engine (``local_whisper.py``) chosen per tenant, and
the tenant's concurrency limit in front of them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import openai

from voiceticket_common.bus import PermanentError
from voiceticket_common.config_client import RuntimeConfig
from voiceticket_common.http import provider_client, tenant_hosts
from voiceticket_common.openai_client import sdk_http_client
from voiceticket_common.openai_errors import translate_openai_error
from voiceticket_common.provider_limits import ProviderLimits, limits
from voiceticket_common.resources import AsyncResource
from voiceticket_common.runtime_views import TranscriberView

from .local_whisper import whisper_segment
from .ports import Recording, SpeechToTextTarget, Transcript, TranscriptionEngine
from .recording_source import TwilioRecordingSource as TwilioRecordingSource  # for the composition root
from .whisper_languages import iso_language


class OpenAITranscriptionEngine(AsyncResource):
    """OpenAI's /audio/transcriptions through the official SDK, on our traced, allow-listed client.

    ``whisper-1`` is asked for ``verbose_json`` so that segments Whisper itself rates as probably
    not speech (``no_speech_prob``) can be dropped: that is where it invents text for silence.
    The gpt-4o transcription models and unknown (self-hosted) models get ``json``, the one format
    every one of them supports.
    """

    def __init__(
        self,
        allowed_hosts: Sequence[str],
        timeout: float = 120.0,
        no_speech_threshold: float = 0.6,
        allow_tenant_hosts: bool = True,
    ) -> None:
        """``allow_tenant_hosts``: the target's own server is allowed (``voiceticket_common.http``)."""
        self._http = provider_client(
            "openai", allowed_hosts, timeout=timeout, allow_tenant_hosts=allow_tenant_hosts
        )
        self._no_speech_threshold = no_speech_threshold

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        client = openai.AsyncOpenAI(
            api_key=target.api_key.get_secret_value(),
            base_url=target.base_url,
            http_client=sdk_http_client(self._http),
            max_retries=0,  # the handler owns retries, with Retry-After honoured
        )
        kwargs: dict[str, Any] = {}
        if target.language:
            kwargs["language"] = target.language
        if target.prompt:
            kwargs["prompt"] = target.prompt
        verbose = target.model == "whisper-1"
        try:
            with tenant_hosts(target.base_url):  # the tenant's speech server, for this request only
                result = await client.audio.transcriptions.create(
                    model=target.model,
                    file=(recording.filename, recording.audio, recording.content_type),
                    response_format="verbose_json" if verbose else "json",
                    temperature=0,
                    **kwargs,
                )
        except openai.OpenAIError as exc:
            raise translate_openai_error(exc, "transcription") from None
        if not verbose:
            return Transcript((result.text or "").strip())
        # verbose_json: the language the server heard (OpenAI names it, "german"; self-hosted
        # servers mostly give the code) and the segments, silence-rated ones left out.
        language = iso_language(getattr(result, "language", None))
        segments = getattr(result, "segments", None)
        if not segments:
            return Transcript((result.text or "").strip(), language=language)
        kept = [s for s in segments if not self._unlikely_speech(s)]
        return Transcript(
            " ".join(s.text.strip() for s in kept).strip(),
            language=language,
            segments=tuple(whisper_segment(s) for s in kept),
        )

    def _unlikely_speech(self, segment: Any) -> bool:
        # Whisper's own rule: a segment is silence when the no-speech probability is high and the
        # decoder was not confident either (openai/whisper transcribe.py, logprob_threshold -1).
        no_speech = getattr(segment, "no_speech_prob", 0.0) or 0.0
        avg_logprob = getattr(segment, "avg_logprob", 0.0) or 0.0
        return no_speech > self._no_speech_threshold and avg_logprob < -1.0

    async def aclose(self) -> None:
        await self._http.aclose()


class TenantLimitedEngine:
    """Speech-to-text for one call's recording, each request holding one of the tenant's
    ``speech_to_text`` slots (``provider_concurrency``, ``voiceticket_common.provider_limits``).

    Made per event by the composition root (``bootstrap.py``): the handler retries each upload
    within its budget, calling ``transcribe`` once per attempt, so a slot is held while the
    provider works and never while a 429's Retry-After is waited out. The limit is read from the
    line's view (cached) at each attempt, so a changed limit applies to the next one.
    """

    def __init__(
        self,
        engine: TranscriptionEngine,
        config: RuntimeConfig[TranscriberView],
        tenant_id: str,
        line_number: str,
        slots: ProviderLimits = limits,
    ) -> None:
        self._engine = engine
        self._config = config
        self._tenant_id = tenant_id
        self._line_number = line_number
        self._slots = slots

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        view = await self._config.line(self._line_number)
        limit = view.tenant.provider_concurrency.speech_to_text
        async with self._slots.slot(self._tenant_id, "speech_to_text", limit):
            return await self._engine.transcribe(recording, target)


class EngineByBackend:
    """The engine the target's ``backend`` names (the tenant's ``transcription_backend``):
    ``openai`` or ``local``. A backend this transcriber does not have is a permanent error (a newer
    config-api's value; no retry brings the engine)."""

    def __init__(self, engines: Mapping[str, TranscriptionEngine]) -> None:
        self._engines = dict(engines)

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        engine = self._engines.get(target.backend)
        if engine is None:
            raise PermanentError(f"no speech-to-text backend {target.backend!r} in this transcriber")
        return await engine.transcribe(recording, target)
