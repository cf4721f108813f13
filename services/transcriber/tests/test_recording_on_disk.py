"""The recording on disk (issue #9): streamed into a private workspace, prepared and uploaded from
files in bounded memory, and the workspace removed whatever happens: success, failure, cancellation."""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import stat
import tempfile
import threading
import time
import tracemalloc
from array import array
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from pcm_samples import tone_wav
from staged_audio import WrittenRecordings, read_upload
from test_speech_to_text_handling import ScriptedEngine, config, deps

from voiceticket_common.bus import PermanentError, TransientError
from voiceticket_common.events import CallTranscribed
from voiceticket_common.testing import recording_completed
from voiceticket_common.twilio import TwilioAccount
from voiceticket_transcriber import handlers
from voiceticket_transcriber.audio_prep import RecordingTooLargeForUpload, UploadLimits
from voiceticket_transcriber.handlers import transcribe_recording
from voiceticket_transcriber.ports import Recording, SpeechToTextTarget, Transcript
from voiceticket_transcriber.staging import PreparationStopped, Workspace
from voiceticket_transcriber.wav import wav_header

MiB = 1024 * 1024


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temp dir, for the duration of a test: where workspaces are made."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def leftovers(root: Path) -> list[Path]:
    return list(root.iterdir())


def write_long_wav(path: Path, seconds: int, channels: int) -> int:
    """An 8 kHz 16-bit WAV of 1.2 s "words" at changing pitch and 0.4 s pauses, written a block
    at a time (never whole in memory here either); its size."""
    words = []
    for k in range(4):
        tone = [int(0.3 * 32767 * math.sin(2 * math.pi * (230 + 40 * k) * i / 8000)) for i in range(9600)]
        block = array("h", [s for s in tone + [0] * 3200 for _ in range(channels)])
        words.append(block.tobytes())
    data_bytes = seconds * 8000 * 2 * channels
    with path.open("wb") as out:
        out.write(wav_header(data_bytes, 8000, channels))
        left, k = data_bytes, 0
        while left:
            piece = words[k % 4][:left]
            out.write(piece)
            left -= len(piece)
            k += 1
    return 44 + data_bytes


