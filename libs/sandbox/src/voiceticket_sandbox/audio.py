"""Sample audio for tests and demos."""

from __future__ import annotations

import io
import math
import struct
import wave


def make_tone_wav(seconds: float = 2.0, rate: int = 8000, frequency: float = 440.0) -> bytes:
    """A mono 16-bit PCM WAV of a sine tone (8 kHz by default, like a phone line).

    The OpenAI stand-in finds transcripts by the sha256 of the audio, so calls that must get
    different transcripts need different audio: vary ``seconds`` or ``frequency``.
    """
    frames = int(seconds * rate)
    amplitude = 0.3 * 32767
    samples = (int(amplitude * math.sin(2 * math.pi * frequency * i / rate)) for i in range(frames))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buffer.getvalue()
