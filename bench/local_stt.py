"""Benchmark: the local speech-to-text engine (faster-whisper, issue #15): real-time factor, word
error rate and memory.

In this process, as the transcriber runs it: ``LocalWhisperEngine`` with the settings' options
(the packaged ``tiny.en`` unless ``--model-dir``), and for the long recording the transcriber's
real handler (``transcribe_recording``: the recording staged on disk, split into parts of at most
``local_stt_max_upload_seconds``, each decoded from its file in the engine's worker pool).

1. model load: seconds, and RSS before and after (the process's ``VmRSS``);
2. each bundled sample call, ``--repeats`` times after one warm-up: median seconds, real-time factor
   (processing time / audio length; below 1 is faster than real time), word error rate against the
   sample's reference text, detected language;
3. a long recording (the English samples one after another with pauses, ``--long-seconds``) through
   the handler: seconds, real-time factor, peak RSS during it (``VmHWM`` reset through
   ``/proc/self/clear_refs``) and the longest stall of the event loop while it ran (a 10 ms ticker:
   the engine must keep the loop free); with ``--compare-whole`` the same recording decoded in one
   piece as well, to show what the parts save.

    uv run --frozen python bench/local_stt.py --out bench/results/local-stt-2026-12-02.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
import wave
from pathlib import Path
from typing import BinaryIO

from pydantic import SecretStr

from voiceticket.samples import SampleCall, sample_calls
from voiceticket_common.runtime_views import TranscriberLine, TranscriberTenant, TranscriberView
from voiceticket_common.testing import LINE, StaticRuntimeConfig, recording_completed
from voiceticket_common.twilio import TwilioAccount
from voiceticket_transcriber.audio_prep import UploadLimits
from voiceticket_transcriber.handlers import TranscriberDeps, transcribe_recording
from voiceticket_transcriber.local_whisper import LocalWhisperEngine, LocalWhisperOptions
from voiceticket_transcriber.ports import Recording, SpeechToTextTarget
from voiceticket_transcriber.settings import TranscriberSettings
from voiceticket_transcriber.wer import word_error_rate

MiB = 1024 * 1024


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def rss_mib() -> float:
    return status_kib("VmRSS") / 1024


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def peak_mib() -> float:
    return status_kib("VmHWM") / 1024


def target() -> SpeechToTextTarget:
    return SpeechToTextTarget(
        base_url="", api_key=SecretStr(""), model="local", language=None, backend="local"
    )


async def transcribe_sample(engine: LocalWhisperEngine, sample: SampleCall) -> tuple[float, str, str | None]:
    started = time.perf_counter()
    with sample.path.open("rb") as audio:
        heard = await engine.transcribe(Recording(audio, "audio/x-wav", "r.wav", sample.path), target())
    return time.perf_counter() - started, heard.text, heard.language


def long_recording(path: Path, seconds: float) -> tuple[float, str]:
    """The English samples in turn with 1.5 s pauses until ``seconds``; (length, reference text)."""

    english = [s for s in sample_calls().values() if s.language == "en"]
    with wave.open(str(english[0].path), "rb") as first:
        rate, width, channels = first.getframerate(), first.getsampwidth(), first.getnchannels()
    pause = bytes(int(1.5 * rate) * width * channels)
    texts: list[str] = []
    frames = 0
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        k = 0
        while frames < seconds * rate:
            sample = english[k % len(english)]
            with wave.open(str(sample.path), "rb") as source:
                data = source.readframes(source.getnframes())
            out.writeframes(data + pause)
            frames += len(data + pause) // (width * channels)
            texts.append(sample.transcript)
            k += 1
    return frames / rate, " ".join(texts)


class FileRecordings:
    """A ``RecordingSource`` copying a file on disk into the handler's workspace, block by block."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def fetch(self, account: TwilioAccount, recording_sid: str, into: BinaryIO) -> str:
        with self.path.open("rb") as source:
            while block := source.read(1 << 20):
                into.write(block)
        return "audio/x-wav"


