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

Memory: everything works on the files in the call's workspace (``staging.py``), one block at a
time: the speech check reads 10 s blocks, re-encoding one second of input at a time into a file
of telephone-quality samples, the split search only the last few seconds before each limit, and
each part is written to its own WAV file just before it is uploaded and removed after. What is
held at once is a few MB whatever the recording's length (the largest is re-encoding's running
sums: one second of input as Python integers, about 0.6 MB at 8 kHz stereo, 4 MB at 48 kHz
stereo). Disk: the download, then its telephone-quality copy (the download is removed once the
copy exists; a recording that already is 16-bit mono at 8 kHz or less needs no copy) and one part.

Resampling averages each output sample's span of input samples (a box filter, then decimation):
crude next to a polyphase filter, but it keeps the telephone band that speech recognition needs
and runs on the standard library at C speed.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import operator
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from voiceticket_common.bus import PermanentError

from .staging import AudioFile, Workspace, reading
from .wav import (
    HEADER_BYTES,
    NotPcmWav,
    PcmAudio,
    int16_from_le,
    int16_le_bytes,
    interleaved16_blocks,
    mono16_blocks,
    read_wav,
    wav_header,
)

PHONE_RATE = 8000
WINDOW_SECONDS = 0.02
FULL_SCALE = 32768.0
COPY_BYTES = 1 << 20
"""Bytes copied at a time when a part is written."""


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


@dataclass(frozen=True)
class PhoneSamples:
    """16-bit mono little-endian samples at ``rate``, ``frames`` of them from byte ``offset`` of
    the file at ``path``: the telephone-quality copy, or the recording itself when it is one."""

    path: Path
    offset: int
    rate: int
    frames: int

    @contextlib.contextmanager
    def opened(self, stop: threading.Event) -> Iterator[PcmAudio]:
        with reading(self.path, stop) as source:
            yield PcmAudio(self.rate, 1, 2, source, self.offset, self.frames * 2)


@dataclass(frozen=True)
class Part:
    """Frames ``start`` to ``end`` of ``samples``, uploaded as a WAV file named ``filename``."""

    samples: PhoneSamples
    start: int
    end: int
    filename: str


Upload = AudioFile | Part
"""The recording as it was downloaded, or a part of its telephone-quality samples."""


@dataclass(frozen=True)
class UploadPlan:
    """What goes to speech-to-text, in order: nothing when the recording is silent."""

    uploads: tuple[Upload, ...]
    seconds: float | None
    """The recording's length; None when it is not PCM WAV (not measurable here)."""


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


def phone_quality(audio: PcmAudio) -> tuple[int, Iterator[bytes]]:
    """(sample rate, blocks of 16-bit mono little-endian samples) at 8 kHz, or at the original
    rate if lower; one second of input per block."""

    rate = audio.sample_rate
    if rate <= PHONE_RATE:
        return rate, (int16_le_bytes(b) for b in mono16_blocks(audio, rate))
    return PHONE_RATE, _averaged_blocks(audio)


