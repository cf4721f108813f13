"""Synthetic recordings for the transcriber's tests: tones, silence, noise, in any PCM layout."""

from __future__ import annotations

import math
import random
import struct

from voiceticket_transcriber.wav import encode_wav


def samples_to_bytes(values: list[int], width: int) -> bytes:
    """Signed 16-bit ``values`` stored at ``width`` bytes per sample (8-bit is unsigned)."""

    if width == 1:
        return bytes((v >> 8) + 128 for v in values)
    if width == 2:
        return struct.pack(f"<{len(values)}h", *values)
    if width == 3:
        return b"".join(struct.pack("<i", v << 8)[:3] for v in values)
    return struct.pack(f"<{len(values)}i", *(v << 16 for v in values))


def tone_samples(seconds: float, rate: int, frequency: float, level: float = 0.3) -> list[int]:
    return [
        int(level * 32767 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(int(seconds * rate))
    ]


def noise_samples(seconds: float, rate: int, dbfs: float, seed: int = 7) -> list[int]:
    """Uniform noise with an RMS of about ``dbfs`` (uniform noise: RMS = peak / sqrt(3))."""

    peak = 32768 * 10 ** (dbfs / 20) * math.sqrt(3)
    rng = random.Random(seed)
    return [int(rng.uniform(-peak, peak)) for _ in range(int(seconds * rate))]


def wav(values: list[int], rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    """A WAV of ``values`` (per channel identical when ``channels`` > 1)."""

    interleaved = [v for v in values for _ in range(channels)]
    return encode_wav(samples_to_bytes(interleaved, width), rate, channels, width)


def tone_wav(seconds: float, rate: int = 8000, frequency: float = 440.0, **kw: int) -> bytes:
    return wav(tone_samples(seconds, rate, frequency), rate, **kw)


def silent_wav(seconds: float, rate: int = 8000, noise_dbfs: float | None = None) -> bytes:
    values = [0] * int(seconds * rate) if noise_dbfs is None else noise_samples(seconds, rate, noise_dbfs)
    return wav(values, rate)
