"""CPU time of processes, from Linux /proc: what a benchmark's work costs, apart from the wall
time that the other processes on a shared 2-core machine also decide."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(command: str) -> float:
    """CPU seconds used so far by every process named `command` (PostgreSQL's backends
    ("postgres"), the Kafka broker ("java")): what the work costs the rest of the machine.
    Includes whatever else they serve meanwhile."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == command:
                    total += cpu_seconds(int(entry.name))
    return total
