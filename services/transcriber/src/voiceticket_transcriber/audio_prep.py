"""Getting a recording ready for speech-to-text: is there speech at all, and does it fit one upload.

Silence: speech-to-text models invent text for silent audio ("Thank you for watching."), so a
recording with less than a fraction of a second of sound above a level threshold is not sent at
all. The check measures 20 ms windows, not the whole file, so a short message in a long, quiet
recording still counts as speech.

Size: OpenAI takes at most 25 MB per upload, and the gpt-4o transcription models at most about
1400 s of audio. A PCM WAV over either limit is re-encoded to telephone quality (16-bit mono at
8 kHz, which is what a phone line carries anyway) and, if still too long, split at the quietest
moment near each limit so no word is cut in half. Other formats over the limit cannot be
re-encoded here and are refused with a clear message.

Resampling averages each output sample's span of input samples (a box filter, then decimation):
crude next to a polyphase filter, but it keeps the telephone band that speech recognition needs
and runs on the standard library at C speed.
"""

from __future__ import annotations

import itertools
import math
import operator
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from voiceticket_common.bus import PermanentError

from .ports import Recording
from .wav import (
    HEADER_BYTES,
    PcmAudio,
    encode_wav,
    int16_from_le,
    int16_le_bytes,
    interleaved16_blocks,
    mono16_blocks,
)

PHONE_RATE = 8000
WINDOW_SECONDS = 0.02
FULL_SCALE = 32768.0


class RecordingTooLargeForUpload(PermanentError):
    """Over the upload limit in a format this service cannot re-encode."""


@dataclass(frozen=True)
class SpeechCheck:
    """Sound counts as possible speech above ``threshold_dbfs`` (RMS of a 20 ms window, relative
    to full scale); a recording with less than ``min_speech_seconds`` of it is silent."""

    threshold_dbfs: float = -45.0
    min_speech_seconds: float = 0.25


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 25_000_000
    max_seconds: float = 1380.0


def _sounding_windows(audio: PcmAudio, threshold_dbfs: float) -> Iterator[int]:
    """For each 20 ms window at or above ``threshold_dbfs`` (RMS), its length in frames."""

    window = max(1, round(audio.sample_rate * WINDOW_SECONDS))
    threshold = FULL_SCALE * 10 ** (threshold_dbfs / 20)
    mean_square_floor = threshold * threshold
    for block in mono16_blocks(audio, window * 500):
        for start in range(0, len(block), window):
            part = block[start : start + window]
            if sum(map(operator.mul, part, part)) >= mean_square_floor * len(part):
                yield len(part)


def sounding_seconds(audio: PcmAudio, threshold_dbfs: float) -> float:
    """Seconds of 20 ms windows whose RMS level is at or above ``threshold_dbfs``."""

    return sum(_sounding_windows(audio, threshold_dbfs)) / audio.sample_rate


def has_speech(audio: PcmAudio, check: SpeechCheck) -> bool:
    """Whether there is at least ``min_speech_seconds`` of sound; stops reading once there is."""

    needed = check.min_speech_seconds * audio.sample_rate
    sounding = 0
    for frames in _sounding_windows(audio, check.threshold_dbfs):
        sounding += frames
        if sounding >= needed:
            return True
    return sounding >= needed


def to_phone_quality(audio: PcmAudio) -> tuple[int, bytes]:
    """(sample rate, 16-bit mono little-endian samples) at 8 kHz, or the original rate if lower."""

    rate, channels = audio.sample_rate, audio.channels
    if rate <= PHONE_RATE:
        return rate, b"".join(int16_le_bytes(b) for b in mono16_blocks(audio, rate * 10))
    out = []
    # Ten seconds of input make exactly 80 000 output samples, so blocks join seamlessly. Each
    # output sample averages its span of input frames over all channels at once (downmix and
    # low-pass in one step), from running sums computed in C.
    for block in interleaved16_blocks(audio, rate * 10):
        sums = list(itertools.accumulate(block, initial=0))
        count = len(block) // channels * PHONE_RATE // rate
        bounds = [k * rate // PHONE_RATE * channels for k in range(count + 1)]
        averaged = array("h", [(sums[b] - sums[a]) // (b - a) for a, b in itertools.pairwise(bounds)])
        out.append(int16_le_bytes(averaged))
    return PHONE_RATE, b"".join(out)


def uploads_for(recording: Recording, audio: PcmAudio | None, limits: UploadLimits) -> list[Recording]:
    """The recording as one or more uploads within ``limits``, in order."""

    if audio is None:
        if len(recording.audio) > limits.max_bytes:
            raise RecordingTooLargeForUpload(
                f"recording is {len(recording.audio)} bytes, over the {limits.max_bytes}-byte upload "
                "limit, and is not PCM WAV, so it cannot be re-encoded or split"
            )
        return [recording]
    if len(recording.audio) <= limits.max_bytes and audio.seconds <= limits.max_seconds:
        return [recording]
    rate, samples = to_phone_quality(audio)
    max_frames = min((limits.max_bytes - HEADER_BYTES) // 2, int(limits.max_seconds * rate))
    if max_frames < rate:
        raise RecordingTooLargeForUpload("upload limits allow less than one second of audio per part")
    cuts = split_points(samples, rate, max_frames)
    parts = list(itertools.pairwise([0, *cuts, len(samples) // 2]))
    return [
        Recording(
            audio=encode_wav(samples[start * 2 : end * 2], rate),
            content_type="audio/wav",
            filename="recording.wav" if len(parts) == 1 else f"recording-part{i + 1}.wav",
        )
        for i, (start, end) in enumerate(parts)
    ]


def split_points(samples: bytes, rate: int, max_frames: int) -> list[int]:
    """Frame indices to cut 16-bit mono ``samples`` at: each part at most ``max_frames`` long,
    each cut in the quietest 20 ms window of the last tenth (at most 5 s) before the limit."""

    total = len(samples) // 2
    window = max(1, round(rate * WINDOW_SECONDS))
    search = max(window, min(max_frames // 10, rate * 5))
    cuts: list[int] = []
    start = 0
    while total - start > max_frames:
        limit = start + max_frames
        low = max(start + 1, limit - search)
        region = int16_from_le(samples[low * 2 : limit * 2])
        best, best_energy = limit, math.inf
        for offset in range(0, len(region) - window + 1, window):
            part = region[offset : offset + window]
            energy = sum(map(operator.mul, part, part))
            if energy < best_energy:
                best, best_energy = low + offset + window // 2, energy
        cuts.append(best)
        start = best
    return cuts
