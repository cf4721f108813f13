"""Throwaway PostgreSQL cluster for tests, from the Debian/Ubuntu server binaries.

    with throwaway_postgres() as dsn:   # postgresql://postgres@127.0.0.1:<port>/postgres
        ...

initdb refuses to run as root, so as root the cluster runs as the ``postgres`` user (via
``runuser``) in a temp dir it owns. The server listens on 127.0.0.1 on a free port, keeps its
unix socket in the temp dir, trusts local connections, trades durability for speed, and is
stopped and deleted on exit. ``PG_BIN`` overrides the binary directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


def postgres_bin_dir() -> Path | None:
    """Directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    initdb = shutil.which("initdb")
    candidates.append(str(Path(initdb).resolve().parent) if initdb else "")
    for c in candidates:
        if c and (Path(c) / "initdb").is_file() and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def throwaway_postgres(user: str = "postgres") -> Iterator[str]:
    bindir = postgres_bin_dir()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
    tmp = Path(tempfile.mkdtemp(prefix="vt-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", user, "--"]
    data, logfile = tmp / "data", tmp / "server.log"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=120, check=False)

    started = False
    try:
        r = run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                "-E", "UTF8", "--no-locale", "--no-sync")  # fmt: skip
        if r.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {r.stderr.strip()[-2000:]}")
        for _attempt in range(3):  # a free port can be taken before the server binds it
            port = _free_port()
            opts = (
                f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            r = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(logfile), "-o", opts,
                    "-w", "-t", "60", "start")  # fmt: skip
            if r.returncode == 0:
                started = True
                break
        if not started:
            log = logfile.read_text()[-2000:] if logfile.exists() else r.stderr
            raise PostgresUnavailable(f"postgres did not start: {log}")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)
