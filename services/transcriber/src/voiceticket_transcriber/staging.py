"""Where a recording is while the transcriber works on it: a private directory on local disk.

A recording is personal data and can be large (an hour of WAV is 58 MB, twice that in two
channels), so it is never held in memory whole: it is streamed from Twilio into a file here, read
from there block by block, and each upload is streamed from a file here too. The directory is the
call's own (``mkdtemp``: mode 0700, under ``$TMPDIR`` or ``/tmp``), its files are created mode
0600, and it is removed when the call's work ends, however it ends: success, an error, or the
handler's cancellation.

A process killed mid-call (OOM, SIGKILL) cannot remove its directory: the next workspace made
removes such leftovers once they are an hour old, longer than any call's work takes.

CPU work on the files (measuring, re-encoding, splitting) runs in a worker thread, off the event
loop other calls share (``off_loop``). A cancelled handler tells that thread to stop and waits for
it before the directory is removed, so nothing is written into it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

_PREFIX = "voiceticket-transcriber-"
STALE_SECONDS = 3600.0
"""A workspace this old belonged to a process that died mid-call."""


class PreparationStopped(Exception):
    """The handler that wanted this work was cancelled; the worker thread gives up."""


@dataclass(frozen=True)
class AudioFile:
    """An audio file in the workspace, and how speech-to-text is told what it is."""

    path: Path
    content_type: str
    filename: str

    @property
    def size(self) -> int:
        return self.path.stat().st_size


class Workspace:
    """One call's private directory; ``opened()`` makes it and removes it with all it holds."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    @contextlib.contextmanager
    def opened(cls) -> Iterator[Workspace]:
        root = Path(tempfile.mkdtemp(prefix=_PREFIX))  # mode 0700, a fresh name
        _remove_stale(root.parent, time.time() - STALE_SECONDS)
        try:
            yield cls(root)
        finally:
            _remove(root)

    def new_file(self, name: str) -> Path:
        """An empty file only this process's user can read (0600), created here, never reused."""
        path = self.root / name
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return path


def _remove(root: Path) -> None:
    try:
        shutil.rmtree(root)
    except FileNotFoundError:
        pass
    except OSError as exc:  # the call's outcome stands; the leftover is swept later
        log.warning("could not remove a recording workspace", extra={"error": type(exc).__name__})


def _remove_stale(parent: Path, older_than: float) -> None:
    for entry in parent.glob(_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if entry.is_dir() and entry.stat().st_mtime < older_than:
                _remove(entry)


class StoppableReader:
    """A binary file whose reads fail with ``PreparationStopped`` once ``stop`` is set: every loop
    over a recording's blocks reads through one, so a worker thread stops within one block."""

    def __init__(self, file: BinaryIO, stop: threading.Event) -> None:
        self._file = file
        self._stop = stop

    def seek(self, offset: int, whence: int = 0, /) -> int:
        return self._file.seek(offset, whence)

    def read(self, size: int = -1, /) -> bytes:
        if self._stop.is_set():
            raise PreparationStopped()
        return self._file.read(size)


@contextlib.contextmanager
def reading(path: Path, stop: threading.Event) -> Iterator[StoppableReader]:
    with path.open("rb") as file:
        yield StoppableReader(file, stop)


async def off_loop(work: Callable[[threading.Event], T]) -> T:
    """``work(stop)`` in a worker thread (the loop's default executor, a few threads at most).

    If the awaiting task is cancelled, ``stop`` is set and the thread is waited for (it stops at
    its next block read) before the cancellation goes on, so it never outlives the workspace.
    """

    stop = threading.Event()
    thread = asyncio.ensure_future(asyncio.to_thread(work, stop))
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:
        stop.set()
        while not thread.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([thread])
        if not thread.cancelled():
            thread.exception()  # retrieved: PreparationStopped is the expected end here
        raise
