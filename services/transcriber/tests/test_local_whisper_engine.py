"""The local engine's adapter around faster-whisper, with a stand-in model: what it is asked, what it
reports, its bounded pool off the event loop, cancellation, errors; and how a tenant's
``transcription_backend`` picks the engine. (The real model: ``test_local_whisper_model.py``.)"""

from __future__ import annotations

import asyncio
import io
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from pcm_samples import tone_wav
from pydantic import SecretStr
from staged_audio import WrittenRecordings

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.events import CallTranscribed, TranscriptSegment
from voiceticket_common.runtime_views import TranscriberLine, TranscriberTenant, TranscriberView
from voiceticket_common.testing import LINE, StaticRuntimeConfig, recording_completed
from voiceticket_transcriber.adapters import EngineByBackend
from voiceticket_transcriber.audio_prep import UploadLimits
from voiceticket_transcriber.handlers import TranscriberDeps, speech_to_text_target, transcribe_recording
from voiceticket_transcriber.local_whisper import LocalWhisperEngine, LocalWhisperOptions, load_whisper_model
from voiceticket_transcriber.ports import Recording, SpeechToTextTarget, Transcript


@dataclass
class Segment:
    text: str
    start: float
    end: float
    avg_logprob: float = -0.2
    no_speech_prob: float = 0.1


@dataclass
class Info:
    language: str = "en"
    language_probability: float = 0.97


class StandInModel:
    """``WhisperModel.transcribe``'s shape: (lazy segments, info). Records each call's source and
    options; ``hold`` blocks each segment until set, so a test sees what runs while it decodes."""

    def __init__(self, *segments: Segment, hold: threading.Event | None = None) -> None:
        self.segments = segments or (Segment(" Hello there.", 0.0, 1.5),)
        self.hold = hold
        self.calls: list[tuple[str | BinaryIO, dict[str, Any]]] = []
        self.running = 0
        self.most_running = 0
        self.yielded = 0
        self.started = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()

    def transcribe(self, audio: str | BinaryIO, **options: Any) -> tuple[Any, Info]:
        self.calls.append((audio, options))
        return self._decode(), Info()

    def _decode(self) -> Any:
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        self.started.set()
        try:
            for segment in self.segments:
                if self.hold is not None:
                    self.hold.wait(5)
                self.yielded += 1
                yield segment
        finally:
            with self._lock:
                self.running -= 1
            self.finished.set()


def target(**kw: Any) -> SpeechToTextTarget:
    fields: dict[str, Any] = {
        "base_url": "",
        "api_key": SecretStr(""),
        "model": "local",
        "language": None,
        "backend": "local",
    }
    return SpeechToTextTarget(**(fields | kw))


def recording(path: Path | None = None) -> Recording:
    return Recording(io.BytesIO(tone_wav(0.5)), "audio/x-wav", "recording.wav", path)


def engine_with(model: StandInModel, **options: Any) -> tuple[LocalWhisperEngine, list[int]]:
    loads: list[int] = []

    def load(opts: LocalWhisperOptions) -> StandInModel:
        loads.append(threading.get_ident())
        return model

    return LocalWhisperEngine(LocalWhisperOptions(**options), load=load), loads


async def test_the_file_is_decoded_from_its_path_with_vad_language_prompt_and_hotwords(
    tmp_path: Path,
) -> None:
    model = StandInModel()
    engine, _ = engine_with(model, beam_size=3)
    path = tmp_path / "recording.wav"
    path.write_bytes(tone_wav(0.5))
    async with engine:
        await engine.transcribe(
            recording(path),
            target(
                language="de", prompt="FlexiBill, Acme X2. Previous words", vocabulary="FlexiBill, Acme X2."
            ),
        )
    [(source, options)] = model.calls
    assert source == str(path)  # faster-whisper streams it from disk, not from bytes we hold
    assert options["vad_filter"] is True
    assert options["language"] == "de"
    assert options["beam_size"] == 3
    assert options["initial_prompt"] == "FlexiBill, Acme X2. Previous words"
    assert options["hotwords"] == "FlexiBill, Acme X2."


