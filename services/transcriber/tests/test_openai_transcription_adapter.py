"""Speech-to-text against the OpenAI stand-in, which validates every request against the spec."""

from __future__ import annotations

import base64
import io
import time

import httpx
from pcm_samples import tone_wav
from pydantic import SecretStr
from staged_audio import WrittenRecordings, prepared

from voiceticket_common.events import RecordingCompleted
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import TranscriberView
from voiceticket_common.testing import LINE, StaticRuntimeConfig, recording_completed
from voiceticket_transcriber.adapters import OpenAITranscriptionEngine
from voiceticket_transcriber.audio_prep import UploadLimits
from voiceticket_transcriber.handlers import TranscriberDeps, transcribe_recording
from voiceticket_transcriber.ports import Recording, SpeechToTextTarget


async def register(sandbox, audio: bytes, transcript: str) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        body = {"audio_base64": base64.b64encode(audio).decode(), "transcript": transcript}
        (await client.post(f"{sandbox.urls.openai}/_sandbox/transcripts", json=body)).raise_for_status()


async def behave(sandbox, **knobs: str) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient() as client:
        (await client.put(f"{sandbox.urls.openai}/_sandbox/behaviour", json=knobs)).raise_for_status()


def target(sandbox, model: str, language: str | None = None, prompt: str | None = None) -> SpeechToTextTarget:  # type: ignore[no-untyped-def]
    return SpeechToTextTarget(
        sandbox.urls.openai + "/v1", SecretStr(sandbox.openai_key), model, language, prompt
    )


def wav_recording(audio: bytes) -> Recording:
    return Recording(io.BytesIO(audio), "audio/x-wav", "recording.wav")


async def test_model_language_and_vocabulary_prompt_reach_the_api_in_a_valid_request(sandbox) -> None:  # type: ignore[no-untyped-def]
    audio = tone_wav(1.2, frequency=389)
    await register(sandbox, audio, "Mein FlexiBill Konto ist gesperrt.")
    engine = OpenAITranscriptionEngine(["http://127.0.0.1:*"])
    try:
        whisper = await engine.transcribe(
            wav_recording(audio), target(sandbox, "whisper-1", "de", "FlexiBill, Acme X2.")
        )
        mini = await engine.transcribe(wav_recording(audio), target(sandbox, "gpt-4o-mini-transcribe"))
    finally:
        await engine.aclose()
    assert whisper.text == mini.text == "Mein FlexiBill Konto ist gesperrt."
    first, second = sandbox.state.records_of("openai")
    assert first["valid"] and second["valid"], (first["errors"], second["errors"])
    fields = first["body"]["fields"]
    assert (fields["model"], fields["language"], fields["prompt"], fields["response_format"]) == (
        "whisper-1",
        "de",
        "FlexiBill, Acme X2.",
        "verbose_json",
    )
    assert second["body"]["fields"]["response_format"] == "json"
    assert "prompt" not in second["body"]["fields"] and "language" not in second["body"]["fields"]


async def test_whisper_reports_the_language_it_heard_as_an_iso_code_with_its_segments(sandbox) -> None:  # type: ignore[no-untyped-def]
    audio = tone_wav(1.4, frequency=397)
    await register(sandbox, audio, "Guten Tag, mein Drucker druckt nicht mehr.")
    engine = OpenAITranscriptionEngine(["http://127.0.0.1:*"])
    try:
        whisper = await engine.transcribe(wav_recording(audio), target(sandbox, "whisper-1"))
        mini = await engine.transcribe(wav_recording(audio), target(sandbox, "gpt-4o-mini-transcribe"))
    finally:
        await engine.aclose()
    # OpenAI answers "german"; the event carries ISO 639-1, as the local engine reports it.
    assert sandbox.state.records_of("openai")[0]["valid"]
    assert whisper.language == "de"
    assert whisper.segments is not None and len(whisper.segments) == 1
    assert whisper.segments[0].end_seconds == 1.4 and whisper.segments[0].confidence > 0.5
    assert (mini.language, mini.segments) == (None, None)  # plain json names no language


