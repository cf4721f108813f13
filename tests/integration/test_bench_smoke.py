"""The benchmark's small variant in CI: it runs end to end and every call becomes one ticket.

The numbers are not asserted here (2-core CI machines vary); `make bench` writes the report.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).parents[2] / "bench" / "call_throughput.py"


def load_bench():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("call_throughput", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_a_small_benchmark_run_turns_every_call_into_one_ticket() -> None:
    bench = load_bench()
    result = await bench.run(calls=6, concurrency=3, deadline_s=60)
    assert result["completed"] == 6
    assert result["tickets"] == 6
    assert result["p50_s"] is not None and result["p50_s"] > 0
    assert "| calls_per_minute |" in bench.report(result)
