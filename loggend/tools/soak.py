"""The soak test: a long run into the local sink, watched for what grows.

``loggend soak`` (``make soak``: 1 hour, 40 workers, 200k ev/s) starts ``loggend run --local-sink``
and every ``--interval`` samples the whole process tree of the run from outside: memory (the sum of
PSS, so shared pages count once), open file descriptors, threads, processes, and the counts sent
and received (the run's ``/api/metrics``). After a warm-up it fits a least-squares line to each
series and writes ``soak.json`` (every sample, every slope) and prints one verdict per check:

* memory grows less than ``--max-growth`` (default 1 MiB) per hour. Growth is judged on the private
  memory of the run's processes (USS: pages no other process maps), not on PSS: a process's share
  of the shared libraries moves with whatever else runs Python on the machine, which a leak
  detector must not see;
* descriptors, threads and processes are flat: their fitted line rises by less than one over the
  measured time, and they end where the warm-up left them;
* the counts are exact: the run's summary says received = sent and nothing lost by sequence.

Exit 0 when every check passes, 1 when one fails, 2 for bad input, 130 when interrupted (the report
of what was measured is written all the same).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import psutil

from loggend.control.memory import pss_bytes
from loggend.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_REPORT_FAILED
from loggend.files import write_all_atomic
from loggend.parsers import format_size, plural

HOUR = 3600.0
MIB = 1 << 20
START_TIMEOUT = 60.0
STOP_GRACE = 60.0
WARMUP_SHARE = 0.1            # the first tenth of the run (at least MIN_WARMUP) is left out of the slopes
MIN_WARMUP = 30.0
MIN_FIT_SAMPLES = 3
MIN_MEMORY_SPAN = 600.0        # a growth per hour fitted over less than this is noise (0.1 MiB in 30 s: 12 MiB/h)


@dataclass
class SoakSample:
    t: float                  # seconds since the run was ready
    memory_bytes: int         # PSS of every process of the run (what it uses)
    private_bytes: int        # USS: its private pages (what a leak grows)
    fds: int
    threads: int
    processes: int
    sent: int
    received: int


def tree(root: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(root)
        return [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return []


def private_bytes(pid: int, proc: str = "/proc") -> int:
    """USS of ``pid``: its private pages (Private_Clean + Private_Dirty of smaps_rollup); 0 when gone."""
    total = 0
    try:
        with open(f"{proc}/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Private_"):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return total


def measure(root: int) -> tuple[int, int, int, int, int]:
    """(PSS bytes, USS bytes, open descriptors, threads, processes) of ``root`` and its descendants."""
    memory = private = fds = threads = count = 0
    for p in tree(root):
        try:
            fds += p.num_fds()
            threads += p.num_threads()
        except psutil.Error:
            continue
        memory += pss_bytes(p.pid)
        private += private_bytes(p.pid)
        count += 1
    return memory, private, fds, threads, count


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (t, y), per second; 0 with fewer than two distinct times."""
    n = len(points)
    if n < 2:
        return 0.0
    mt = sum(t for t, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (y - my) for t, y in points) / var if var else 0.0


