"""A worker service stopped by SIGTERM (a rollout, a scale-down) ends with "service stopped" and
leaves no traceback in its log: SREs read a traceback as a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from voiceticket_sandbox.devstack import Stack

pytestmark = pytest.mark.integration


@pytest.mark.timeout(180)
def test_a_worker_stopped_by_sigterm_logs_no_traceback(
    kafka_bootstrap: str, postgres_dsn: str, tmp_path: Path
) -> None:
    stack = Stack(tmp_path, kafka_bootstrap, postgres_dsn)
    try:
        stack.start(services=("notifier",))
        notifier = stack.processes["notifier"]
        notifier.stop()
        assert notifier.process is not None and notifier.process.returncode == 0
        log = notifier.log_text()
    finally:
        stack.stop()
    assert '"msg": "service stopped"' in log
    assert "Traceback" not in log, log[-3000:]
