"""The stdlib-only WAV reader and the conversion of any integer PCM to 16-bit mono."""

from __future__ import annotations

import io
import struct
import wave

import pytest
from pcm_samples import samples_to_bytes, wav

from voiceticket_transcriber.wav import NotPcmWav, encode_wav, mono16_blocks, parse_wav

VALUES = [0, 1000, -1000, 32767, -32768, 256, -257, 12345]


def test_encoded_wav_is_read_back_by_the_stdlib_wave_module() -> None:
    blob = encode_wav(samples_to_bytes(VALUES, 2), 8000)
    with wave.open(io.BytesIO(blob)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, 8000)
        assert reader.readframes(100) == samples_to_bytes(VALUES, 2)
    audio = parse_wav(blob)
    assert (audio.sample_rate, audio.channels, audio.sample_width, audio.frames) == (8000, 1, 2, 8)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_every_integer_width_becomes_the_same_16_bit_samples(width: int) -> None:
    [block] = mono16_blocks(parse_wav(wav(VALUES, width=width)), 1000)
    # 8-bit keeps only the top byte of each sample, so compare at that precision there.
    expected = [(v >> 8) << 8 for v in VALUES] if width == 1 else VALUES
    assert list(block) == expected


def test_channels_are_averaged_and_blocks_cover_every_frame() -> None:
    left, right = [1000] * 10, [3000] * 10
    interleaved = [s for pair in zip(left, right, strict=True) for s in pair]
    audio = parse_wav(encode_wav(samples_to_bytes(interleaved, 2), 16000, channels=2))
    blocks = list(mono16_blocks(audio, 4))
    assert [len(b) for b in blocks] == [4, 4, 2]
    assert {s for b in blocks for s in b} == {2000}


def test_extensible_format_with_pcm_subformat_and_extra_chunks_is_read() -> None:
    data = samples_to_bytes(VALUES, 2)
    guid_tail = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 16000, 2, 16, 22, 16, 4) + b"\x01\x00" + guid_tail
    odd_chunk = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # odd size, padded
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + odd_chunk
    body += b"data" + struct.pack("<I", len(data)) + data
    audio = parse_wav(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert list(next(mono16_blocks(audio, 100))) == VALUES


def test_streamed_wav_with_unknown_data_size_takes_what_is_there() -> None:
    blob = bytearray(encode_wav(samples_to_bytes(VALUES, 2), 8000))
    blob[40:44] = struct.pack("<I", 0xFFFFFFFF)
    assert parse_wav(bytes(blob) + b"\x01").frames == len(VALUES)  # a trailing half frame is dropped


@pytest.mark.parametrize(
    "blob",
    [
        b"ID3\x04mp3 data",
        b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00",
        encode_wav(b"\x00" * 16, 8000)[:20] + struct.pack("<H", 7) + encode_wav(b"\x00" * 16, 8000)[22:],
    ],
    ids=["mp3", "no-fmt", "mu-law"],
)
def test_anything_but_integer_pcm_wav_is_refused(blob: bytes) -> None:
    with pytest.raises(NotPcmWav):
        parse_wav(blob)
