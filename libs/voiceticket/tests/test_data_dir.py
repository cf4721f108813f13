"""The embedded data directory is private: 0700, its files 0600, also after an older install."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from voiceticket.data_dir import UnsafeDataDir, secure_data_dir
from voiceticket.embedded import EmbeddedOptions, EmbeddedRuntime


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_world_readable_install_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "bus.db").write_bytes(b"")
    (data / "bus.db").chmod(0o644)
    fixed = secure_data_dir(data, ("notifier.db",))
    assert mode(data) == 0o700
    assert {p.name: mode(p) for p in data.iterdir()} == {"bus.db": 0o600, "notifier.db": 0o600}
    assert len(fixed) == 2, "the directory and the one broad file"
    assert secure_data_dir(data) == [], "nothing left to fix"


def test_a_file_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a directory")
    with pytest.raises((UnsafeDataDir, FileExistsError)):
        secure_data_dir(tmp_path / "data")


async def test_the_embedded_runtime_keeps_everything_it_writes_private(tmp_path: Path) -> None:
    data = tmp_path / "voiceticket"
    old = os.umask(0o022)  # the usual umask: what SQLite would otherwise create files with
    try:
        async with EmbeddedRuntime(
            EmbeddedOptions(data_dir=data, ingress_port=0, config_api_port=0, log_level="WARNING")
        ):
            pass
    finally:
        os.umask(old)
    assert mode(data) == 0o700
    files = {p.name: mode(p) for p in data.iterdir() if p.is_file()}
    assert {"bus.db", "config-api.db", "jira-writer.db", "notifier.db", "secrets.json"} <= set(files)
    assert {name: m for name, m in files.items() if m != 0o600} == {}
