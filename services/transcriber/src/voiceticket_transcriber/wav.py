"""Reading and writing PCM WAV files, and turning any PCM into 16-bit mono blocks.

Written with the standard library only (``audioop`` is gone in Python 3.13, and the ``wave``
module refuses WAVE_FORMAT_EXTENSIBLE before 3.12). Twilio serves recordings as 16-bit PCM WAV;
this reads any integer PCM (8, 16, 24 or 32 bits, any channel count, plain or extensible format)
and refuses everything else, which the caller then uploads untouched or refuses.

The samples stay where they are (a file on disk, or bytes in a test): ``PcmAudio`` knows where
they start and reads them block by block, and conversion works on those blocks as bytes slices
(C speed), so a long recording is never held in memory, nor as Python integers, all at once.
"""

from __future__ import annotations

import io
import itertools
import operator
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
HEADER_BYTES = 44
"""Size of the canonical header ``wav_header`` writes."""
_MAX_FMT_BYTES = 1024
"""A fmt chunk is 16 to 40 bytes; a larger one is read only this far."""

_UNSIGNED_TO_SIGNED_HIGH_BYTE = bytes(b ^ 0x80 for b in range(256))


class NotPcmWav(ValueError):
    """The bytes are not a RIFF/WAVE file with integer PCM samples."""


class SampleSource(Protocol):
    """Where samples are read from: a binary file (on disk, or ``io.BytesIO``)."""

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class PcmAudio:
    """Interleaved little-endian integer PCM samples, ``size`` bytes of them from byte ``offset``
    of ``source``, as stored in the file."""

    sample_rate: int
    channels: int
    sample_width: int
    """Bytes per sample: 1 (unsigned), 2, 3 or 4 (signed)."""
    source: SampleSource
    offset: int
    size: int

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.sample_width

    @property
    def frames(self) -> int:
        return self.size // self.frame_bytes

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def read(self, start: int, size: int) -> bytes:
        """At most ``size`` bytes of the samples from byte ``start`` (relative to the samples)."""
        size = max(0, min(size, self.size - start))
        self.source.seek(self.offset + start)
        return self.source.read(size)


def parse_wav(blob: bytes) -> PcmAudio:
    """The PCM inside a WAV file held in memory; ``NotPcmWav`` for anything else."""

    return read_wav(io.BytesIO(blob))


def read_wav(source: SampleSource) -> PcmAudio:
    """The PCM inside a WAV file, reading only its chunk headers; ``NotPcmWav`` for anything else."""

    total = source.seek(0, io.SEEK_END)
    source.seek(0)
    riff = source.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise NotPcmWav("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    offset = 12
    while offset + 8 <= total:
        source.seek(offset)
        chunk_id, size = struct.unpack("<4sI", source.read(8))
        body = offset + 8
        if chunk_id == b"fmt ":
            fmt = _format(source.read(min(size, _MAX_FMT_BYTES)))
        elif chunk_id == b"data":
            if fmt is None:
                raise NotPcmWav("data chunk before the fmt chunk")
            code, channels, rate, bits = fmt
            if code != WAVE_FORMAT_PCM or bits not in (8, 16, 24, 32):
                raise NotPcmWav(f"WAV format {code:#06x} with {bits}-bit samples is not integer PCM")
            if channels < 1 or rate < 1:
                raise NotPcmWav("WAV header has no channels or no sample rate")
            # Streamed WAVs carry 0 or 0xFFFFFFFF as the data size: take what is there.
            end = total if size in (0, 0xFFFFFFFF) else min(total, body + size)
            width = bits // 8
            usable = (end - body) // (channels * width) * (channels * width)
            return PcmAudio(rate, channels, width, source, body, usable)
        offset = body + size + (size & 1)  # chunks are padded to an even length
    raise NotPcmWav("WAV file has no data chunk")


def _format(chunk: bytes) -> tuple[int, int, int, int]:
    if len(chunk) < 16:
        raise NotPcmWav("WAV fmt chunk is too short")
    code, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", chunk)
    if code == WAVE_FORMAT_EXTENSIBLE:
        if len(chunk) < 40:
            raise NotPcmWav("WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        (code,) = struct.unpack_from("<H", chunk, 24)  # the sub-format GUID starts with the code
    return code, channels, rate, bits


def wav_header(data_bytes: int, sample_rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """The canonical 44-byte header of a PCM WAV whose samples are ``data_bytes`` long."""

    block = channels * sample_width
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        WAVE_FORMAT_PCM,
        channels,
        sample_rate,
        sample_rate * block,
        block,
        sample_width * 8,
        b"data",
        data_bytes,
    )


def encode_wav(samples: bytes, sample_rate: int, channels: int = 1, sample_width: int = 2) -> bytes:
    """A canonical 44-byte-header PCM WAV around little-endian ``samples``."""

    return wav_header(len(samples), sample_rate, channels, sample_width) + samples


def interleaved16_blocks(audio: PcmAudio, block_frames: int) -> Iterator[array[int]]:
    """The samples as signed 16-bit arrays, channels still interleaved, ``block_frames`` at a time.

    Wider samples keep their top 16 bits; 8-bit unsigned samples are centred and scaled up.
    """

    step = block_frames * audio.frame_bytes
    for start in range(0, audio.frames * audio.frame_bytes, step):
        yield int16_from_le(_to_int16_le(audio.read(start, step), audio.sample_width))


def mono16_blocks(audio: PcmAudio, block_frames: int) -> Iterator[array[int]]:
    """Like ``interleaved16_blocks`` with the channels averaged into one."""

    for block in interleaved16_blocks(audio, block_frames):
        yield downmix(block, audio.channels)


def _to_int16_le(chunk: bytes, width: int) -> bytes:
    if width == 2:
        return chunk
    count = len(chunk) // width
    out = bytearray(2 * count)
    if width == 1:
        out[1::2] = chunk.translate(_UNSIGNED_TO_SIGNED_HIGH_BYTE)
    else:  # 24 or 32 bits: the two most significant bytes of each little-endian sample
        out[0::2] = chunk[width - 2 :: width]
        out[1::2] = chunk[width - 1 :: width]
    return bytes(out)


def downmix(samples: array[int], channels: int) -> array[int]:
    if channels == 1:
        return samples
    # map() over array slices keeps the per-sample work in C.
    total: Iterator[int] = iter(samples[0::channels])
    for c in range(1, channels):
        total = map(operator.add, total, samples[c::channels])
    return array("h", map(operator.floordiv, total, itertools.repeat(channels)))


def int16_from_le(data: bytes) -> array[int]:
    samples = array("h")
    samples.frombytes(data)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def int16_le_bytes(samples: array[int]) -> bytes:
    if sys.byteorder == "big":
        samples = array("h", samples)
        samples.byteswap()
    return samples.tobytes()