async def test_segments_become_text_language_and_per_segment_confidence() -> None:
    model = StandInModel(
        Segment(" My VPN is down.", 0.0, 2.04, avg_logprob=-0.1, no_speech_prob=0.02),
        Segment("  ", 2.04, 2.5, avg_logprob=-2.0),
        Segment(" Please call back.", 2.5, 4.0, avg_logprob=-0.7, no_speech_prob=0.3),
    )
    engine, _ = engine_with(model)
    async with engine:
        heard = await engine.transcribe(recording(), target())
    assert heard.text == "My VPN is down. Please call back."
    assert heard.model == "local:tiny.en"
    assert (heard.language, heard.language_probability) == ("en", 0.97)
    assert heard.segments is not None
    first, _, last = heard.segments
    assert (first.start_seconds, first.end_seconds) == (0.0, 2.04)
    assert first.confidence == pytest.approx(math.exp(-0.1), abs=1e-4)
    assert first.no_speech_probability == pytest.approx(0.02)
    assert last.confidence == pytest.approx(math.exp(-0.7), abs=1e-4)


async def test_a_model_by_path_is_named_after_its_directory(tmp_path: Path) -> None:
    assert (
        LocalWhisperOptions(model_dir=tmp_path / "whisper-small-ct2").model_name == "local:whisper-small-ct2"
    )
    with pytest.raises(PermanentError, match="model.bin"):
        load_whisper_model(LocalWhisperOptions(model_dir=tmp_path))  # not a model directory


async def test_the_model_loads_once_on_first_use_in_a_worker_thread() -> None:
    engine, loads = engine_with(StandInModel())
    assert loads == []  # not at construction (nor at import, nor at service start)
    async with engine:
        await asyncio.gather(*(engine.transcribe(recording(), target()) for _ in range(3)))
    assert len(loads) == 1
    assert loads[0] != threading.get_ident()


@pytest.mark.parametrize("workers", [1, 2])
async def test_the_pool_bounds_transcriptions_and_the_loop_stays_responsive(workers: int) -> None:
    hold = threading.Event()
    model = StandInModel(Segment(" a", 0, 1), Segment(" b", 1, 2), hold=hold)
    engine, _ = engine_with(model, workers=workers)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    async with engine:
        tick = asyncio.create_task(ticker())
        calls = [asyncio.create_task(engine.transcribe(recording(), target())) for _ in range(4)]
        await asyncio.sleep(0.2)  # the decoders are blocked; the loop must not be
        assert model.running == workers
        assert ticks > 10
        hold.set()
        results = await asyncio.gather(*calls)
        tick.cancel()
    assert [r.text for r in results] == ["a b"] * 4
    assert model.most_running == workers


async def test_a_cancelled_transcription_stops_and_its_thread_ends_before_the_cancel_goes_on() -> None:
    hold = threading.Event()
    model = StandInModel(*(Segment(f" w{i}", i, i + 1) for i in range(50)), hold=hold)
    engine, _ = engine_with(model)
    async with engine:
        call = asyncio.create_task(engine.transcribe(recording(), target()))
        assert await asyncio.to_thread(model.started.wait, 5)
        call.cancel()
        threading.Timer(0.1, hold.set).start()  # the decoder reaches its next segment
        with pytest.raises(asyncio.CancelledError):
            await call
        assert model.finished.is_set()  # the thread was waited for: it is no longer in the workspace
    assert model.yielded < 50


class FFmpegError(Exception):
    pass


FFmpegError.__module__ = "av.error"  # what PyAV raises for a file that is not decodable audio


class FailingModel:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def transcribe(self, audio: str | BinaryIO, **options: Any) -> tuple[Any, Any]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [(FFmpegError("Invalid data found"), PermanentError), (RuntimeError("out of memory"), TransientError)],
)
async def test_decoding_errors_are_permanent_others_transient(error: Exception, expected: type) -> None:
    engine = LocalWhisperEngine(load=lambda _: FailingModel(error))
    async with engine:
        with pytest.raises(expected) as raised:
            await engine.transcribe(recording(), target())
    assert "Invalid data" not in str(raised.value)  # the type is named, not the library's words


