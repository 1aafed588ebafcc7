"""The worker-count table of ``make bench``: the whole supervisor at one total rate, 1 to 40 workers.

Each shape is (workers, worker_processes): 0 processes is the default (one per CPU, at most one
per worker), and the last row runs 40 workers in 40 processes, one each, for comparison.

For each (rate, workers) it runs the real ``loggend run`` (dashboard off) into the yardstick's C
counting sink on loopback (or loggend's own sink process when the yardstick is missing), reads
the run's live lines as they come, and at each one samples the CPU time of the supervisor and
all its children from ``/proc``. Over the steady part (from the second live line after every
worker sends to the last full one) it reports:

* the sender's CPU as % of one core and in microseconds per event sent;
* the reached rate (mean of the per-second figures) and the largest per-second deviation from
  the configured rate;
* what the sink received of what was sent (loss would make the CPU figure flattering).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

RATES = (200_000, 1_000_000)
SHAPES = ((1, 0), (2, 0), (8, 0), (40, 0), (40, 40))     # (workers, worker_processes; 0 = the default)
WARM_LINES = 2               # live lines skipped after every worker sends (the first, partial, second)
LIVE = re.compile(r"^\[\s*([\d.]+)s\]\s+([\d,]+) ev/s\s+(?:target\s+\S+\s+)?sent\s+([\d,]+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class WorkerFigure:
    rate: int
    workers: int
    processes: int
    cpu_seconds: float
    seconds: float
    events: int
    per_second: list[float]
    sent_total: int
    received_total: int

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_seconds / self.seconds if self.seconds else 0.0

    @property
    def us_per_event(self) -> float:
        return 1e6 * self.cpu_seconds / self.events if self.events else 0.0

    @property
    def reached(self) -> float:
        return sum(self.per_second) / len(self.per_second) if self.per_second else 0.0

    @property
    def worst_deviation(self) -> float:
        """Largest per-second distance from the configured rate, as a fraction of it."""
        return max((abs(r - self.rate) / self.rate for r in self.per_second), default=0.0)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and every descendant alive now."""
    total = 0.0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
            with open(f"/proc/{p}/task/{p}/children") as f:
                stack.extend(int(c) for c in f.read().split())
        except (OSError, ValueError, IndexError):
            continue
    return total


def resolved_processes(workers: int, processes: int) -> int:
    """The worker processes a run of this shape has (0: the default, one per usable CPU)."""
    return min(workers, processes or len(os.sched_getaffinity(0)))


def measure_workers(rate: int, workers: int, processes: int, port: int, seconds: float,
                    sink: subprocess.Popen[str]) -> WorkerFigure:
    """One ``loggend run`` at ``rate`` with ``workers`` in ``processes`` (0: the default) into
    ``sink``, a counting receiver that has printed READY and prints ``RESULT recv=N`` when it ends."""
    with tempfile.TemporaryDirectory(prefix="loggend-bench-") as tmp:
        ready, summary = Path(tmp) / "ready.json", Path(tmp) / "summary.json"
        run = subprocess.Popen(
            [sys.executable, "-m", "loggend", "run", "--config", "/dev/null", "--target", f"127.0.0.1:{port}",
             "--workers", str(workers), "--worker-processes", str(processes), "--rate", str(rate),
             "--duration", f"{seconds + 4:g}s",
             "--dashboard", "off", "--live-interval", "1", "--control-socket", "off",   # a pipe gets a line per 10 s
             "--ready-file", str(ready), "--summary-json", str(summary)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert run.stdout is not None
        samples: list[tuple[float, int, float]] = []             # (eps of the line, sent, tree CPU)
        for line in run.stdout:
            m = LIVE.match(line)
            if not m:
                continue
            cpu = tree_cpu_seconds(run.pid)
            if ready.exists():
                samples.append((float(m.group(2).replace(",", "")), int(m.group(3).replace(",", "")), cpu))
        run.wait()
        try:
            sent_total = int(json.loads(summary.read_text())["sent"])
        except (OSError, ValueError, KeyError):
            sent_total = 0
    sink.send_signal(signal.SIGTERM)                             # it would wait for its idle timeout
    out, _ = sink.communicate(timeout=30)
    received = int(dict(kv.split("=", 1) for kv in (out.split("RESULT", 1) + [""])[1].split()).get("recv", 0))
    steady = samples[WARM_LINES:-1]
    shape = rate, workers, resolved_processes(workers, processes)
    if len(steady) < 2:
        return WorkerFigure(*shape, 0.0, 0.0, 0, [], sent_total, received)
    (_, sent0, cpu0), (_, sent1, cpu1) = steady[0], steady[-1]
    return WorkerFigure(*shape, cpu1 - cpu0, float(len(steady) - 1), sent1 - sent0,
                        [eps for eps, _, _ in steady[1:]], sent_total, received)


def print_worker_table(figures: dict[tuple[int, int, int], list[WorkerFigure]]) -> None:
    """One row per (rate, workers, processes as asked), the median round; the ratio is to 2 workers."""
    print()
    print("| total rate | workers | processes | sender CPU % | CPU us/event | x of 2 workers | reached ev/s "
          "| worst second | delivered |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (rate, workers, _), figs in sorted(figures.items()):
        fig = sorted(figs, key=lambda f: f.us_per_event)[len(figs) // 2]          # the median round
        two = figures.get((rate, 2, 0))
        base = sorted(two, key=lambda f: f.us_per_event)[len(two) // 2].us_per_event if two else 0.0
        ratio = f"{fig.us_per_event / base:.2f}x" if base else "-"
        delivered = 100.0 * fig.received_total / fig.sent_total if fig.sent_total else 0.0
        print(f"| {rate:,} | {workers} | {fig.processes} | {fig.cpu_percent:.0f} | {fig.us_per_event:.2f} | {ratio} "
              f"| {fig.reached:,.0f} | {100 * fig.worst_deviation:.2f} % | {delivered:.1f} % |")
