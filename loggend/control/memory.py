"""Memory of a run by proportional set size (PSS), so shared pages are counted once, and the limit.

RSS double-counts what the children share with the supervisor (the interpreter, the message
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


class MemoryWatch:
    """The PSS of a set of processes, its peak, and whether it is over the limit (0 = none)."""

    def __init__(self, limit: int, proc: str = PROC) -> None:
        self.limit = limit
        self.proc = proc
        self.current = 0
        self.peak = 0

    def measure(self, pids: list[int]) -> int:
        self.current = sum(pss_bytes(pid, self.proc) for pid in pids)
        self.peak = max(self.peak, self.current)
        return self.current

    @property
    def over(self) -> bool:
        return bool(self.limit) and self.current > self.limit
