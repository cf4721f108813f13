"""Log format (issue #13, point 6): readable lines on a terminal, JSON otherwise, forced either way
by VOICETICKET_LOG_FORMAT; no ANSI codes (uvicorn's ``color_message``) in either."""

from __future__ import annotations

import json
import logging
import os
import pty
import subprocess
import sys

import pytest

from voiceticket_common.logging import JsonFormatter, TextFormatter, log_format

COLOURED = "\x1b[32mINFO\x1b[0m:     Uvicorn running on \x1b[1mhttp://127.0.0.1:8080\x1b[0m"
SCRIPT = """
import logging
from voiceticket_common.logging import setup_logging
setup_logging("svc")
logging.getLogger("uvicorn.error").info(
    "Uvicorn running on %s", "http://127.0.0.1:8080",
    extra={"color_message": "Uvicorn running on \\x1b[1m%s\\x1b[0m", "port": 8080},
)
logging.getLogger("x").warning("caller +14155550123 said hi")
"""


def record(msg: str, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord({"name": "uvicorn.error", "levelname": "INFO", "levelno": 20, "msg": msg})
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_json_lines_carry_no_ansi_codes_and_drop_uvicorns_coloured_copy() -> None:
    line = JsonFormatter("svc").format(
        record(COLOURED, color_message=COLOURED, port=8080, note="\x1b[31mred")
    )
    assert "\x1b" not in line and "\\u001b" not in line
    entry = json.loads(line)
    assert entry["msg"] == "INFO:     Uvicorn running on http://127.0.0.1:8080"
    assert "color_message" not in entry and entry["port"] == 8080 and entry["note"] == "red"


def test_text_lines_are_readable_and_redacted() -> None:
    line = TextFormatter().format(record("caller +14155550123 hung up", color_message=COLOURED, call_sid="CA1",
                                         audit={"actor": "alice"}))  # fmt: skip
    assert "\x1b" not in line and "\n" not in line
    time_, level, logger, rest = line.split(maxsplit=3)
    assert len(time_) == 12 and level == "INFO" and logger == "uvicorn.error:"
    assert "+14155550123" not in rest and rest.startswith("caller ")
    assert rest.endswith('call_sid=CA1 audit={"actor":"alice"}')


class Stream:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_auto_is_text_on_a_terminal_json_otherwise_and_the_setting_forces_either(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VOICETICKET_LOG_FORMAT", raising=False)
    assert (log_format(Stream(True)), log_format(Stream(False)), log_format(object())) == (
        "text",
        "json",
        "json",
    )
    monkeypatch.setenv("VOICETICKET_LOG_FORMAT", "json")
    assert log_format(Stream(True)) == "json"
    monkeypatch.setenv("VOICETICKET_LOG_FORMAT", "TEXT")
    assert log_format(Stream(False)) == "text"
    assert log_format(Stream(False), "json") == "json"  # an explicit argument wins
    monkeypatch.setenv("VOICETICKET_LOG_FORMAT", "pretty")
    with pytest.raises(ValueError, match="VOICETICKET_LOG_FORMAT must be one of auto, json, text"):
        log_format(Stream(True))


def run_script(tty: bool, log_format_env: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "VOICETICKET_LOG_FORMAT"}
    if log_format_env:
        env["VOICETICKET_LOG_FORMAT"] = log_format_env
    if not tty:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-c", SCRIPT], stdout=follower, stderr=subprocess.PIPE,
                              env=env, timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        os.close(follower)
        out = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal's other end is closed: everything was read
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(leader)
    return out.decode().replace("\r\n", "\n")


def test_a_process_logs_text_to_a_terminal_and_json_to_a_pipe() -> None:
    on_terminal = run_script(tty=True).splitlines()
    assert len(on_terminal) == 2 and "\x1b" not in "".join(on_terminal)
    assert on_terminal[0].split()[1:3] == ["INFO", "uvicorn.error:"]
    assert on_terminal[0].endswith("Uvicorn running on http://127.0.0.1:8080  port=8080")
    assert "+14155550123" not in on_terminal[1]

    piped = [json.loads(line) for line in run_script(tty=False).splitlines()]
    assert [e["logger"] for e in piped] == ["uvicorn.error", "x"]
    assert "color_message" not in piped[0] and piped[0]["port"] == 8080

    forced = run_script(tty=True, log_format_env="json").splitlines()
    assert json.loads(forced[0])["msg"] == "Uvicorn running on http://127.0.0.1:8080"
