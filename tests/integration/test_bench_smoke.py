"""The benchmark suite's small variant in CI: it runs end to end on both buses and every call
becomes exactly one ticket and one SMS.

No timing is asserted (2-core CI machines vary); `make bench` writes the dated report. The suite
starts its own processes (stand-ins, load generator, bare endpoint, the product) and is given the
session's Kafka broker and Postgres.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"


@pytest.mark.timeout(600)
def test_the_small_suite_turns_every_call_into_one_ticket_and_one_sms(
    kafka_bootstrap: str, postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("VOICETICKET_TEST_POSTGRES_DSN", postgres_dsn)
    for name in ("suite", "report", "procstat"):
        sys.modules.pop(name, None)
    import report  # type: ignore[import-not-found]
    import suite  # type: ignore[import-not-found]

    sections = ("webhooks", "pipeline", "saturation", "burst", "profile")
    workdir = tmp_path / "bench"
    results = suite.run_suite(
        suite.SIZES["small"], ("embedded", "kafka"), sections=sections, log=print, workdir=workdir
    )

    problems = suite.correct(results)
    if problems:  # what the services said: a CI failure must be readable without a rerun
        print(service_warnings(workdir))
    assert problems == []
    for bus in ("embedded", "kafka"):
        (pipeline,) = results[bus]["pipeline"]
        assert pipeline["exactly_one_ticket"] == pipeline["exactly_one_sms"] == pipeline["offered"] == 3
        saturation = results[bus]["saturation"]
        assert saturation["exactly_one_ticket"] == saturation["exactly_one_sms"] == 6
        (webhooks,) = results[bus]["webhooks"]
        assert webhooks["product"]["ok"] == webhooks["product"]["sent"] == 40
        assert set(results[bus]["memory_idle"]) >= (
            {"embedded"} if bus == "embedded" else {"ingress", "notifier"}
        )
    burst = results["embedded"]["burst"]
    assert burst["exactly_one_ticket"] == burst["exactly_one_sms"] == burst["calls"] == 8
    # The burst runs under the tenant's limits; the other sections without any (the product's own
    # concurrency), with a deep consumer window.
    assert results["embedded"]["setup"]["burst"]["provider_concurrency"] == suite.BURST_LIMITS
    assert results["embedded"]["setup"]["main"] == {
        "provider_concurrency": dict.fromkeys(suite.BURST_LIMITS),
        "max_in_flight": suite.OPEN_MAX_IN_FLIGHT,
    }
    assert burst["peak_in_flight"]["jira-create"] <= suite.BURST_LIMITS["jira"]
    assert burst["peak_in_flight"]["sms"] <= suite.BURST_LIMITS["sms"]
    assert results["embedded"]["profile"]["functions"], "the profiled run wrote no stats"

    results["size_name"] = "small"
    out = tmp_path / "results" / "2000-01-01.md"
    report.write_report(results, out)
    text = out.read_text()
    for heading in ("## Targets", "## Webhook latency", "## Pipeline overhead", "## Saturation", "## Burst"):
        assert heading in text
    assert (tmp_path / "results" / "2000-01-01-pipeline.svg").read_text().startswith("<svg")


def service_warnings(workdir: Path, per_file: int = 40) -> str:
    """The warning and error lines of every service log the suite kept (no phone numbers or
    transcripts are logged), the last ``per_file`` of each."""
    out = []
    for path in sorted(workdir.rglob("*.log")):
        lines = [
            line[:500]
            for line in path.read_text(errors="replace").splitlines()
            if '"level": "warning"' in line or '"level": "error"' in line or "Traceback" in line
        ]
        if lines:
            out.append(f"== {path.relative_to(workdir)} ({len(lines)} warnings/errors)")
            out.extend(lines[-per_file:])
    return "\n".join(out)