async def through_the_handler(
    engine: LocalWhisperEngine, path: Path, seconds: float, limits: UploadLimits
) -> dict[str, float | str]:
    view = TranscriberView(
        tenant_id="bench",
        line=TranscriberLine(number=LINE),
        tenant=TranscriberTenant(twilio_auth_token=SecretStr("tok")),  # no OpenAI key: local
    )
    deps = TranscriberDeps(
        config=StaticRuntimeConfig({LINE: view}),
        recordings=FileRecordings(path),
        engine=engine,
        local_limits=limits,
    )
    stalls: list[float] = []

    async def ticker() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            stalls.append(time.perf_counter() - before - 0.01)

    tick = asyncio.create_task(ticker())
    reset_peak()
    before = rss_mib()
    started = time.perf_counter()
    [event] = await transcribe_recording(recording_completed(duration_seconds=round(seconds)), deps)
    elapsed = time.perf_counter() - started
    tick.cancel()
    return {
        "seconds": elapsed,
        "rtf": elapsed / seconds,
        "rss_before": before,
        "peak": peak_mib(),
        "stall_ms": max(stalls) * 1000,
        "transcript": getattr(event, "transcript", ""),
    }


async def main(args: argparse.Namespace) -> str:
    settings = TranscriberSettings()
    options = LocalWhisperOptions(
        model_dir=args.model_dir,
        compute_type=args.compute_type,
        workers=1,
        cpu_threads=args.cpu_threads,
        beam_size=args.beam_size,
    )
    lines = [
        f"## Local speech-to-text: {options.model_name}, {options.compute_type}, beam {options.beam_size}, "
        f"{options.cpu_threads or 'default'} CPU threads",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load average before: {os.getloadavg()[0]:.2f} (the machine is shared: figures under load are slower)",
        "",
    ]
    idle = rss_mib()
    engine = LocalWhisperEngine(options)
    started = time.perf_counter()
    await engine.warm_up()
    load_seconds = time.perf_counter() - started
    loaded = rss_mib()
    lines += [
        "| model load | RSS before | RSS after load |",
        "|---:|---:|---:|",
        f"| {load_seconds:.2f} s | {idle:.0f} MiB | {loaded:.0f} MiB |",
        "",
        f"Samples (median of {args.repeats} after one warm-up, each decoded from its file):",
        "",
        "| sample | language | audio | processing | real-time factor | WER | detected |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    wers: list[float] = []
    chosen = [s for s in sample_calls().values() if not args.samples or s.name in args.samples.split(",")]
    for sample in chosen:
        await transcribe_sample(engine, sample)  # warm-up (the VAD model loads on the first)
        runs = [await transcribe_sample(engine, sample) for _ in range(args.repeats)]
        median = statistics.median(r[0] for r in runs)
        text, language = runs[-1][1], runs[-1][2]
        wer = word_error_rate(sample.transcript, text)
        if sample.language == "en":
            wers.append(wer)
        seconds = sample.duration_seconds
        lines.append(
            f"| {sample.name} | {sample.language} | {seconds} s | {median:.2f} s | {median / seconds:.3f} "
            f"| {wer:.1%} | {language} |"
        )
    if wers:
        lines += ["", f"Mean WER over the English samples: {statistics.mean(wers):.1%}."]
    lines.append("")
    after_samples = rss_mib()

    with_parts = UploadLimits(settings.local_stt_max_upload_bytes, settings.local_stt_max_upload_seconds)
    cases = [("in parts (the handler's default limits)", with_parts)]
    if args.compare_whole:
        cases.append(("whole (limits lifted)", UploadLimits(1 << 40, 1e9)))
    path = Path(args.workdir) / "long-recording.wav"
    seconds, reference = long_recording(path, args.long_seconds)
    lines += [
        f"A {seconds:.0f} s recording through the handler (RSS after the samples: {after_samples:.0f} MiB; "
        f"parts of at most {settings.local_stt_max_upload_seconds:.0f} s):",
        "",
        "| decoded | processing | real-time factor | WER | RSS before | peak RSS | longest loop stall |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    try:
        for name, limits in cases:
            r = await through_the_handler(engine, path, seconds, limits)
            wer = word_error_rate(reference, str(r["transcript"]))
            lines.append(
                f"| {name} | {r['seconds']:.1f} s | {r['rtf']:.3f} | {wer:.1%} | {r['rss_before']:.0f} MiB "
                f"| {r['peak']:.0f} MiB | {r['stall_ms']:.0f} ms |"
            )
    finally:
        path.unlink(missing_ok=True)
        await engine.aclose()
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--cpu-threads", type=int, default=0)
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", default="", help="comma-separated sample names (default: all)")
    parser.add_argument("--long-seconds", type=float, default=600.0)
    parser.add_argument("--compare-whole", action="store_true")
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--out", type=Path, default=None)
    cli = parser.parse_args()
    report = asyncio.run(main(cli))
    print(report)
    if cli.out:
        with cli.out.open("a") as file:
            file.write(report + "\n")
