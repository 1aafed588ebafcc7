"""The CPU each process of a run uses, by its name (``loggend-p0``, ``loggend-w3``,
``loggend-sink0``, ``loggend-web``), between two looks: what tells, when a target is missed,
which process was short of CPU (perftest)."""

from __future__ import annotations

import time

import psutil

SHORT_PERCENT = 90.0          # a process using this much of one CPU over the steady seconds was short of it


def role(name: str) -> str:
    """What a process of a run is, by its name."""
    if name.startswith("loggend-sink"):
        return "the local sink"
    if name.startswith(("loggend-p", "loggend-w")):
        return "the generator"
    if name == "loggend-web":
        return "the web process"
    return "the supervisor" if name == "loggend-run" else name


class ProcessCpu:
    def __init__(self, root: int) -> None:
        self.root = root
        self.last: dict[int, tuple[float, float]] = {}       # pid -> (CPU seconds, when)

    def look(self) -> dict[str, float]:
        """Percent of one CPU each named process used since the last look (a name's processes added up)."""
        try:
            parent = psutil.Process(self.root)
            procs = [parent, *parent.children(recursive=True)]
        except psutil.Error:
            return {}
        now = time.monotonic()
        seen: dict[int, tuple[float, float]] = {}
        out: dict[str, float] = {}
        for p in procs:
            try:
                times, name = p.cpu_times(), p.name()
            except psutil.Error:
                continue
            cpu = times.user + times.system
            seen[p.pid] = (cpu, now)
            if p.pid in self.last and now > self.last[p.pid][1]:
                before, then = self.last[p.pid]
                out[name] = out.get(name, 0.0) + round(100.0 * (cpu - before) / (now - then), 1)
        self.last = seen
        return out


def short_of_cpu(samples: list[dict[str, float]]) -> list[str]:
    """The processes that used ``SHORT_PERCENT`` or more of a CPU on average over ``samples``."""
    names = sorted({n for s in samples for n in s})
    lines = []
    for name in names:
        seen = [s[name] for s in samples if name in s]
        mean = sum(seen) / len(seen) if seen else 0.0
        if mean >= SHORT_PERCENT:
            lines.append(f"{name} used {mean:.0f} % of a CPU over the steady seconds: {role(name)} was short of CPU")
    return lines
