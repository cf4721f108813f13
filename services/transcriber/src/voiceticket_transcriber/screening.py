"""Screening a recording on its audio: silence, tones only, or too short a message.

Callers complain most about ghost tickets: a pocket dial, a fax machine, a line left open after
the caller walked away. Those are decided here on the audio itself, before any text exists, and
the transcript cannot fool it (a model writes "Thank you for watching." for silence).

The recording is read in 100 ms frames. A frame *sounds* when its RMS level is at or above the
speech check's threshold (``audio_prep.SpeechCheck``, -45 dBFS by default). A sounding frame is
*tonal* when nearly all its energy (``TONAL_CONCENTRATION``) sits in at most two narrow peaks of its
spectrum: a dial, busy or ringing tone, DTMF digits, a fax or modem's calling tone, a beep. A
voice spreads its energy over many harmonics and formants and never is. What is left, sounding
and not tonal, is *voice* (or noise, music: anything that may be a message).

* ``silence``: less sound than the speech check's minimum (0.25 s): nothing to transcribe.
* ``tone``: less voice than the message minimum, and more tone than voice.
* ``too_short``: less voice than the line's ``min_message_seconds`` (default 1 s).

Reading stops as soon as there is enough voice, so a long message costs only its first seconds.
The spectrum uses numpy (already installed for the local engine).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from voiceticket_common.events.v1 import SCREENED_SILENCE, SCREENED_TONE, SCREENED_TOO_SHORT

from .audio_prep import FULL_SCALE, SpeechCheck
from .staging import AudioFile, reading
from .wav import NotPcmWav, PcmAudio, mono16_blocks, read_wav

FRAME_SECONDS = 0.1
TONAL_CONCENTRATION = 0.8
"""Share of a frame's energy in its two strongest peaks (each ±20 Hz) that makes it a tone."""
TONE_FLOOR_SECONDS = 0.5
"""A recording with less voice than this is never a message, whatever the line's minimum: with
mostly tones, it is screened as ``tone`` even where the line has no minimum."""
_PEAK_HALF_WIDTH_HZ = 20.0


@dataclass(frozen=True)
class SoundMeasure:
    """What was heard in a recording (seconds), as far as it was read."""

    sounding_seconds: float
    tonal_seconds: float
    voice_seconds: float
    complete: bool
    """The whole recording was read (False: reading stopped once there was enough voice)."""


def measure(audio: PcmAudio, check: SpeechCheck, enough_voice_seconds: float) -> SoundMeasure:
    """Sound, tone and voice in ``audio``; stops once ``enough_voice_seconds`` of voice were heard."""

    rate = audio.sample_rate
    frame = max(1, round(rate * FRAME_SECONDS))
    floor = (FULL_SCALE * 10 ** (check.threshold_dbfs / 20)) ** 2
    window = np.hanning(frame)
    peak = max(1, round(_PEAK_HALF_WIDTH_HZ * frame / rate))
    sounding = tonal = 0
    for samples in _frames(audio, frame):
        if float(np.mean(samples * samples)) < floor:
            continue
        sounding += len(samples)
        if len(samples) == frame and _is_tonal(samples * window, peak):
            tonal += len(samples)
        elif (sounding - tonal) / rate >= enough_voice_seconds:
            return SoundMeasure(sounding / rate, tonal / rate, (sounding - tonal) / rate, complete=False)
    return SoundMeasure(sounding / rate, tonal / rate, (sounding - tonal) / rate, complete=True)


def measure_file(
    recording: AudioFile, check: SpeechCheck, min_message_seconds: float, stop: threading.Event
) -> SoundMeasure | None:
    """``measure`` of the downloaded recording, read just far enough to tell a message (CPU work:
    run it off the event loop); None when it is not PCM WAV (not measurable here)."""
    with reading(recording.path, stop) as source:
        try:
            audio = read_wav(source)
        except NotPcmWav:
            return None
        return measure(audio, check, max(min_message_seconds, TONE_FLOOR_SECONDS))


def verdict(sound: SoundMeasure, check: SpeechCheck, min_message_seconds: float) -> str | None:
    """``silence``, ``tone`` or ``too_short`` (see the module's text); None: a message."""

    if sound.sounding_seconds < check.min_speech_seconds:
        return SCREENED_SILENCE
    if sound.voice_seconds < max(min_message_seconds, TONE_FLOOR_SECONDS) and (
        sound.tonal_seconds > sound.voice_seconds
    ):
        return SCREENED_TONE
    if sound.voice_seconds < min_message_seconds:
        return SCREENED_TOO_SHORT
    return None


def _frames(audio: PcmAudio, frame: int) -> Iterator[np.ndarray]:
    for block in mono16_blocks(audio, frame * 100):
        samples = np.frombuffer(block, dtype=np.int16).astype(np.float64)
        for start in range(0, len(samples), frame):
            yield samples[start : start + frame]


def _is_tonal(windowed: np.ndarray, peak: int) -> bool:
    power = np.abs(np.fft.rfft(windowed)) ** 2
    total = float(power.sum())
    if total <= 0.0:
        return False
    held = 0.0
    for _ in range(2):
        top = int(np.argmax(power))
        span = slice(max(0, top - peak), top + peak + 1)
        held += float(power[span].sum())
        power[span] = 0.0
    return held / total >= TONAL_CONCENTRATION
