"""CPU and memory of one process from /proc (Linux): what each product process spent, harness apart."""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    """User+system CPU seconds so far, resident memory now and its peak since start (MiB)."""

    cpu_s: float
    rss_mib: float
    peak_rss_mib: float


def sample(pid: int) -> Sample | None:
    """None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # the command name (field 2) may hold spaces: fields after it start after the last ")"
    fields = stat.rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    memory = {
        line.split(":")[0]: int(line.split()[1]) / 1024
        for line in status.splitlines()
        if line.startswith(("VmRSS:", "VmHWM:"))
    }
    return Sample((utime + stime) / _TICKS, memory.get("VmRSS", 0.0), memory.get("VmHWM", 0.0))


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far per named process (0 for one that is gone)."""
    return {name: (s.cpu_s if (s := sample(pid)) else 0.0) for name, pid in pids.items()}


def memory(pids: dict[str, int]) -> dict[str, tuple[float, float]]:
    """(RSS now, peak RSS) in MiB per named process."""
    return {
        name: (s.rss_mib, s.peak_rss_mib) if (s := sample(pid)) else (0.0, 0.0) for name, pid in pids.items()
    }
