"""Trying it on one machine (issue #13, point 6), the parts a unit test can check: ``run
--with-sandboxes`` and ``simulate-call --sample`` refuse wrong usage with exit 2 and one line,
the state file round-trips, ``.voiceticket/`` is ignored by git and ``make clean`` removes what
its help says. The whole walk-through runs in tests/integration/test_try_it.py."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from voiceticket.samples import sample_calls
from voiceticket.try_it import SANDBOXES_FILE, TryIt, next_steps, sandbox_ports

ROOT = Path(__file__).resolve().parents[3]


def voiceticket(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "voiceticket", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["simulate-call", "--sample", "nope"], "unknown sample 'nope'; choose one of password-reset"),
        (["simulate-call"], "pass --sample NAME, or --audio, --from, --to, --transcript"),
        (["simulate-call", "--from", "+14155550123"], "pass --sample NAME, or --audio, --to, --transcript"),
        (
            ["simulate-call", "--sample", "vpn-outage"],
            "--sample needs a running `voiceticket run --with-sandboxes`",
        ),
        (["run", "--with-sandboxes", "--service", "ingress"], "leave out --seed and --service"),
        (["run", "--with-sandboxes", "--speech-to-text", "magic"], "unknown --speech-to-text 'magic'"),
    ],
)
def test_wrong_usage_exits_2_with_one_line(tmp_path: Path, args: list[str], says: str) -> None:
    result = voiceticket(*args, "--data-dir", str(tmp_path))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert says in one_line_error(result) and not result.stdout


def test_simulate_call_help_lists_the_samples() -> None:
    shown = " ".join(voiceticket("simulate-call", "--help").stdout.split())
    for name in sample_calls():
        assert name in shown
    assert "--with-sandboxes" in " ".join(voiceticket("run", "--help").stdout.split())


def test_the_state_file_round_trips_and_names_what_to_do_next(tmp_path: Path) -> None:
    assert TryIt.load(tmp_path) is None
    tried = TryIt("http://127.0.0.1:8080", "http://127.0.0.1:8085", "http://127.0.0.1:9001",
                  "http://127.0.0.1:9002/v1", "http://127.0.0.1:9003", "acme", "+15005550006")  # fmt: skip
    path = tried.save(tmp_path)
    assert path.name == SANDBOXES_FILE and path.stat().st_mode & 0o777 == 0o600
    assert TryIt.load(tmp_path) == tried
    (tmp_path / SANDBOXES_FILE).write_text("{not json")
    assert TryIt.load(tmp_path) is None
    steps = "\n".join(next_steps(tried, Path(".voiceticket")))
    assert "voiceticket simulate-call --sample vpn-outage\n" in steps  # default data dir: no flag
    assert "admin page:                http://127.0.0.1:8085/admin" in steps
    assert "--data-dir /srv/vt" in "\n".join(next_steps(tried, Path("/srv/vt")))
    assert sandbox_ports(9001) == (9001, 9002, 9003) and sandbox_ports(0) == (0, 0, 0)


def test_the_data_directory_is_ignored_by_git() -> None:
    assert ".voiceticket/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_removes_the_broker_data_and_the_data_directory(tmp_path: Path) -> None:
    kafka = tmp_path / "deploy" / "local" / "kafka"
    kafka.mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    shutil.copy(ROOT / "deploy" / "local" / "kafka" / "kafka.sh", kafka / "kafka.sh")
    for made in (".local/kafka/data/x", ".voiceticket/bus.db", "keep.txt"):
        (tmp_path / made).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / made).write_text("x")
    helped = subprocess.run(["make", "help"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert (
        "remove its data (.local) and `voiceticket run`'s databases and secrets (.voiceticket)"
        in helped.stdout
    )
    cleaned = subprocess.run(["make", "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (tmp_path / ".local").exists() and not (tmp_path / ".voiceticket").exists()
    assert (tmp_path / "keep.txt").exists()
