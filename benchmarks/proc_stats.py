"""CPU time and resident memory of a server: every process of its session, threads included.

Each benchmarked server is started in its own session (``ServerProcess``: ``start_new_session``),
so its session id is the launcher's pid and every worker it forks (MLServer's inference pool,
uvicorn workers) shares it. ``/proc/<pid>/stat``'s utime + stime already sum all threads of a
process; summing over the session's processes adds the children that are still alive.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        text = (PROC / pid / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None  # exited between the listing and the read
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    return text[text.rindex(")") + 2 :].split()


def session_pids(session: int) -> list[int]:
    """The pids of every live process whose session id is ``session``."""
    pids = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields is not None and int(fields[3]) == session:  # field 6: session
                pids.append(int(entry.name))
    return pids


def cpu_seconds(session: int) -> float:
    """User + system CPU seconds used so far by the live processes of ``session`` (all threads)."""
    total = 0
    for pid in session_pids(session):
        fields = _stat_fields(str(pid))
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime (ticks)
    return total / CLOCK_TICKS


def rss_bytes(session: int) -> int:
    """Resident set size summed over the live processes of ``session``."""
    total = 0
    for pid in session_pids(session):
        try:
            total += int((PROC / str(pid) / "statm").read_text().split()[1]) * PAGE_SIZE
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def machine_ticks() -> tuple[int, int]:
    """``(steal, total)`` CPU ticks of the whole machine so far (``/proc/stat``'s first line).

    Steal is time the hypervisor ran something else while this VM wanted the CPU: a share of it
    over a round says how much the host, not the load average, slowed that round down.
    """
    values = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    return (values[7] if len(values) > 7 else 0), sum(values[:8])
