"""The ``voiceticket`` command as a user runs it: a real subprocess, exit codes scripts rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voiceticket.samples import sample_calls


def voiceticket(
    *args: str, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voiceticket", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["run"],
        ["demo"],
        ["samples"],
        ["simulate-call"],
        ["tenants", "list"],
        ["tenants", "create"],
        ["lines", "list"],
        ["lines", "set"],
        ["dead-letters", "list"],
    ],  # fmt: skip
)
def test_every_command_has_help(command: list[str]) -> None:
    result = voiceticket(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: voiceticket" in result.stdout


def test_samples_lists_the_bundled_calls_in_two_languages() -> None:
    result = voiceticket("samples")
    assert result.returncode == 0
    for name in sample_calls():
        assert name in result.stdout
    assert {c.language for c in sample_calls().values()} >= {"en", "de"}


def test_bundled_audio_is_real_speech_length_phone_audio() -> None:
    import wave

    for call in sample_calls().values():
        with wave.open(str(call.path)) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
            assert wav.getnframes() / wav.getframerate() > 5


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["demo", "--sample", "nope"], 2, "unknown sample"),
        (["run", "--service", "nope"], 2, "unknown service"),
        (
            ["tenants", "list", "--config-api-url", "http://127.0.0.1:9", "--admin-token", "x"],
            3,
            "unreachable",
        ),
        (
            ["dead-letters", "list", "voiceticket-notifier", "--data-dir", "/nonexistent"],
            2,
            "no embedded bus",
        ),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_errors_are_clear_and_exit_codes_distinguish_them(args: list[str], code: int, message: str) -> None:
    result = voiceticket(*args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert message in result.stderr


def test_admin_commands_need_a_token(tmp_path: Path) -> None:
    result = voiceticket("tenants", "list", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "no admin token" in result.stderr


def test_demo_turns_a_sample_call_into_a_ticket_and_an_sms() -> None:
    result = voiceticket("demo", "--sample", "billing-account", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    issue = out["issue"]
    assert issue["key"].startswith("HELP-")
    assert "44817723" in issue["requestFieldValues"]["description"]
    assert issue["properties"]["voiceticket.call"]["callSid"] == out["call_sid"]
    assert issue["comments"][0]["public"] is False
    assert [s for s in out["sms"] if issue["key"] in s["body"]]
    steps = [step for step, _ in out["timeline"]]
    assert steps[0].startswith("call answered") and steps[-1] == "SMS sent"
