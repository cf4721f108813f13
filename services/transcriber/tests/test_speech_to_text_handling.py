"""The transcriber handler at depth: vocabulary, silence, phantoms, splitting, budget, cost."""

from __future__ import annotations

import pytest
from pcm_samples import silent_wav, tone_wav
from pydantic import ValidationError
from staged_audio import WrittenRecordings, read_upload

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.events import CallTranscribed, RecordingCompleted
from voiceticket_common.retry_budget import RetryBudget
from voiceticket_common.runtime_views import TranscriberView
from voiceticket_common.testing import (
    LINE,
    Outcomes,
    RecordingSleep,
    StaticRuntimeConfig,
    VirtualClock,
    recording_completed,
)
from voiceticket_transcriber.audio_prep import UploadLimits
from voiceticket_transcriber.handlers import TranscriberDeps, transcribe_recording
from voiceticket_transcriber.ports import Recording, SpeechToTextTarget, Transcript
from voiceticket_transcriber.settings import TranscriberSettings
from voiceticket_transcriber.wav import parse_wav


class ScriptedEngine:
    """Answers each upload with the next outcome (text or exception); records what it was sent:
    the upload's bytes (read from its file, as the real engine streams it) and the target."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = Outcomes(*outcomes)
        self.uploads: list[tuple[bytes, SpeechToTextTarget]] = []
        self.filenames: list[str] = []

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        self.uploads.append((read_upload(recording), target))
        self.filenames.append(recording.filename)
        return Transcript(self.outcomes.next())  # type: ignore[arg-type]


def config(**tenant: object) -> StaticRuntimeConfig[TranscriberView]:
    return StaticRuntimeConfig.of(
        TranscriberView,
        {
            LINE: (
                "acme",
                {"language_mode": "auto", "language": "en"},
                {
                    "twilio_account_sid": "AC" + "a" * 32,
                    "twilio_auth_token": "tok",
                    "openai_base_url": "http://127.0.0.1:1/v1",
                    "openai_api_key": "sk-test",
                    **tenant,
                },
            )
        },
    )


def completed(duration: int = 4) -> RecordingCompleted:
    return recording_completed(duration_seconds=duration)


def deps(
    audio: bytes, engine: ScriptedEngine, sleeps: RecordingSleep | None = None, **kw: object
) -> TranscriberDeps:
    return TranscriberDeps(
        config=kw.pop("config", config()),  # type: ignore[arg-type]
        recordings=WrittenRecordings(audio),
        engine=engine,
        sleep=sleeps or RecordingSleep(),
        **kw,  # type: ignore[arg-type]
    )


async def run(d: TranscriberDeps, duration: int = 4):  # type: ignore[no-untyped-def]
    [event] = await transcribe_recording(completed(duration), d)
    return event


async def test_default_model_and_the_tenant_vocabulary_as_prompt() -> None:
    engine = ScriptedEngine("My FlexiBill invoice is wrong.")
    event = await run(
        deps(tone_wav(2.0, frequency=611), engine, config=config(vocabulary=["FlexiBill", "Acme X2"]))
    )
    [(_, target)] = engine.uploads
    assert target.model == "gpt-4o-mini-transcribe" and event.model == "gpt-4o-mini-transcribe"
    assert target.prompt == "FlexiBill, Acme X2."
    assert event.transcript == "My FlexiBill invoice is wrong."
    assert event.transcript_missing is False


async def test_silent_recording_skips_speech_to_text_and_flows_on_empty() -> None:
    engine = ScriptedEngine("Thank you for watching.")
    event = await run(deps(silent_wav(6.0, noise_dbfs=-62), engine))
    assert engine.uploads == []
    assert event.transcript == "" and event.transcript_missing is False
    assert event.estimated_cost_usd is None  # nothing was sent, nothing was paid


async def test_phantom_text_for_near_empty_audio_is_dropped() -> None:
    engine = ScriptedEngine("Thanks for watching!")
    event = await run(deps(tone_wav(1.0, frequency=97), engine))
    assert len(engine.uploads) == 1
    assert event.transcript == ""


async def test_long_recording_is_split_transcribed_in_order_and_joined() -> None:
    engine = ScriptedEngine("First part about order 5531.", "Thanks for watching.", "Second part.")
    limits = UploadLimits(max_bytes=70_000)  # about 4.4 s of 8 kHz 16-bit per part
    event = await run(
        deps(tone_wav(12.0, frequency=233), engine, limits=limits, config=config(vocabulary=["Acme"]))
    )
    sizes = [len(upload) for upload, _ in engine.uploads]
    assert len(sizes) == 3 and max(sizes) <= 70_000
    assert sum(parse_wav(u).frames for u, _ in engine.uploads) == 12 * 8000
    assert engine.filenames == ["recording-part1.wav", "recording-part2.wav", "recording-part3.wav"]
    assert event.transcript == "First part about order 5531. Second part."
    prompts = [t.prompt for _, t in engine.uploads]
    assert prompts[0] == "Acme."
    assert prompts[1] == "Acme. First part about order 5531."
    assert prompts[2] == "Acme. First part about order 5531."  # the phantom part adds no context


async def test_rate_limit_is_retried_after_retry_after_within_the_budget() -> None:
    sleeps = RecordingSleep()
    engine = ScriptedEngine(TransientError("429", retry_after=2.5), "Hello, my VPN is down.")
    event = await run(deps(tone_wav(1.5, frequency=149), engine, sleeps, budget=RetryBudget(4, 60)))
    assert event.transcript == "Hello, my VPN is down."
    assert len(engine.uploads) == 2 and sleeps.delays[0] >= 2.5


async def test_speech_to_text_down_past_its_budget_flows_on_flagged_missing() -> None:
    sleeps = RecordingSleep()
    engine = ScriptedEngine(TransientError("openai transcription failed with HTTP 503"))
    event = await run(deps(tone_wav(1.5, frequency=151), engine, sleeps, budget=RetryBudget(3, 60)))
    assert len(engine.uploads) == 3
    assert event.transcript == "" and event.transcript_missing is True
    assert event.estimated_cost_usd is None


async def test_a_bad_key_still_dead_letters() -> None:
    engine = ScriptedEngine(PermanentError("openai transcription failed with HTTP 401"))
    with pytest.raises(PermanentError):
        await run(deps(tone_wav(1.5, frequency=157), engine))
    assert len(engine.uploads) == 1


async def test_cost_is_estimated_from_the_recording_duration() -> None:
    engine = ScriptedEngine("Please reset my password.")
    d = deps(tone_wav(3.0, frequency=163), engine, config=config(transcription_model="whisper-1"))
    event = await run(d, duration=30)
    assert event.estimated_cost_usd == pytest.approx(0.5 * 0.006)  # half a minute at $0.006/min
    # Without Twilio's duration, the file's own length counts.
    event = await run(
        deps(tone_wav(3.0, frequency=163), engine, config=config(transcription_model="whisper-1")), 0
    )
    assert event.estimated_cost_usd == pytest.approx(0.05 * 0.006)


async def test_unpriced_self_hosted_model_has_no_cost() -> None:
    engine = ScriptedEngine("Hallo.")
    model = "Systran/faster-whisper-large-v3"
    event = await run(deps(tone_wav(2.0, frequency=167), engine, config=config(transcription_model=model)))
    assert event.model == model and event.estimated_cost_usd is None


class RateLimitedEngine(ScriptedEngine):
    """429 without Retry-After until ``seconds`` have passed on ``clock``, then a transcript."""

    def __init__(self, clock: VirtualClock, seconds: float) -> None:
        super().__init__("Hello, my VPN is down.")
        self.clock, self.seconds = clock, seconds

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        if self.clock.now < self.seconds:
            self.uploads.append((read_upload(recording), target))
            raise TransientError("openai transcription failed with HTTP 429")
        return await super().transcribe(recording, target)


def default_budget(clock: VirtualClock) -> RetryBudget:
    settings = TranscriberSettings()
    return RetryBudget(settings.stt_retry_attempts, settings.stt_retry_budget_seconds, clock=clock)


async def run_rate_limited(limited_for: float, frequency: int) -> tuple[CallTranscribed, VirtualClock]:
    """Transcribe a tone while speech-to-text answers 429 for ``limited_for`` virtual seconds."""
    clock = VirtualClock()
    engine = RateLimitedEngine(clock, limited_for)
    d = deps(tone_wav(1.5, frequency=frequency), engine, budget=default_budget(clock))
    d.sleep = clock.sleep
    return await run(d), clock


async def test_speech_to_text_rate_limited_for_40_s_without_retry_after_still_transcribes() -> None:
    event, clock = await run_rate_limited(40.0, 163)
    assert event.transcript == "Hello, my VPN is down." and event.transcript_missing is False
    assert clock.now >= 40.0


async def test_speech_to_text_rate_limited_past_the_budget_flows_on_flagged_missing() -> None:
    event, clock = await run_rate_limited(91.0, 167)
    assert event.transcript == "" and event.transcript_missing is True
    assert clock.now == pytest.approx(90.0)


def test_the_default_budget_is_time_based_and_fits_the_consumer_poll_interval() -> None:
    settings = TranscriberSettings()
    assert settings.stt_retry_budget_seconds == 90 and settings.stt_retry_attempts >= 30
    with pytest.raises(ValidationError, match="poll interval"):
        TranscriberSettings(stt_retry_budget_seconds=200)
