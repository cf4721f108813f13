"""The embedded installation's data directory holds caller numbers, transcripts and the master key:
only its owner may read it (directory 0700, files 0600), checked and fixed at every start."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


class UnsafeDataDir(RuntimeError):
    """The data directory cannot be made private (another owner, or not a directory)."""


def secure_data_dir(path: Path, files: tuple[str, ...] = ()) -> list[str]:
    """Create ``path`` (0700) and ``files`` in it (0600, empty) if missing; tighten what is broader.

    Files are created before SQLite opens them because SQLite gives new databases the process
    umask's mode (usually 0644) and copies that mode to their WAL and shared-memory files.
    Returns what was tightened, for the start-up log; refuses a directory this user does not own.
    """

    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDataDir(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise UnsafeDataDir(f"{path} belongs to another user; use a data directory of your own")
    fixed: list[str] = []
    if stat.S_IMODE(info.st_mode) != DIRECTORY_MODE:
        path.chmod(DIRECTORY_MODE)
        fixed.append(f"{path.name}/ {stat.S_IMODE(info.st_mode):o} -> {DIRECTORY_MODE:o}")
    for name in files:
        os.close(os.open(path / name, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for entry in path.iterdir():
        if entry.is_symlink() or not entry.is_file():
            continue
        mode = stat.S_IMODE(entry.stat().st_mode)
        if mode & ~FILE_MODE:
            entry.chmod(FILE_MODE)
            fixed.append(f"{entry.name} {mode:o} -> {FILE_MODE:o}")
    if fixed:
        log.warning("data directory was readable by others; tightened", extra={"changes": fixed})
    return fixed
