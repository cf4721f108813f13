"""Screening on the audio (``screening.py``) and what the transcriber does with a screened call,
per the line's ``screening_action``."""

from __future__ import annotations

import math

import pytest
from pcm_samples import silent_wav, tone_wav, wav
from prometheus_client import REGISTRY
from staged_audio import WrittenRecordings, openai_line_config

from voiceticket.samples import sample_calls
from voiceticket_common.events import CallScreened, CallTranscribed
from voiceticket_common.testing import recording_completed
from voiceticket_transcriber.audio_prep import SpeechCheck
from voiceticket_transcriber.handlers import TranscriberDeps, transcribe_recording
from voiceticket_transcriber.ports import Transcript
from voiceticket_transcriber.screening import measure, verdict
from voiceticket_transcriber.wav import parse_wav

RATE = 8000


def tones(frequencies: tuple[float, ...], seconds: float, level: float = 0.25) -> list[int]:
    amplitude = 32767 * level / len(frequencies)
    return [
        int(sum(amplitude * math.sin(2 * math.pi * f * i / RATE) for f in frequencies))
        for i in range(int(seconds * RATE))
    ]


def gap(seconds: float) -> list[int]:
    return [0] * int(seconds * RATE)


def dtmf(digits: int) -> bytes:  # "1" pressed again and again: 697 + 1209 Hz, 150 ms on, 100 ms off
    return wav([s for _ in range(digits) for s in [*tones((697, 1209), 0.15), *gap(0.1)]])


def fax_calling_tone() -> bytes:  # CNG: 1100 Hz for 0.5 s every 3.5 s
    return wav([s for _ in range(3) for s in [*tones((1100,), 0.5), *gap(3.0)]])


def screened_as(blob: bytes, min_message_seconds: float = 1.0) -> str | None:
    check = SpeechCheck()
    return verdict(measure(parse_wav(blob), check, 30.0), check, min_message_seconds)


@pytest.mark.parametrize("name", sorted(sample_calls()))
def test_a_spoken_message_is_not_screened(name: str) -> None:
    assert screened_as(sample_calls()[name].audio) is None


@pytest.mark.parametrize(
    ("sound", "blob"),
    [
        ("dial tone", wav(tones((350, 440), 4.0))),
        ("busy tone", wav([s for _ in range(4) for s in [*tones((480, 620), 0.5), *gap(0.5)]])),
        ("a single beep", tone_wav(2.0, frequency=1000)),
        ("DTMF digits", dtmf(8)),
        ("a fax machine", fax_calling_tone()),
    ],
)
def test_tones_without_a_voice_are_screened_as_tone(sound: str, blob: bytes) -> None:
    assert screened_as(blob) == "tone", sound


def test_silence_and_line_hiss_are_screened_as_silence() -> None:
    assert screened_as(silent_wav(5.0)) == "silence"
    assert screened_as(silent_wav(5.0, noise_dbfs=-60)) == "silence"


def test_a_voice_shorter_than_the_lines_minimum_is_too_short() -> None:
    speech = parse_wav(sample_calls()["vpn-outage"].audio)
    half_second = speech.read(0, int(RATE * 0.7) * 2)  # the first 0.7 s of a real message
    blob = wav([*gap(0.5), *[int.from_bytes(half_second[i : i + 2], "little", signed=True)
                             for i in range(0, len(half_second), 2)], *gap(2.0)])  # fmt: skip
    assert screened_as(blob, min_message_seconds=3.0) == "too_short"
    assert screened_as(blob, min_message_seconds=0.0) is None, "0 turns the minimum off"


def test_a_message_after_a_tone_is_a_message() -> None:
    message = parse_wav(sample_calls()["billing-account"].audio)
    voice = [int.from_bytes(message.read(i, 2), "little", signed=True) for i in range(0, 8000 * 2 * 4, 2)]
    assert screened_as(wav([*tones((1000,), 1.0), *voice])) is None  # the beep, then 4 s of voice


def test_reading_stops_once_there_is_enough_voice() -> None:
    audio = parse_wav(sample_calls()["billing-account"].audio)
    sound = measure(audio, SpeechCheck(), enough_voice_seconds=1.0)
    assert not sound.complete and 1.0 <= sound.voice_seconds < 1.2


class CountingEngine:
    def __init__(self) -> None:
        self.calls = 0

    async def transcribe(self, recording, target):  # type: ignore[no-untyped-def]
        self.calls += 1
        return Transcript("Thank you for watching.")  # what a model invents for tones


def deps(action: str, blob: bytes, engine: CountingEngine) -> TranscriberDeps:
    config = openai_line_config(screening_action=action)
    return TranscriberDeps(config=config, recordings=WrittenRecordings(blob), engine=engine)


async def test_no_request_lines_end_a_screened_call_without_speech_to_text() -> None:
    engine = CountingEngine()
    [event] = await transcribe_recording(
        recording_completed(duration_seconds=5), deps("no_request", dtmf(12), engine)
    )
    assert isinstance(event, CallScreened)
    assert (event.reason, event.by, event.screened) == ("tone", "transcriber", "tone")
    assert event.sounding_seconds and event.voice_seconds == 0.0
    assert engine.calls == 0, "nothing is paid for a call that makes no request"


async def test_screened_request_lines_skip_speech_to_text_for_tones_and_mark_the_transcript() -> None:
    engine = CountingEngine()
    [event] = await transcribe_recording(
        recording_completed(duration_seconds=12), deps("screened_request", fax_calling_tone(), engine)
    )
    assert isinstance(event, CallTranscribed)
    assert (event.screened, event.transcript, engine.calls) == ("tone", "", 0)


async def test_request_lines_transcribe_as_before_and_only_name_the_reason() -> None:
    engine = CountingEngine()
    [event] = await transcribe_recording(
        recording_completed(duration_seconds=4), deps("request", dtmf(12), engine)
    )
    assert isinstance(event, CallTranscribed)
    assert event.screened == "tone" and engine.calls == 1


async def test_a_message_is_not_screened_on_any_line() -> None:
    engine = CountingEngine()
    audio = sample_calls()["password-reset"].audio
    [event] = await transcribe_recording(
        recording_completed(duration_seconds=15), deps("no_request", audio, engine)
    )
    assert isinstance(event, CallTranscribed) and event.screened is None and engine.calls == 1


async def test_a_caller_ingress_screened_is_not_measured_or_counted_again() -> None:
    engine = CountingEngine()
    labels = {"reason": "robocall", "action": "screened_request", "tenant": "acme"}
    before = REGISTRY.get_sample_value("voiceticket_calls_screened_total", labels) or 0.0
    robocall = recording_completed(duration_seconds=5, screened="robocall")
    [event] = await transcribe_recording(robocall, deps("screened_request", dtmf(12), engine))
    assert isinstance(event, CallTranscribed) and event.screened == "robocall", "ingress's reason stays"
    assert (REGISTRY.get_sample_value("voiceticket_calls_screened_total", labels) or 0.0) == before
    assert engine.calls == 1, "a flagged caller's message is still transcribed: a person may be speaking"
