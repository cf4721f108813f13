"""The local engine with the real model (the packaged Whisper ``tiny.en``, int8 on the CPU): the
bundled English sample calls are recognised within a word-error-rate bound, and silence and a pure
tone come back as no text at all, not as words Whisper invents for them.

The model loads in well under a second; each sample (15-20 s of audio) takes about a second on
two cores, so only two samples are transcribed here (the benchmark, ``bench/local_stt.py``, runs
them all).
"""

from __future__ import annotations

import asyncio
import io
import math
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr
from staged_audio import WrittenRecordings

from voiceticket.samples import sample_calls
from voiceticket_common.events import CallTranscribed
from voiceticket_common.runtime_views import TranscriberLine, TranscriberTenant, TranscriberView
from voiceticket_common.testing import LINE, StaticRuntimeConfig, recording_completed
from voiceticket_transcriber.handlers import TranscriberDeps, transcribe_recording
from voiceticket_transcriber.local_whisper import LocalWhisperEngine, LocalWhisperOptions
from voiceticket_transcriber.ports import Recording, SpeechToTextTarget
from voiceticket_transcriber.wer import word_error_rate

WER_BOUND = 0.5
"""tiny.en on the espeak-ng samples measures 0.2-0.4 (names and rare words go wrong: "Dana with
Field from North wind"); a model that stopped recognising speech would be near 1."""


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalWhisperEngine]:
    # Greedy decoding (beam 1) keeps each sample to a second or two; the bound holds for beam 5 too.
    local = LocalWhisperEngine(LocalWhisperOptions(cpu_threads=2, beam_size=1))
    yield local
    asyncio.run(local.aclose())


def local_tenant(*vocabulary: str) -> StaticRuntimeConfig[TranscriberView]:
    """A tenant with no OpenAI key: the local engine is its default."""
    view = TranscriberView(
        tenant_id="acme",
        line=TranscriberLine(number=LINE, language_mode="auto", language="en"),
        tenant=TranscriberTenant(
            twilio_account_sid="AC" + "a" * 32, twilio_auth_token=SecretStr("tok"), vocabulary=vocabulary
        ),
    )
    return StaticRuntimeConfig({LINE: view})


def pcm_wav(samples: np.ndarray, rate: int = 8000) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def pure_tone(seconds: float, frequency: float = 440.0, rate: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return pcm_wav(0.5 * np.sin(2 * math.pi * frequency * t), rate)


def local_target() -> SpeechToTextTarget:
    return SpeechToTextTarget(
        base_url="", api_key=SecretStr(""), model="local", language=None, backend="local"
    )


async def test_a_sample_call_is_recognised_end_to_end_with_the_tenants_vocabulary(
    engine: LocalWhisperEngine,
) -> None:
    sample = sample_calls()["vpn-outage"]
    # Without the terms tiny.en hears "Dana with Field from North Wind"; as hotwords and initial
    # prompt they are spelled right.
    config = local_tenant("Dana Whitfield", "Northwind", "VPN")
    deps = TranscriberDeps(config=config, recordings=WrittenRecordings(sample.audio), engine=engine)
    [event] = await transcribe_recording(recording_completed(duration_seconds=sample.duration_seconds), deps)
    assert isinstance(event, CallTranscribed)
    assert word_error_rate(sample.transcript, event.transcript) <= WER_BOUND, event.transcript
    assert "Whitfield" in event.transcript and "Northwind" in event.transcript, event.transcript
    assert event.model == "local:tiny.en"
    assert event.detected_language == "en"
    assert event.segments
    assert all(0 < s.confidence <= 1 and s.start_seconds <= s.end_seconds for s in event.segments)
    assert event.segments[-1].end_seconds <= sample.duration_seconds + 1
    assert not event.transcript_missing
    assert event.estimated_cost_usd == 0.0


async def test_numbers_in_an_english_sample_are_recognised_within_the_bound(
    engine: LocalWhisperEngine,
) -> None:
    sample = sample_calls()["billing-account"]
    with sample.path.open("rb") as audio:
        heard = await engine.transcribe(Recording(audio, "audio/x-wav", "r.wav", sample.path), local_target())
    assert word_error_rate(sample.transcript, heard.text) <= WER_BOUND, heard.text
    assert "James Carter" in heard.text


async def test_silence_gives_no_text(engine: LocalWhisperEngine, tmp_path: Path) -> None:
    # Straight to the engine: the handler would not even send a silent recording (audio_prep).
    path = tmp_path / "silence.wav"
    path.write_bytes(pcm_wav(np.zeros(8000 * 6)))
    with path.open("rb") as audio:
        heard = await engine.transcribe(Recording(audio, "audio/x-wav", "r.wav", path), local_target())
    assert heard.text == ""
    assert heard.segments == ()


async def test_a_pure_tone_gives_no_invented_text(engine: LocalWhisperEngine) -> None:
    # Loud enough to pass the handler's silence check, so it reaches the engine: VAD cuts it.
    deps = TranscriberDeps(config=local_tenant(), recordings=WrittenRecordings(pure_tone(6.0)), engine=engine)
    [event] = await transcribe_recording(recording_completed(duration_seconds=6), deps)
    assert isinstance(event, CallTranscribed)
    assert event.transcript == ""
    assert event.segments == []
    assert not event.transcript_missing