class FileRecordings:
    """Twilio media as it arrives: the file's bytes, 64 KiB at a time, into the handler's file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def fetch(self, account: TwilioAccount, recording_sid: str, into: BinaryIO) -> str:
        with self.path.open("rb") as media:
            while chunk := media.read(65536):
                into.write(chunk)
                await asyncio.sleep(0)
        return "audio/x-wav"


class StreamingEngine:
    """Reads each upload as an HTTP client streams it (64 KiB at a time), keeping only a digest."""

    def __init__(self) -> None:
        self.uploads: list[tuple[str, int]] = []
        self.frames = 0

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        digest, size = hashlib.sha256(), 0
        head = recording.audio.read(44)
        while chunk := recording.audio.read(65536):
            digest.update(chunk)
            size += len(chunk)
        self.uploads.append((recording.filename, 44 + size))
        self.frames += size // 2
        assert head[:4] == b"RIFF"
        return Transcript(f"part {len(self.uploads)}.")


@pytest.mark.parametrize(
    ("channels", "seconds", "part_bytes"),
    [(1, 1500, 2_000_000), (2, 60, 500_000)],
    ids=["mono-24MB", "stereo-2MB"],
)
async def test_a_long_recording_is_never_held_in_memory_whole(
    tmp_path: Path, temp_root: Path, channels: int, seconds: int, part_bytes: int
) -> None:
    """Download, speech check, re-encoding, split and uploads of a recording of tens of MB
    allocate about 1 MB (tracemalloc counts every thread's Python allocations), far below the
    file: the code before held it whole, and its re-encoded copy and parts on top. The mono
    recording is split as it is; the stereo one is re-encoded (downmixed) first, shorter because
    that is slow under tracemalloc, and what it holds does not grow with the length."""
    media = tmp_path / "media.wav"
    size = write_long_wav(media, seconds, channels)
    engine = StreamingEngine()
    d = deps(b"", ScriptedEngine(), limits=UploadLimits(max_bytes=part_bytes))
    d.recordings, d.engine = FileRecordings(media), engine
    tracemalloc.start()
    try:
        [event] = await transcribe_recording(recording_completed(duration_seconds=seconds), d)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB, f"peak {peak / MiB:.1f} MiB for a {size / MiB:.0f} MiB recording"
    assert engine.frames == seconds * 8000  # every frame uploaded once
    fewest = math.ceil(seconds * 16000 / part_bytes)
    assert fewest <= len(engine.uploads) <= fewest + 1  # cuts fall in pauses a little before the limit
    assert all(upload_size <= part_bytes for _, upload_size in engine.uploads)
    assert isinstance(event, CallTranscribed)
    assert event.transcript == " ".join(f"part {i + 1}." for i in range(len(engine.uploads)))
    assert leftovers(temp_root) == []


class InspectingEngine(ScriptedEngine):
    """Looks at the workspace while an upload is being sent."""

    def __init__(self, temp_root: Path, *outcomes: object) -> None:
        super().__init__(*outcomes)
        self.temp_root = temp_root
        self.seen: list[tuple[int, list[tuple[str, int]]]] = []

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        [workspace] = self.temp_root.iterdir()
        files = sorted((p.name, stat.S_IMODE(p.stat().st_mode)) for p in workspace.iterdir())
        self.seen.append((stat.S_IMODE(workspace.stat().st_mode), files))
        return await super().transcribe(recording, target)


async def test_the_workspace_is_private_holds_one_part_at_a_time_and_is_removed(temp_root: Path) -> None:
    engine = InspectingEngine(temp_root, "First.", "Second.", "Third.")
    d = deps(tone_wav(12.0, rate=16000, frequency=233), engine, limits=UploadLimits(max_bytes=70_000))
    [event] = await transcribe_recording(recording_completed(duration_seconds=12), d)
    assert event.transcript == "First. Second. Third."  # type: ignore[attr-defined]
    copy = ("telephone-quality.pcm", 0o600)  # the download is gone once its copy exists
    assert engine.seen == [(0o700, [(f"recording-part{i}.wav", 0o600), copy]) for i in (1, 2, 3)]
    assert leftovers(temp_root) == []


class CutDownload:
    """Writes half the recording, then the connection drops."""

    async def fetch(self, account: TwilioAccount, recording_sid: str, into: BinaryIO) -> str:
        into.write(tone_wav(1.0)[:4000])
        raise TransientError("twilio recording download was cut off before the end")


@pytest.mark.parametrize(
    ("recordings", "engine", "error"),
    [
        (CutDownload(), ScriptedEngine("x"), TransientError),
        (WrittenRecordings(tone_wav(2.0)), ScriptedEngine(PermanentError("HTTP 401")), PermanentError),
        (WrittenRecordings(b"ID3" + bytes(200_000)), ScriptedEngine("x"), RecordingTooLargeForUpload),
    ],
    ids=["download-cut", "speech-to-text-refused", "too-large-to-re-encode"],
)
async def test_the_workspace_is_removed_when_the_handler_fails(
    temp_root: Path, recordings: Any, engine: ScriptedEngine, error: type[Exception]
) -> None:
    d = deps(b"", engine, config=config(), limits=UploadLimits(max_bytes=100_000))
    d.recordings = recordings
    with pytest.raises(error):
        await transcribe_recording(recording_completed(), d)
    assert leftovers(temp_root) == []


class Blocked:
    """A download or an upload that never ends, until cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def fetch(self, account: TwilioAccount, recording_sid: str, into: BinaryIO) -> str:
        into.write(tone_wav(1.0))
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    async def transcribe(self, recording: Recording, target: SpeechToTextTarget) -> Transcript:
        read_upload(recording)
        self.started.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")


@pytest.mark.parametrize("where", ["download", "speech-to-text"])
async def test_the_workspace_is_removed_when_the_handler_is_cancelled(temp_root: Path, where: str) -> None:
    blocked = Blocked()
    d = deps(tone_wav(2.0), ScriptedEngine("x"))
    if where == "download":
        d.recordings = blocked
    else:
        d.engine = blocked
    task = asyncio.create_task(transcribe_recording(recording_completed(), d))
    await asyncio.wait_for(blocked.started.wait(), 5)
    assert len(leftovers(temp_root)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(temp_root) == []


async def test_a_cancelled_handler_stops_its_preparation_thread_before_removing_the_workspace(
    temp_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread is told to stop and waited for, so it never writes into a removed workspace."""
    real = handlers.plan_uploads
    entered, release, ended = threading.Event(), threading.Event(), threading.Event()
    outcome: list[BaseException] = []

    def slow_plan(*args: Any) -> Any:
        entered.set()
        release.wait(5)
        try:
            return real(*args)  # stop is already set: the first block read gives up
        except BaseException as exc:
            outcome.append(exc)
            raise
        finally:
            ended.set()

    monkeypatch.setattr(handlers, "plan_uploads", slow_plan)
    d = deps(
        tone_wav(3.0, rate=48000, channels=2), ScriptedEngine("x"), limits=UploadLimits(max_bytes=100_000)
    )
    task = asyncio.create_task(transcribe_recording(recording_completed(), d))
    assert await asyncio.to_thread(entered.wait, 5)
    task.cancel()
    await asyncio.sleep(0.05)
    assert not task.done(), "the cancellation waits for the thread"
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended.is_set() and [type(e) for e in outcome] == [PreparationStopped]
    assert leftovers(temp_root) == []


def test_workspace_files_are_created_once_and_private(temp_root: Path) -> None:
    with Workspace.opened() as work:
        path = work.new_file("recording")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        with pytest.raises(FileExistsError):
            work.new_file("recording")
    assert leftovers(temp_root) == []


def test_workspaces_left_by_a_killed_process_are_removed_once_an_hour_old(temp_root: Path) -> None:
    stale, recent = temp_root / "voiceticket-transcriber-killed", temp_root / "voiceticket-transcriber-busy"
    for root in (stale, recent):
        root.mkdir(mode=0o700)
        (root / "recording").write_bytes(b"RIFF")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    (temp_root / "unrelated").mkdir()
    os.utime(temp_root / "unrelated", (two_hours_ago, two_hours_ago))
    with Workspace.opened():
        pass
    assert sorted(p.name for p in leftovers(temp_root)) == ["unrelated", "voiceticket-transcriber-busy"]
