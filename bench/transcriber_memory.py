"""Benchmark: the transcriber's memory for one long recording (issue #9: a 60-minute recording
peaked at 369 MiB and did not go back to idle; target peak <= idle + 80 MiB).

The parent process writes a recording as Twilio serves a ``<Record>`` (16-bit PCM WAV, 8 kHz
mono; ``--channels 2`` for a dual-channel call recording) to a temporary directory on disk, starts
the provider stand-ins in their own process (``python -m voiceticket_sandbox serve``, so their
memory is not counted), gives the Twilio stand-in the recording, and runs a child process that
does nothing but the transcriber's real path: the service's own adapters
(``voiceticket_transcriber.bootstrap.adapters``: Twilio media download, OpenAI speech-to-text
through the SDK, the SQLite transcript ledger) and ``transcribe_recording`` for one
``call.recording.completed``. The child reports its RSS idle (after one short warm-up call, as a
service that has handled calls), its peak during the long call (``VmHWM`` after resetting it
through ``/proc/self/clear_refs``, cross-checked by sampling ``VmRSS``) and after it, plus the
longest stall of its event loop while the call ran. Output: a markdown block.

    uv run --frozen python bench/transcriber_memory.py --minutes 60
    # the same measurement on another checkout's code (e.g. a clean worktree of HEAD):
    uv run --frozen python bench/transcriber_memory.py --code-root /tmp/base
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RATE = 8000
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
LONG_SID = "RE" + "1" * 32
WARM_SID = "RE" + "2" * 32
LINE = "+15005550006"
SPOKEN = "Part of a long message about an order."


# --- the recording, written block by block to disk ------------------------------------------


def write_recording(path: Path, seconds: int, channels: int) -> int:
    """A WAV of "words" (1.2 s tones at a few pitches) and 0.4 s pauses; its size in bytes."""

    words = [_tone(1.2, 220.0 + 37.0 * k) for k in range(5)]
    pause = array("h", bytes(int(0.4 * RATE) * 2))
    frames = seconds * RATE
    data_bytes = frames * 2 * channels
    with path.open("wb") as out:
        out.write(_wav_header(data_bytes, channels))
        written, k = 0, 0
        while written < frames:
            for piece in (words[k % len(words)], pause):
                piece = piece[: frames - written]
                if channels > 1:
                    piece = array("h", [s for s in piece for _ in range(channels)])
                out.write(piece.tobytes())
                written += len(piece) // channels
            k += 1
    return 44 + data_bytes


def _tone(seconds: float, frequency: float) -> array[int]:
    n = int(seconds * RATE)
    return array("h", (int(0.3 * 32767 * math.sin(2 * math.pi * frequency * i / RATE)) for i in range(n)))


def _wav_header(data_bytes: int, channels: int) -> bytes:
    block = 2 * channels
    return (
        b"RIFF" + (36 + data_bytes).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little") + channels.to_bytes(2, "little") + RATE.to_bytes(4, "little")
        + (RATE * block).to_bytes(4, "little") + block.to_bytes(2, "little") + (16).to_bytes(2, "little")
        + b"data" + data_bytes.to_bytes(4, "little")
    )  # fmt: skip


# --- the parent: stand-ins in their own process, the child, the report ---------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--channels", type=int, default=1, choices=(1, 2))
    parser.add_argument("--code-root", type=Path, default=REPO, help="checkout whose transcriber is measured")
    parser.add_argument("--label", default="", help="shown in the report's heading")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(json.loads(args.spec)))))
        return
    print(report(asyncio.run(parent(args.minutes, args.channels, args.code_root.resolve())), args))


async def parent(minutes: float, channels: int, code_root: Path) -> dict[str, Any]:
    import httpx  # the parent's own imports stay out of the child's figures anyway

    with tempfile.TemporaryDirectory(prefix="voiceticket-bench-stt-") as tmp:
        work = Path(tmp)
        long_wav, warm_wav = work / "long.wav", work / "warm.wav"
        size = write_recording(long_wav, round(minutes * 60), channels)
        write_recording(warm_wav, 20, 1)
        sandbox, urls = start_sandboxes(work)
        try:
            auth_token, openai_key = secrets.token_hex(16), "sk-" + secrets.token_urlsafe(16)
            async with httpx.AsyncClient(timeout=600) as client:
                account = {"account_sid": ACCOUNT_SID, "auth_token": auth_token}
                (await client.post(f"{urls['twilio']}/_sandbox/accounts", json=account)).raise_for_status()
                for sid, path in ((WARM_SID, warm_wav), (LONG_SID, long_wav)):
                    body = {"account_sid": ACCOUNT_SID, "recording_sid": sid,
                            "audio_base64": base64.b64encode(path.read_bytes()).decode(), "transcript": SPOKEN}  # fmt: skip
                    (await client.post(f"{urls['twilio']}/_sandbox/recordings", json=body)).raise_for_status()
                behaviour = {"unknown_audio_text": SPOKEN}
                (await client.put(f"{urls['openai']}/_sandbox/behaviour", json=behaviour)).raise_for_status()
                spec = {"urls": urls, "auth_token": auth_token, "openai_key": openai_key,
                        "workdir": str(work), "duration": round(minutes * 60)}  # fmt: skip
                figures = run_child(spec, code_root)
                records = (await client.get(f"{urls['openai']}/_sandbox/requests")).json()
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=30)
    uploads = [r for r in records if r["path"].endswith("/audio/transcriptions")]
    figures["recording_bytes"] = size
    figures["uploads"] = len(uploads) - 1  # minus the warm-up call's one
    figures["uploads_valid"] = all(r["valid"] for r in uploads)
    figures["largest_upload_bytes"] = max(f["size"] for r in uploads for f in r["body"]["files"])
    return figures


def start_sandboxes(work: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    ready = work / "sandbox.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "voiceticket_sandbox", "serve", "--ready-file", str(ready)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the sandboxes did not start")
        time.sleep(0.2)
    urls: dict[str, str] = json.loads(ready.read_text())
    return proc, urls


def run_child(spec: dict[str, Any], code_root: Path) -> dict[str, Any]:
    env = dict(os.environ)
    # The checkout's sources come before the installed (editable) ones of this environment.
    paths = [str(code_root / "services" / "transcriber" / "src"), str(code_root / "libs" / "common" / "src")]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    done = subprocess.run(
        [sys.executable, __file__, "--child", "--spec", json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the transcriber child failed:\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def report(f: dict[str, Any], args: argparse.Namespace) -> str:
    mib = 1024 * 1024
    idle, after = f["idle_kib"] / 1024, f["after_kib"] / 1024
    peak = max(f["peak_kib"], f["sampled_peak_kib"]) / 1024  # VmHWM is updated lazily
    label = f" ({args.label})" if args.label else ""
    rows = [
        ("recording", f"{args.minutes:g} min, 8 kHz {args.channels}-ch 16-bit WAV, "
                      f"{f['recording_bytes'] / mib:.1f} MiB"),
        ("code measured", f"`{f['module']}`"),
        ("RSS at start (imports, adapters open)", f"{f['start_kib'] / 1024:.1f} MiB"),
        ("RSS idle (after a 20 s warm-up call)", f"{idle:.1f} MiB"),
        ("peak RSS during the call", f"{peak:.1f} MiB: idle + {peak - idle:.1f} MiB, {peak / idle:.2f}x idle"),
        ("of which: VmHWM / VmRSS sampled every 2 ms", f"{f['peak_kib'] / 1024:.1f} / "
                                                       f"{f['sampled_peak_kib'] / 1024:.1f} MiB"),
        ("RSS after the call", f"{after:.1f} MiB: idle + {after - idle:.1f} MiB, {after / idle:.2f}x idle"),
        ("target peak <= idle + 80 MiB", "met" if peak - idle <= 80 else "not met"),
        ("call time (download, preparation, speech-to-text)", f"{f['seconds']:.1f} s"),
        ("longest event-loop stall during the call", f"{f['max_loop_stall_ms']:.0f} ms"),
        ("speech-to-text uploads", f"{f['uploads']}, largest {f['largest_upload_bytes'] / 1e6:.1f} MB, "
                                   f"all valid: {f['uploads_valid']}"),
        ("transcript", f"{f['transcript_chars']} characters, {f['transcript_parts']} parts"),
    ]  # fmt: skip
    lines = [f"### Transcriber memory, one long recording{label}", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


# --- the child: only the transcriber's path -------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class RssSampler:
    """The highest VmRSS seen, read every 2 ms in a thread (the GIL is released while it sleeps)."""

    def __init__(self) -> None:
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak_kib = max(self.peak_kib, _status_kib("VmRSS"))


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


async def _loop_stalls(stop: asyncio.Event, worst: list[float]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        await asyncio.sleep(0.01)
        worst[0] = max(worst[0], time.monotonic() - started - 0.01)


async def child(spec: dict[str, Any]) -> dict[str, Any]:
    import gc

    import voiceticket_transcriber
    from voiceticket_common.events import CallTranscribed
    from voiceticket_common.runtime_views import TranscriberView
    from voiceticket_common.testing import StaticRuntimeConfig, recording_completed
    from voiceticket_transcriber.bootstrap import adapters
    from voiceticket_transcriber.handlers import transcribe_recording
    from voiceticket_transcriber.settings import TranscriberSettings

    urls, work = spec["urls"], Path(spec["workdir"])
    settings = TranscriberSettings(
        database_url=f"sqlite+aiosqlite:///{work / 'transcriber.db'}",
        twilio_api_base_url=urls["twilio"],
        egress_allowed_hosts=["http://127.0.0.1:*"],
        download_timeout_seconds=300.0,
    )
    tenant = {"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": spec["auth_token"],
              "openai_base_url": urls["openai"] + "/v1", "openai_api_key": spec["openai_key"],
              "transcription_model": "gpt-4o-mini-transcribe"}  # fmt: skip
    config = StaticRuntimeConfig.of(TranscriberView, {LINE: ("bench", {"language_mode": "auto"}, tenant)})

    def completed(sid: str, n: int, seconds: int) -> Any:
        return recording_completed(
            call_sid="CA" + str(n) * 32, account_sid=ACCOUNT_SID, recording_sid=sid,
            line_number=LINE, duration_seconds=seconds,
        )  # fmt: skip

    async with adapters(settings, config) as deps:
        start_kib = _status_kib("VmRSS")
        await transcribe_recording(completed(WARM_SID, 2, 20), deps)
        gc.collect()
        await asyncio.sleep(0.5)
        idle_kib = _status_kib("VmRSS")
        _reset_peak()
        stop, worst = asyncio.Event(), [0.0]
        ticker = asyncio.create_task(_loop_stalls(stop, worst))
        with RssSampler() as sampler:
            started = time.monotonic()
            [event] = await transcribe_recording(completed(LONG_SID, 3, spec["duration"]), deps)
            seconds = time.monotonic() - started
            stop.set()
            await ticker
            peak_kib = _status_kib("VmHWM")
        assert isinstance(event, CallTranscribed)
        transcript = event.transcript
        del event
        gc.collect()
        await asyncio.sleep(2.0)  # the service idles on: has its memory gone back?
        after_kib = _status_kib("VmRSS")
    return {
        "module": voiceticket_transcriber.__file__,
        "start_kib": start_kib,
        "idle_kib": idle_kib,
        "peak_kib": peak_kib,
        "sampled_peak_kib": sampler.peak_kib,
        "after_kib": after_kib,
        "seconds": seconds,
        "max_loop_stall_ms": worst[0] * 1000,
        "transcript_chars": len(transcript),
        "transcript_parts": transcript.count(SPOKEN),
    }


if __name__ == "__main__":
    main()
