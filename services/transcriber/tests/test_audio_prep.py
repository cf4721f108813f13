"""Silence detection, telephone-quality re-encoding and splitting for the upload limit."""

from __future__ import annotations

import math

import pytest
from pcm_samples import noise_samples, silent_wav, tone_samples, tone_wav, wav
from staged_audio import prepared

from voiceticket.samples import sample_calls
from voiceticket_transcriber.audio_prep import (
    RecordingTooLargeForUpload,
    SpeechCheck,
    UploadLimits,
    has_speech,
    phone_quality,
    sounding_seconds,
)
from voiceticket_transcriber.wav import PcmAudio, int16_from_le, mono16_blocks, parse_wav


def to_phone_quality(audio: PcmAudio) -> tuple[int, bytes]:
    rate, blocks = phone_quality(audio)
    return rate, b"".join(blocks)


@pytest.mark.parametrize(
    "blob",
    [silent_wav(5.0), silent_wav(5.0, noise_dbfs=-60), silent_wav(3.0, rate=44100, noise_dbfs=-55)],
    ids=["digital-silence", "line-noise-60dB", "hi-fi-noise-55dB"],
)
def test_silence_and_line_noise_are_not_speech(blob: bytes) -> None:
    assert not has_speech(parse_wav(blob), SpeechCheck())


def test_a_short_utterance_in_a_long_quiet_recording_is_speech() -> None:
    values = noise_samples(20.0, 8000, -60) + tone_samples(0.5, 8000, 300) + noise_samples(20.0, 8000, -60)
    audio = parse_wav(wav(values))
    assert sounding_seconds(audio, -45.0) == pytest.approx(0.5, abs=0.04)
    assert has_speech(audio, SpeechCheck(min_speech_seconds=0.25))
    assert not has_speech(audio, SpeechCheck(min_speech_seconds=1.0))


@pytest.mark.parametrize("name", sorted(sample_calls()))
def test_every_bundled_sample_call_has_speech(name: str) -> None:
    assert has_speech(parse_wav(sample_calls()[name].audio), SpeechCheck())


def zero_crossings(samples: list[int]) -> int:
    return sum(1 for a, b in zip(samples, samples[1:], strict=False) if (a < 0) != (b < 0))


@pytest.mark.parametrize(("rate", "channels", "width"), [(48000, 2, 2), (44100, 1, 3), (16000, 2, 4)])
def test_re_encoding_keeps_duration_pitch_and_level(rate: int, channels: int, width: int) -> None:
    audio = parse_wav(tone_wav(3.0, rate=rate, frequency=440.0, channels=channels, width=width))
    out_rate, data = to_phone_quality(audio)
    samples = list(int16_from_le(data))
    assert out_rate == 8000
    assert len(samples) == pytest.approx(3.0 * 8000, abs=2)
    assert zero_crossings(samples) == pytest.approx(2 * 440 * 3.0, rel=0.01)  # same pitch
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    assert rms == pytest.approx(0.3 * 32767 / math.sqrt(2), rel=0.05)  # a 440 Hz tone passes the filter


def test_re_encoding_attenuates_what_a_phone_line_cannot_carry() -> None:
    # 7 kHz would alias to 1 kHz after plain decimation; the averaging filter damps it.
    audio = parse_wav(tone_wav(1.0, rate=48000, frequency=7000.0))
    samples = list(int16_from_le(to_phone_quality(audio)[1]))
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    assert rms < 0.3 * 32767 / math.sqrt(2) / 4


def test_a_recording_within_the_limits_is_uploaded_untouched() -> None:
    blob = tone_wav(2.0, rate=16000, channels=2)
    assert prepared(blob, UploadLimits(max_bytes=len(blob))) == [("recording.wav", "audio/x-wav", blob)]


def test_over_the_size_limit_it_is_re_encoded_to_one_telephone_quality_file_when_that_fits() -> None:
    blob = tone_wav(4.0, rate=48000, channels=2)  # 768 kB
    [(filename, content_type, data)] = prepared(blob, UploadLimits(max_bytes=100_000))
    audio = parse_wav(data)
    assert (audio.sample_rate, audio.channels, audio.sample_width) == (8000, 1, 2)
    assert len(data) <= 100_000 and audio.seconds == pytest.approx(4.0, abs=0.001)
    assert filename == "recording.wav" and content_type == "audio/wav"


def test_still_too_big_it_is_split_on_frame_boundaries_into_parts_under_the_limit() -> None:
    blob = tone_wav(20.0, rate=16000)  # 640 kB; 320 kB even at 8 kHz
    limits = UploadLimits(max_bytes=100_000)
    uploads = prepared(blob, limits)
    parts = [parse_wav(data) for _, _, data in uploads]
    assert len(uploads) == 4
    assert all(len(data) <= limits.max_bytes for _, _, data in uploads)
    assert sum(p.frames for p in parts) == 20 * 8000  # nothing lost, nothing doubled
    assert [name for name, _, _ in uploads] == [f"recording-part{i}.wav" for i in range(1, 5)]


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (8000, 2), (16000, 2)])
def test_the_parts_joined_are_the_whole_recording_in_order(rate: int, channels: int) -> None:
    # A rising pitch, so that any part out of place, doubled or missing changes the join.
    values = [v for k in range(12) for v in tone_samples(0.5, rate, 200.0 + 40 * k)]
    blob = wav(values, rate=rate, channels=channels)
    uploads = prepared(blob, UploadLimits(max_bytes=20_000))
    joined = b"".join(bytes(parse_wav(data).read(0, len(data))) for _, _, data in uploads)
    assert len(uploads) >= 3
    assert joined == to_phone_quality(parse_wav(blob))[1]


def test_cuts_fall_in_the_quiet_gap_between_words() -> None:
    # Two "words" of 5.5 s with 0.3 s of silence between, limit 6 s per part: cut in the gap.
    word = tone_samples(5.5, 8000, 350)
    blob = wav(word + [0] * 2400 + word)
    uploads = prepared(blob, UploadLimits(max_bytes=6 * 16000 + 44))
    first, second = (parse_wav(data) for _, _, data in uploads)
    assert 5.5 <= first.seconds <= 5.8
    assert max(abs(s) for s in list(next(mono16_blocks(first, first.frames)))[-40:]) == 0
    assert max(abs(s) for s in list(next(mono16_blocks(second, 40)))) == 0


def test_the_duration_limit_splits_even_a_small_file() -> None:
    blob = tone_wav(10.0)  # 160 kB, under the byte limit
    uploads = prepared(blob, UploadLimits(max_bytes=10**6, max_seconds=4.0))
    seconds = [parse_wav(data).seconds for _, _, data in uploads]
    assert len(seconds) == 3 and max(seconds) <= 4.0
    assert sum(seconds) == pytest.approx(10.0)


def test_a_silent_or_empty_recording_makes_no_upload() -> None:
    assert prepared(silent_wav(30.0, noise_dbfs=-60), UploadLimits(max_bytes=100_000)) == []
    assert prepared(wav([]), UploadLimits()) == []


def test_other_formats_pass_under_the_limit_and_are_refused_over_it() -> None:
    mp3 = b"ID3" + b"\x00" * 5000
    assert prepared(mp3, UploadLimits(max_bytes=10_000), content_type="audio/mpeg") == [
        ("recording.wav", "audio/mpeg", mp3)
    ]
    with pytest.raises(RecordingTooLargeForUpload, match="not PCM WAV"):
        prepared(mp3, UploadLimits(max_bytes=1_000))