def _averaged_blocks(audio: PcmAudio) -> Iterator[bytes]:
    # One second of input makes exactly 8000 output samples, so blocks join seamlessly. Each
    # output sample averages its span of input frames over all channels at once (downmix and
    # low-pass in one step), from running sums computed in C.
    rate, channels = audio.sample_rate, audio.channels
    for block in interleaved16_blocks(audio, rate):
        sums = list(itertools.accumulate(block, initial=0))
        count = len(block) // channels * PHONE_RATE // rate
        bounds = [k * rate // PHONE_RATE * channels for k in range(count + 1)]
        yield int16_le_bytes(
            array("h", [(sums[b] - sums[a]) // (b - a) for a, b in itertools.pairwise(bounds)])
        )


def plan_uploads(
    recording: AudioFile, limits: UploadLimits, speech: SpeechCheck, work: Workspace, stop: threading.Event
) -> UploadPlan:
    """Measure the downloaded recording and decide its uploads (CPU and disk work: run it off the
    event loop). Writes the telephone-quality copy to ``work`` when one is needed."""

    with reading(recording.path, stop) as source:
        try:
            audio = read_wav(source)
        except NotPcmWav:
            # Not measurable here: the phantom filter still catches text invented for silence.
            return UploadPlan((_untouched(recording, limits),), None)
        if not has_speech(audio, speech):
            return UploadPlan((), audio.seconds)
        if recording.size <= limits.max_bytes and audio.seconds <= limits.max_seconds:
            return UploadPlan((recording,), audio.seconds)
        samples = _telephone_quality(recording, audio, work)
    if samples.path != recording.path:
        recording.path.unlink()  # the copy is all that is uploaded from here on
    max_frames = min((limits.max_bytes - HEADER_BYTES) // 2, int(limits.max_seconds * samples.rate))
    if max_frames < samples.rate:
        raise RecordingTooLargeForUpload("upload limits allow less than one second of audio per part")
    with samples.opened(stop) as mono:
        cuts = split_points(mono, max_frames)
    spans = list(itertools.pairwise([0, *cuts, samples.frames]))
    return UploadPlan(
        tuple(
            Part(samples, start, end, "recording.wav" if len(spans) == 1 else f"recording-part{i + 1}.wav")
            for i, (start, end) in enumerate(spans)
        ),
        audio.seconds,
    )


def _untouched(recording: AudioFile, limits: UploadLimits) -> AudioFile:
    if recording.size > limits.max_bytes:
        raise RecordingTooLargeForUpload(
            f"recording is {recording.size} bytes, over the {limits.max_bytes}-byte upload "
            "limit, and is not PCM WAV, so it cannot be re-encoded or split"
        )
    return recording


def _telephone_quality(recording: AudioFile, audio: PcmAudio, work: Workspace) -> PhoneSamples:
    if audio.channels == 1 and audio.sample_width == 2 and audio.sample_rate <= PHONE_RATE:
        return PhoneSamples(recording.path, audio.offset, audio.sample_rate, audio.frames)
    path = work.new_file("telephone-quality.pcm")
    rate, blocks = phone_quality(audio)
    frames = 0
    with path.open("wb") as out:
        for block in blocks:
            out.write(block)
            frames += len(block) // 2
    return PhoneSamples(path, 0, rate, frames)


def write_part(part: Part, work: Workspace, stop: threading.Event) -> AudioFile:
    """The part as a WAV file of its own in ``work``, copied a block at a time."""

    path = work.new_file(part.filename)
    with part.samples.opened(stop) as mono, path.open("wb") as out:
        out.write(wav_header((part.end - part.start) * 2, mono.sample_rate))
        for start in range(part.start * 2, part.end * 2, COPY_BYTES):
            out.write(mono.read(start, min(COPY_BYTES, part.end * 2 - start)))
    return AudioFile(path, "audio/wav", part.filename)


def split_points(samples: PcmAudio, max_frames: int) -> list[int]:
    """Frame indices to cut 16-bit mono ``samples`` at: each part at most ``max_frames`` long,
    each cut in the quietest 20 ms window of the last tenth (at most 5 s) before the limit.
    Reads only those last seconds."""

    total, rate = samples.frames, samples.sample_rate
    window = max(1, round(rate * WINDOW_SECONDS))
    search = max(window, min(max_frames // 10, rate * 5))
    cuts: list[int] = []
    start = 0
    while total - start > max_frames:
        limit = start + max_frames
        low = max(start + 1, limit - search)
        region = int16_from_le(samples.read(low * 2, (limit - low) * 2))
        best, best_energy = limit, math.inf
        for offset in range(0, len(region) - window + 1, window):
            part = region[offset : offset + window]
            energy = sum(map(operator.mul, part, part))
            if energy < best_energy:
                best, best_energy = low + offset + window // 2, energy
        cuts.append(best)
        start = best
    return cuts
