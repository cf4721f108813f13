"""The product for the benchmark's embedded runs: all six services in this process (what
``voiceticket run`` starts), pointed at provider stand-ins that run in another process.

Writes ``{"ingress": ..., "config_api": ...}`` to the ready file once it listens, runs until
SIGTERM. ``VOICETICKET_BENCH_PROFILE=<file>`` profiles the process with cProfile (stats written
at exit). Runs under any checkout's interpreter, so a "before" can run the old code:

    .venv/bin/python bench/embedded_product.py --sandbox '{"twilio": ..., "openai": ..., "jira": ...}' \\
        --data-dir /tmp/d --ready-file /tmp/d/ready.json
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
from pathlib import Path
from typing import Any

from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime
from voiceticket_sandbox.demo_tenant import seed


async def serve(sandbox: dict[str, str], data_dir: Path, ready_file: Path, overrides: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    seeded = seed(sandbox["twilio"], sandbox["openai"], sandbox["jira"])
    seeded["tenants"][0].update(overrides)
    (data_dir / "seed.json").write_text(json.dumps(seeded))
    options = EmbeddedOptions.against_sandboxes(
        data_dir, sandbox["twilio"], data_dir / "seed.json", log_level="ERROR"
    )
    async with EmbeddedRuntime(options) as runtime:
        ready = {"ingress": runtime.ingress_url, "config_api": runtime.config_api_url, "pid": os.getpid()}
        partial = ready_file.with_name(ready_file.name + ".partial")
        partial.write_text(json.dumps(ready))
        partial.replace(ready_file)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", required=True, help="JSON: the stand-ins' origins")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--tenant-overrides", default="{}", help="JSON merged into the demo tenant")
    args = parser.parse_args()
    args.data_dir.mkdir(parents=True, exist_ok=True)
    work = serve(json.loads(args.sandbox), args.data_dir, args.ready_file, json.loads(args.tenant_overrides))
    profile_to = os.environ.get("VOICETICKET_BENCH_PROFILE")
    if not profile_to:
        asyncio.run(work)
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(work)
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


if __name__ == "__main__":
    main()
