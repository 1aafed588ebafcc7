"""What /proc says about our processes: memory by PSS, so shared pages are counted once.

RSS double-counts what the workers share with the supervisor (the interpreter, the message
corpus); the sum of PSS over the processes of a run is the memory the run really uses.
"""

from __future__ import annotations

PROC = "/proc"
KIB = 1024


def pss_bytes(pid: int, proc: str = PROC) -> int:
    """Proportional set size of ``pid``; 0 when it is gone or unreadable."""
    try:
        with open(f"{proc}/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * KIB
    except (OSError, ValueError, IndexError):
        pass
    return 0