async def test_whisper_segments_rated_as_no_speech_are_dropped(sandbox) -> None:  # type: ignore[no-untyped-def]
    await behave(sandbox, unknown_audio_text="Thank you for watching.")
    engine = OpenAITranscriptionEngine(["http://127.0.0.1:*"])
    try:
        noise = wav_recording(tone_wav(0.8, frequency=59))
        assert (await engine.transcribe(noise, target(sandbox, "whisper-1"))).text == ""
        # gpt-4o models give no segments: the phrase comes back, the handler's filter drops it.
        assert (
            await engine.transcribe(noise, target(sandbox, "gpt-4o-transcribe"))
        ).text == "Thank you for watching."
    finally:
        await engine.aclose()


def handler_deps(sandbox, audio: bytes, limits: UploadLimits, budget: RetryBudget) -> TranscriberDeps:  # type: ignore[no-untyped-def]
    tenant = {
        "twilio_account_sid": sandbox.account_sid,
        "twilio_auth_token": sandbox.auth_token,
        "openai_base_url": sandbox.urls.openai + "/v1",
        "openai_api_key": sandbox.openai_key,
        "transcription_model": "gpt-4o-mini-transcribe",
        "vocabulary": ["Acme"],
    }
    config = StaticRuntimeConfig.of(
        TranscriberView, {LINE: ("acme", {"language_mode": "auto", "language": "en"}, tenant)}
    )
    return TranscriberDeps(
        config=config,
        recordings=WrittenRecordings(audio),
        engine=OpenAITranscriptionEngine(["http://127.0.0.1:*"]),
        limits=limits,
        budget=budget,
    )


def completed(duration: int) -> RecordingCompleted:
    return recording_completed(
        call_sid="CA" + "4" * 32,
        account_sid="AC" + "0123456789abcdef" * 2,
        recording_sid="RE" + "5" * 32,
        recording_url="http://127.0.0.1/unused",
        duration_seconds=duration,
    )


async def test_a_recording_over_the_upload_limit_is_split_into_valid_uploads_and_joined(sandbox) -> None:  # type: ignore[no-untyped-def]
    audio = tone_wav(9.0, rate=16000, frequency=421, channels=2)  # 576 kB
    limits = UploadLimits(max_bytes=64_000)
    parts = [data for _, _, data in prepared(audio, limits)]
    for i, part in enumerate(parts):
        await register(sandbox, part, f"Part {i + 1}.")
    deps = handler_deps(sandbox, audio, limits, RetryBudget())
    try:
        [event] = await transcribe_recording(completed(9), deps)
    finally:
        await deps.engine.aclose()  # type: ignore[attr-defined]
    assert len(parts) == 3
    assert event.transcript == "Part 1. Part 2. Part 3."
    records = sandbox.state.records_of("openai")
    assert len(records) == 3 and all(r["valid"] for r in records)
    assert all(r["body"]["files"][0]["size"] <= 64_000 for r in records)
    assert records[1]["body"]["fields"]["prompt"] == "Acme. Part 1."


async def test_429_with_retry_after_is_waited_out_before_the_next_attempt(sandbox) -> None:  # type: ignore[no-untyped-def]
    audio = tone_wav(1.0, frequency=433)
    await register(sandbox, audio, "Hello, my invoice is wrong.")
    async with httpx.AsyncClient() as client:
        fault = {"path_regex": "/audio/transcriptions$", "status": 429, "retry_after": 1, "times": 1}
        (await client.post(f"{sandbox.urls.openai}/_sandbox/faults", json=fault)).raise_for_status()
    deps = handler_deps(sandbox, audio, UploadLimits(), RetryBudget(attempts=3, seconds=10))
    started = time.monotonic()
    try:
        [event] = await transcribe_recording(completed(1), deps)
    finally:
        await deps.engine.aclose()  # type: ignore[attr-defined]
    limited, answered = sandbox.state.records_of("openai")
    assert limited["status"] == 429 and answered["status"] == 200
    assert answered["time"] - limited["time"] >= 1.0
    assert time.monotonic() - started >= 1.0
    assert event.transcript == "Hello, my invoice is wrong."
