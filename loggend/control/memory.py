"""Memory of a run by proportional set size (PSS), so shared pages are counted once, and the limit.

RSS double-counts what the children share with the supervisor (the interpreter, the message
corpus); the sum of PSS over the processes of a run is the memory the run really uses. But PSS
is dear: the kernel walks every page table for ``smaps_rollup`` (about 2.5 ms a worker here, a
tenth of a core for 40 workers every second). So ``MemoryWatch`` measures a process's PSS when
it first sees it, then refreshes a rotating tenth of them per measurement, and adds up the latest
PSS of each: a figure never more than ``PSS_ROUNDS`` measurements old per process. The limit is
guarded by the cheap RSS of every process (``statm``) each time: PSS is never more than RSS, so
while the RSS total is under the limit nothing can be over it; when it is not, PSS is measured in
full before anybody stops.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

PROC = "/proc"
KIB = 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
PSS_ROUNDS = 10              # every process's PSS is re-read at least every this many measurements


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


def rss_bytes(pid: int, proc: str = PROC) -> int:
    """Resident set size of ``pid`` (cheap); 0 when it is gone."""
    try:
        with open(f"{proc}/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


class MemoryWatch:
    """The PSS of a set of processes, its peak, and whether it is over the limit (0 = none)."""

    def __init__(self, limit: int, proc: str = PROC) -> None:
        self.limit = limit
        self.proc = proc
        self.current = 0
        self.peak = 0
        self.pss: dict[int, int] = {}          # pid -> its latest PSS
        self.round = 0

    def measure(self, pids: list[int], full: bool = False, between: Callable[[], object] = lambda: None) -> int:
        """The run's memory now (PSS, at most ``PSS_ROUNDS`` measurements stale per process);
        ``between`` runs after each PSS read (the supervisor's watchdog ping: on a busy machine the
        reads of 40 new processes take seconds)."""
        self.pss = {pid: v for pid, v in self.pss.items() if pid in pids}
        if not full and self.limit and sum(rss_bytes(p, self.proc) for p in pids) > self.limit:
            full = True                                   # it might be over: a verdict is never stale
        step = max(1, math.ceil(len(pids) / PSS_ROUNDS))
        due = pids if full else [p for i, p in enumerate(sorted(pids))
                                 if i // step == self.round % PSS_ROUNDS or p not in self.pss]
        self.round += 1
        for pid in due:
            self.pss[pid] = pss_bytes(pid, self.proc)
            between()
        total = sum(self.pss[p] for p in pids)
        self.current = total
        self.peak = max(self.peak, total)
        return total

    @property
    def over(self) -> bool:
        return bool(self.limit) and self.current > self.limit