def checks(samples: list[SoakSample], warmup: float, max_growth: float,
           summary: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One verdict per check, from the samples after ``warmup`` seconds and the run's summary."""
    steady = [s for s in samples if s.t >= warmup]
    out: list[dict[str, Any]] = []
    if len(steady) < MIN_FIT_SAMPLES:
        out.append({"check": "steady samples", "pass": False,
                    "shown": f"{len(steady)} samples after the {warmup:.0f}-s warm-up (need {MIN_FIT_SAMPLES})"})
        span = 0.0
    else:
        span = steady[-1].t - steady[0].t
        grow = slope([(s.t, s.private_bytes) for s in steady]) * HOUR
        pss = slope([(s.t, s.memory_bytes) for s in steady]) * HOUR
        seen = (f"{format_size(steady[0].private_bytes)} -> {format_size(steady[-1].private_bytes)}; "
                f"PSS {format_size(steady[0].memory_bytes)} -> {format_size(steady[-1].memory_bytes)}")
        if span < MIN_MEMORY_SPAN:
            out.append({"check": "memory growth", "per_hour_bytes": None, "pss_per_hour_bytes": None,
                        "goal_bytes": max_growth, "pass": False,
                        "shown": f"too short to measure: {span:.0f} s after the warm-up, a growth per hour needs "
                                 f"{MIN_MEMORY_SPAN / 60:.0f} minutes or more ({seen})"})
        else:
            out.append({"check": "memory growth", "per_hour_bytes": round(grow), "pss_per_hour_bytes": round(pss),
                        "goal_bytes": max_growth, "pass": grow < max_growth,
                        "shown": f"{grow / MIB:+.2f} MiB/h private (goal < {max_growth / MIB:g} MiB/h; {seen})"})
        for name in ("fds", "threads", "processes"):
            series = [(s.t, float(getattr(s, name))) for s in steady]
            rise = slope(series) * span
            first, last = int(series[0][1]), int(series[-1][1])
            low, high = min(int(y) for _, y in series), max(int(y) for _, y in series)
            ok = abs(rise) < 1 and last <= first
            out.append({"check": f"{name} flat", "rise_over_run": round(rise, 3), "first": first, "last": last,
                        "min": low, "max": high, "pass": ok,
                        "shown": f"{first} -> {last} (range {low}-{high}, fitted rise {rise:+.2f})"})
    if summary is None or summary.get("sink") is None:
        out.append({"check": "counts exact", "pass": False, "shown": "no summary from the run"})
    else:
        sent, received, lost = summary["sent"], summary["sink"]["received"], summary.get("lost")
        ok = received == sent and lost == 0 and summary.get("loss_verdict") == "counted"
        out.append({"check": "counts exact", "sent": sent, "received": received, "lost": lost, "pass": ok,
                    "shown": f"sent {sent:,}, received {received:,}, lost {lost if lost is None else f'{lost:,}'}"})
    return out


class Soak:
    def __init__(self, duration: float, rate: str, workers: int, ports: str, interval: float, report_dir: Path,
                 max_growth: float = MIB, warmup: float | None = None, out: TextIO = sys.stdout) -> None:
        self.duration, self.rate, self.workers, self.ports = duration, rate, workers, ports
        self.interval, self.report_dir, self.max_growth, self.out = interval, report_dir, max_growth, out
        self.samples: list[SoakSample] = []
        self.interrupted = False
        self.warmup = max(MIN_WARMUP, duration * WARMUP_SHARE) if warmup is None else warmup

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "loggend", "run", "--config", "/dev/null", "--target", "127.0.0.1",
                "--ports", self.ports, "--workers", str(self.workers), "--rate", self.rate,
                "--duration", f"{self.duration:g}s", "--local-sink", "--dashboard", "127.0.0.1:0",
                "--summary-json", str(self.report_dir / "run-summary.json"),
                "--ready-file", str(self.report_dir / "ready.json")]

    def _interrupt(self, signum: int, frame: object) -> None:
        self.interrupted = True

    def _ready(self, proc: subprocess.Popen[bytes]) -> str | None:
        ready = self.report_dir / "ready.json"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None and not self.interrupted:
            try:
                return str(json.loads(ready.read_text())["dashboard"] or "")
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        return None

    def _counts(self, url: str) -> tuple[int, int]:
        try:
            with urllib.request.urlopen(url + "/api/metrics", timeout=5) as r:
                m = json.loads(r.read())
            return int(m["totals"]["events"]), int((m.get("sink") or {}).get("received", 0))
        except (OSError, ValueError, KeyError, TypeError, urllib.error.URLError):
            last = self.samples[-1] if self.samples else None
            return (last.sent, last.received) if last else (0, 0)

    def _sample(self, pid: int, url: str, began: float) -> None:
        memory, private, fds, threads, processes = measure(pid)
        sent, received = self._counts(url) if url else (0, 0)
        s = SoakSample(round(time.monotonic() - began, 1), memory, private, fds, threads, processes, sent, received)
        self.samples.append(s)
        self.say(f"[{s.t:7.0f}s] memory {format_size(memory)} (private {format_size(private)})  fds {fds}  "
                 f"threads {threads}  processes {processes}  sent {sent:,}  received {received:,}")

    def run(self) -> int:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        (self.report_dir / "ready.json").unlink(missing_ok=True)
        signal.signal(signal.SIGINT, self._interrupt)
        signal.signal(signal.SIGTERM, self._interrupt)
        rate = f"{float(self.rate):,.0f}" if self.rate.replace(".", "", 1).isdigit() else self.rate
        self.say(f"soak: {self.duration:g} s, {plural(self.workers, 'worker')}, {rate} ev/s into the local sink, "
                 f"a sample every {self.interval:g} s; slopes after a {self.warmup:.0f}-s warm-up")
        with open(self.report_dir / "loggend.log", "w", encoding="utf-8") as log:
            proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            url = self._ready(proc)
            began = time.monotonic()
            next_at = began
            while url is not None and proc.poll() is None and not self.interrupted:
                self._sample(proc.pid, url, began)
                next_at += self.interval
                while time.monotonic() < next_at and proc.poll() is None and not self.interrupted:
                    time.sleep(min(0.2, max(0.0, next_at - time.monotonic())))
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=self.duration + STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        return self._report(code)

    def _report(self, code: int) -> int:
        try:
            summary = json.loads((self.report_dir / "run-summary.json").read_text())
        except (OSError, ValueError):
            summary = None
        results = checks(self.samples, self.warmup, self.max_growth, summary)
        ok = all(c["pass"] for c in results) and code == 0 and not self.interrupted
        for c in results:
            self.say(f"{'PASS' if c['pass'] else 'FAIL'}  {c['check']}: {c['shown']}")
        report = {"pass": ok, "interrupted": self.interrupted, "exit_status_of_run": code,
                  "config": {"duration": self.duration, "rate": self.rate, "workers": self.workers,
                             "ports": self.ports, "interval": self.interval, "warmup": self.warmup,
                             "command": " ".join(self.command()[1:])},
                  "checks": results, "samples": [asdict(s) for s in self.samples]}
        try:
            write_all_atomic({str(self.report_dir / "soak.json"): json.dumps(report, indent=1)})
        except OSError as err:
            self.say(f"soak: the report could not be written in {self.report_dir}: {err.strerror or err}")
            return EXIT_REPORT_FAILED
        self.say(f"{'PASS' if ok else 'FAIL'}: report in {self.report_dir}/soak.json")
        if self.interrupted:
            return EXIT_INTERRUPTED
        return 0 if ok else EXIT_FAILURE