class Named:
    def __init__(self, name: str) -> None:
        self.name = name
        self.targets: list[SpeechToTextTarget] = []

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        self.targets.append(target)
        return Transcript(self.name)


async def test_the_backend_of_the_target_picks_the_engine() -> None:
    openai, local = Named("openai"), Named("local")
    engines = EngineByBackend({"openai": openai, "local": local})
    assert (await engines.transcribe(recording(), target(backend="local"))).text == "local"
    assert (await engines.transcribe(recording(), target(backend="openai"))).text == "openai"
    with pytest.raises(PermanentError, match="azure"):
        await engines.transcribe(recording(), target(backend="azure"))


def view(key: str | None, backend: str | None = None, vocabulary: tuple[str, ...] = ()) -> TranscriberView:
    return TranscriberView(
        tenant_id="acme",
        line=TranscriberLine(number=LINE, language_mode="enforced", language="en"),
        tenant=TranscriberTenant(
            twilio_account_sid="AC" + "a" * 32,
            twilio_auth_token=SecretStr("tok"),
            openai_api_key=SecretStr(key) if key is not None else None,
            transcription_backend=backend,
            vocabulary=vocabulary,
        ),
    )


@pytest.mark.parametrize(
    ("key", "backend", "chosen"),
    [
        ("sk-test", None, "openai"),  # unset, with a key: the tenant's OpenAI
        (None, None, "local"),  # unset, no key: the local engine
        ("", None, "local"),
        ("sk-test", "local", "local"),  # chosen: the audio stays here although there is a key
        ("sk-test", "openai", "openai"),
    ],
)
def test_the_tenants_backend_and_its_default(key: str | None, backend: str | None, chosen: str) -> None:
    built = speech_to_text_target(view(key, backend, ("FlexiBill", "Acme X2")))
    assert built.backend == chosen
    assert built.vocabulary == "FlexiBill, Acme X2."
    assert built.language is None  # never forced, even on a line that enforces English
    if chosen == "local":
        assert built.api_key.get_secret_value() == ""  # no key travels to the local engine


def test_openai_chosen_without_a_key_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError, match="speech_to_text_api_key"):
        speech_to_text_target(view(None, "openai"))


class PartEngine:
    """Answers each part with one segment at 1-2 s of the part, naming its own model."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        assert recording.path is not None and recording.path.is_file()
        self.sizes.append(recording.path.stat().st_size)
        segment = {"start_seconds": 1.0, "end_seconds": 2.0, "confidence": 0.8, "no_speech_probability": 0.1}
        return Transcript(
            f"part {len(self.sizes)}.",
            model="local:tiny.en",
            language="en",
            language_probability=1.0,
            segments=(TranscriptSegment(**segment),),
        )


async def test_a_local_tenants_long_recording_is_split_at_the_local_limit_and_reported_on_its_timeline() -> (
    None
):
    engine = PartEngine()
    deps = TranscriberDeps(
        config=StaticRuntimeConfig({LINE: view(None)}),
        recordings=WrittenRecordings(tone_wav(75.0)),
        engine=engine,
        local_limits=UploadLimits(max_bytes=16_000_000, max_seconds=30.0),
    )
    started = time.monotonic()
    [event] = await transcribe_recording(recording_completed(duration_seconds=75), deps)
    assert time.monotonic() - started < 30
    assert isinstance(event, CallTranscribed)
    assert len(engine.sizes) == 3  # 75 s in parts of at most 30 s (the OpenAI limit is 1380 s)
    assert event.transcript == "part 1. part 2. part 3."
    assert event.model == "local:tiny.en"
    assert event.estimated_cost_usd == 0.0  # nothing to pay
    assert (event.detected_language, event.detected_language_probability) == ("en", 1.0)
    assert event.segments is not None
    starts = [s.start_seconds for s in event.segments]
    assert starts[0] == 1.0 and starts[1] > 20.0 and starts[2] > starts[1] + 20.0  # shifted per part
