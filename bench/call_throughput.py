"""Benchmark: how many calls per minute one embedded process turns into tickets, and how fast.

Plays N signed calls (bundled sample audio, distinct per call) into the embedded runtime with the
sandboxes on loopback, with C calls in flight at a time, and measures for each call the time from
the recording callback (the caller hung up) to the SMS, plus the process's peak RSS. The sandboxes
answer instantly, so this measures our own overhead: webhooks, bus, ledgers, config lookups,
schema validation of every provider request. Real providers add their latency on top.

    uv run python bench/call_throughput.py --calls 50 --concurrency 5 --report bench/reports/embedded.md
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
from voiceticket.samples import sample_calls
from voiceticket_sandbox import run_sandboxes
from voiceticket_sandbox.audio import make_tone_wav
from voiceticket_sandbox.caller import CallerSimulator
from voiceticket_sandbox.demo_tenant import ACCOUNT_SID, AUTH_TOKEN, SUPPORT_LINE, configure_sandboxes, seed


async def run(calls: int, concurrency: int, deadline_s: float) -> dict[str, object]:
    samples = list(sample_calls().values())
    with tempfile.TemporaryDirectory(prefix="voiceticket-bench-") as tmp:
        data = Path(tmp)
        async with run_sandboxes() as urls:
            await configure_sandboxes(urls.twilio, urls.openai, urls.jira)
            (data / "seed.json").write_text(json.dumps(seed(urls.twilio, urls.openai, urls.jira)))
            options = EmbeddedOptions.against_sandboxes(
                data, urls.twilio, data / "seed.json", log_level="ERROR"
            )
            async with EmbeddedRuntime(options) as runtime, httpx.AsyncClient() as client:
                simulator = CallerSimulator(runtime.ingress_url, ACCOUNT_SID, AUTH_TOKEN, urls.twilio)
                gate = asyncio.Semaphore(concurrency)
                hung_up: dict[str, float] = {}
                callers: dict[str, str] = {}

                async def one(n: int) -> None:
                    sample = samples[n % len(samples)]
                    caller = f"+1415555{n:04d}"
                    # Distinct audio per call: the OpenAI stand-in keys transcripts by audio hash.
                    audio = make_tone_wav(1.0 + n / 1000, frequency=300 + n)
                    async with gate:
                        played = await simulator.play_call(caller, SUPPORT_LINE, audio, sample.transcript, 10)
                    hung_up[caller] = time.monotonic()
                    callers[caller] = played.call_sid

                started = time.monotonic()
                await asyncio.gather(*(one(n) for n in range(calls)))
                done: dict[str, float] = {}
                while len(done) < calls and time.monotonic() - started < deadline_s:
                    for message in (await client.get(f"{urls.twilio}/_sandbox/messages")).json():
                        done.setdefault(message["to"], time.monotonic())
                    await asyncio.sleep(0.05)
                elapsed = time.monotonic() - started
                issues = (await client.get(f"{urls.jira}/_sandbox/issues")).json()
    latencies = sorted(done[c] - hung_up[c] for c in done if c in hung_up)
    return {
        "calls": calls,
        "concurrency": concurrency,
        "completed": len(latencies),
        "tickets": len(issues),
        "elapsed_s": round(elapsed, 2),
        "calls_per_minute": round(len(latencies) / elapsed * 60, 1),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(latencies[int(len(latencies) * 0.95) - 1], 3) if latencies else None,
        "max_s": round(latencies[-1], 3) if latencies else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def report(result: dict[str, object]) -> str:
    rows = "\n".join(f"| {k} | {v} |" for k, v in result.items())
    return (
        f"# Embedded call throughput — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        "One process (all six services, SQLite bus), sandboxes on loopback answering instantly;\n"
        "latency = recording callback (caller hung up) → SMS sent. Machine: 2 cores.\n\n"
        f"| metric | value |\n|---|---|\n{rows}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--deadline", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--report", type=Path, help="write a Markdown report here")
    args = parser.parse_args()
    result = asyncio.run(run(args.calls, args.concurrency, args.deadline))
    print(json.dumps(result, indent=2))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(report(result))
    complete = result["completed"] == args.calls and result["tickets"] == args.calls
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
