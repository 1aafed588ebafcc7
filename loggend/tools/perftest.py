"""The performance test: generator and sink at the target rate, live progress, a report, PASS / FAIL.

``loggend perftest`` (what ``scripts/test.sh`` and ``make test-performance`` run) applies the
kernel tuning when allowed, starts ``loggend run --local-sink`` with its web process on a free
port, reads ``/api/metrics`` once per second for the live line and the time series, stops
cleanly at the end or on Ctrl-C, restores the tuning and writes ``report.json`` and
``report.html`` (charts drawn as inline SVG). The exit status is 0 only when every target passes.

The report directory is checked before the run (one line and exit 2 when it cannot be written);
at the end the verdict lines are printed first and the report is written atomically, so a full
disk costs the files, never the verdict, and exits with ``EXIT_REPORT_FAILED`` (not the status of
a failed target). The loss is the sink's count by sequence, and "unknown" when the sink could
not count everything (``loggend.report.totals``): a FAIL then, never a 0.

On a box with ``SPLIT_MIN_CPUS`` or more, the local sink gets CPUs of its own (``--sink-cpus``)
and the workers the others, so the sink does not steal the generator's time nor the generator
the sink's. On a smaller one they share, and when the sink falls behind the report names it as
the bottleneck, so a FAIL says what failed: the generator or the sink that measures it.
"""

from __future__ import annotations

import html
import json
import os
import platform
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from loggend import __version__
from loggend.control.tuning import Tuner, TuningError
from loggend.engine.procsetup import die_with_this_process
from loggend.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_REPORT_FAILED
from loggend.files import check_writable_dir, write_all_atomic
from loggend.parsers import format_ports, format_size
from loggend.report.charts import svg_chart
from loggend.tools.detection_report import by_load, console_lines, html_section
from loggend.tools.proccpu import ProcessCpu, short_of_cpu

SAMPLE_SECONDS = 1.0
WARMUP_SAMPLES = 3             # first seconds left out of the sustained figures (workers starting)
MIN_STEADY_SAMPLES = 3         # fewer steady seconds than this measure no sustained rate
START_TIMEOUT = 60.0
STOP_GRACE = 30.0              # after the duration, how long the run may take to finish and report
EXIT_TARGET_FAILED = EXIT_FAILURE
GIB = 1 << 30
EPS_TOLERANCE = 0.001          # the rate is measured between 1-s frames read with ms jitter: 0.1 % slack
SPLIT_MIN_CPUS = 4             # from this many usable CPUs the sink gets its own
SINK_CPU_SHARE = 0.5           # ... this share of them (the sink's Python costs more per event than sending)


@dataclass(frozen=True)
class Targets:
    events_per_second: float = 4_000_000
    cpu_percent: float = 75.0
    memory_bytes: int = 12 * GIB
    loss_percent: float = 0.5


@dataclass
class Sample:
    t: float                   # seconds since the start
    sent_eps: float
    received_eps: float
    sent: int
    received: int
    lost: int
    cpu_percent: float
    memory_bytes: int          # PSS of the supervisor, workers, sinks' parent
    system_memory_bytes: int
    processes: dict[str, float] = field(default_factory=dict)    # % of a CPU each process of the run used

    @property
    def in_flight(self) -> int:
        """Sent, not yet received nor counted lost: on its way (or in a queue) when the counters were read."""
        return max(0, self.sent - self.received - self.lost)


def manifest(transport: str, tuned: bool, sysctls: dict[str, str]) -> dict[str, Any]:
    cpu_model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu_model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"version": __version__, "python": platform.python_version(), "kernel": platform.release(),
            "machine": platform.machine(), "cpu_model": cpu_model, "cpus": os.cpu_count(),
            "usable_cpus": len(os.sched_getaffinity(0)), "sysctls": sysctls, "tuning_applied": tuned,
            "transport": transport}


def split_cpus(usable: list[int]) -> tuple[list[int], list[int]] | None:
    """(workers' CPUs, the sink's CPUs) when there are enough to give the sink its own; else None."""
    if len(usable) < SPLIT_MIN_CPUS:
        return None
    sink = max(1, round(len(usable) * SINK_CPU_SHARE))
    return usable[:-sink], usable[-sink:]


def sink_behind(sink: dict[str, Any] | None) -> list[str]:
    """What says the sink could not keep up: its kernel drops, what it left unread, processes lost."""
    if not sink:
        return []
    why = []
    if sink.get("kernel_drops"):
        why.append(f"kernel drops {sink['kernel_drops']:,}: its receive queues were full")
    why.extend(r for r in sink.get("unknown_because", []) if r.startswith("sink behind"))
    return why


def loss_verdict(samples: list[Sample], targets: Targets, summary: dict[str, Any] | None) -> dict[str, Any]:
    """The loss by sequence (the run summary's, once the sink drained); unknown when it cannot be known."""
    goal = f"< {targets.loss_percent:g} %"
    name = "loss (by sequence, at the sink)"
    if summary and summary.get("sink") is not None:
        sent, beside = summary["sent"], summary.get("sent_minus_received")
        if summary.get("loss_verdict") == "unknown" or summary.get("lost") is None:
            why = "; ".join(summary.get("loss_unknown_because") or ["the sink could not count everything"])
            return {"target": name, "goal": goal, "measured": None, "shown": f"unknown ({why})", "pass": False}
        lost = summary["lost"]
        loss = 100.0 * lost / sent if sent else 100.0
        return {"target": name, "goal": goal, "measured": round(loss, 6),
                "shown": f"{loss:.4f} % ({lost:,} of {sent:,}; sent - received = {beside:,})",
                "pass": loss < targets.loss_percent}
    last = samples[-1] if samples else None
    return {"target": name, "goal": goal, "measured": None,
            "shown": "unknown (no summary from the run)" + (f"; sink said lost {last.lost:,}" if last else ""),
            "pass": False}


def delivered(summary: dict[str, Any] | None, duration: float) -> float | None:
    """Events/s the sink received over the run's duration (a timed run sends exactly rate x duration, so
    one that delivered all of it measures exactly its rate); None without a sink's count."""
    if not summary or not summary.get("sink") or not duration:
        return None
    return float(own_received(summary)) / duration


def own_received(summary: dict[str, Any]) -> int:
    """What the sink received of the run's own streams (others' messages to its ports left out)."""
    beside = summary.get("sent_minus_received")
    return int(summary["sent"] - beside) if isinstance(beside, int) else int(summary["sink"]["received"])


def verdicts(samples: list[Sample], targets: Targets, summary: dict[str, Any] | None = None,
             duration: float = 0.0) -> list[dict[str, Any]]:
    """PASS / FAIL per target; ``summary``: the run's summary document once the sink drained, whose
    sequence-based loss is the loss and whose received count over ``duration`` (the run's, when it ran
    all of it; 0 otherwise) is the rate. The rate between 1-s samples of the dashboard (read with
    jitter) is shown beside it, and is the rate only without a summary."""
    steady = samples[WARMUP_SAMPLES:-1]                 # without start-up and the last, partial second
    seconds = max((s.t for s in steady), default=0) - min((s.t for s in steady), default=0)
    received_in_steady = steady[-1].received - steady[0].received if len(steady) > 1 else 0
    sampled = received_in_steady / seconds if seconds else 0.0
    whole = delivered(summary, duration)
    cpu = sum(s.cpu_percent for s in steady) / len(steady) if steady else 0.0
    memory = max((s.memory_bytes for s in samples), default=0)
    short = len(steady) < MIN_STEADY_SAMPLES
    if whole is not None and summary is not None:
        between = "" if short else f"; {sampled:,.0f} between samples after the first {WARMUP_SAMPLES} s"
        received = own_received(summary)
        eps, shown = whole, f"{whole:,.0f} ({received:,} received in the run's {duration:g} s{between})"
    else:
        eps, shown = sampled, f"{sampled:,.0f} (between dashboard samples)"
    short = short and whole is None
    return [
        {"target": "events per second (received, sustained)",
         "goal": f">= {targets.events_per_second:,.0f} (within {EPS_TOLERANCE:.1%} for measurement)",
         "measured": None if short else round(eps, 1),
         "shown": f"too short to measure ({len(steady)} steady seconds; run "
                  f"{MIN_STEADY_SAMPLES + WARMUP_SAMPLES + 1} s or more)" if short else shown,
         "pass": not short and eps >= targets.events_per_second * (1 - EPS_TOLERANCE)},
        {"target": "CPU (system, mean)", "goal": f"<= {targets.cpu_percent:g} %",
         "measured": round(cpu, 2) if steady else None,
         "shown": f"{cpu:.1f} %" if steady else "not measured (no steady second sampled)",
         "pass": bool(steady) and cpu <= targets.cpu_percent},
        {"target": "memory (loggen PSS, peak)", "goal": f"<= {format_size(targets.memory_bytes)}",
         "measured": memory if samples else None, "shown": format_size(memory) if samples else "not measured",
         "pass": bool(samples) and memory <= targets.memory_bytes},
        loss_verdict(samples, targets, summary),
    ]


SINK_ROWS = (            # what the report's sink table says, in words, in this order (a figure of 0 is left out
    ("received", "received", True),                        # unless it is one of the first few)
    ("lost", "lost (gaps in the sequence numbers)", True),
    ("loss_percent", "loss %", True),
    ("kernel_drops", "dropped by the kernel (full receive queues)", True),
    ("late", "arrived late (out of order, counted once)", False),
    ("duplicates", "arrived twice", False),
    ("unsequenced", "without a sequence number (not counted by sequence)", False),
    ("outliers", "numbers set aside as implausible", False),
    ("foreign", "from streams this run did not send", False),
    ("unread", "left unread at the end", False),
    ("abandoned", "in the queues of sink processes that were killed", False),
    ("connections", "connections (TCP, TLS)", False),
    ("torn", "messages torn by a closed connection", False),
    ("tls_failures", "failed TLS handshakes", False),
    ("processes", "sink processes", True),
    ("streams", "streams", True),
)


def sink_table(sink: dict[str, Any] | None) -> str:
    """The local sink's figures as a table in words; the verdict of its count and why it is unknown."""
    if not sink:
        return "<p>no local sink reported</p>"
    rows = []
    for key, words, always in SINK_ROWS:
        value = sink.get(key)
        if isinstance(value, (int, float)) and (always or value):
            shown = f"{value:.4f}" if isinstance(value, float) else f"{value:,}"
            rows.append(f"<tr><td>{html.escape(words)}</td><td>{shown}</td></tr>")
    why = sink.get("unknown_because") or ([] if sink.get("verdict", "counted") == "counted"
                                          else ["the sink could not count everything"])
    verdict = "unknown: " + "; ".join(why) if why else "counted exactly"
    rows.append(f"<tr><td>the loss count</td><td>{html.escape(verdict)}</td></tr>")
    return f"<table>{''.join(rows)}</table>"


# --- charts -------------------------------------------------------------------------------------------

def html_report(report: dict[str, Any]) -> str:
    samples = report["samples"]
    t = [s["t"] for s in samples]
    rows = "".join(
        f"<tr><td>{html.escape(v['target'])}</td><td>{html.escape(v['goal'])}</td><td>{html.escape(v['shown'])}</td>"
        f"<td class={'pass' if v['pass'] else 'fail'}>{'PASS' if v['pass'] else 'FAIL'}</td></tr>"
        for v in report["verdicts"])
    def count(value: object) -> str:
        return f"{value:,}" if isinstance(value, int) else "unknown" if value is None else html.escape(str(value))
    workers = "".join(
        f"<tr><td>{w['index']}</td><td>{w.get('port', '')}</td><td>{count(w['sent'])}</td>"
        f"<td>{count(w.get('received', 0))}</td><td>{count(w.get('lost', 0))}</td><td>{w['restarts']}</td>"
        f"<td>{sum(w['errors'].values()):,}</td></tr>"
        for w in report["workers"])
    charts = [
        svg_chart("events per second", {"sent": list(zip(t, [s["sent_eps"] for s in samples])),
                                        "received": list(zip(t, [s["received_eps"] for s in samples]))},
                  goal=report["targets"]["events_per_second"], y_label="events/s", x_label="time into the run",
                  x_time=True),
        svg_chart("CPU (system) %", {"cpu": list(zip(t, [s["cpu_percent"] for s in samples]))},
                  goal=report["targets"]["cpu_percent"], y_label="%", x_label="time into the run", x_time=True,
                  y_max=100.0),
        svg_chart("memory (loggen PSS) MiB",
                  {"memory": list(zip(t, [s["memory_bytes"] / (1 << 20) for s in samples]))}, y_label="MiB",
                  x_label="time into the run", x_time=True),
        svg_chart("lost by sequence (cumulative)", {"lost": list(zip(t, [float(s["lost"]) for s in samples]))},
                  y_label="events", x_label="time into the run", x_time=True),
    ]
    manifest_rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(v if isinstance(v, str) else json.dumps(v))}</td></tr>"
        for k, v in report["manifest"].items())
    verdict = "PASS" if report["pass"] else "FAIL"
    cpus = report.get("cpus") or {}
    bottleneck = "".join(f"<p><b>{html.escape(line)}</b></p>" for line in report.get("notes", []))
    if cpus.get("sink"):
        bottleneck += (f"<p>workers on CPUs {html.escape(cpus['workers'])}, the local sink on CPUs "
                       f"{html.escape(cpus['sink'])}</p>")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>loggen performance test: {verdict}</title>
<style>body{{font:14px sans-serif;margin:2rem;max-width:960px}}table{{border-collapse:collapse;margin:1rem 0}}
td,th{{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}}.pass{{color:#080;font-weight:bold}}
.fail{{color:#c00;font-weight:bold}}pre{{white-space:pre-wrap;overflow-wrap:anywhere}}</style></head><body>
<h1>loggen performance test: <span class={verdict.lower()}>{verdict}</span></h1>
<p>{html.escape(report['started_iso'])}, {report['duration_seconds']:.0f} s at {report['config']['rate']} ev/s,
{report['config']['workers']} workers{' (interrupted)' if report['interrupted'] else ''}</p>
<table><tr><th>target</th><th>goal</th><th>measured</th><th></th></tr>{rows}</table>
{bottleneck}
{''.join(charts)}
{html_section(report.get("detection"))}
<h2>workers</h2><table><tr><th>worker</th><th>port</th><th>sent</th><th>received</th><th>lost</th><th>restarts</th>
<th>errors</th></tr>{workers}</table>
<h2>sink</h2>{sink_table(report['sink'])}
<h2>manifest</h2><table>{manifest_rows}</table>
<h2>config</h2><pre>{html.escape(json.dumps(report['config'], indent=1))}</pre>
</body></html>"""


# --- the run ---------------------------------------------------------------------------------------------

class PerfTest:
    def __init__(self, duration: float, rate: str, workers: int, ports: str, report_dir: Path,
                 targets: Targets, optimize: bool = True, sink_processes: int = 0, out: TextIO = sys.stdout,
                 protocol: str = "udp", framing: str = "", fmt: str = "rfc3164",
                 usable_cpus: list[int] | None = None,
                 write: Callable[[dict[str, str]], None] = write_all_atomic,
                 scenarios: tuple[str, ...] = (), detect_args: tuple[str, ...] = ()) -> None:
        """``usable_cpus``: the CPUs to split between workers and sink (default: this process's);
        ``write({path: text})``: how the report files are written (all or none); ``scenarios`` (as
        ``--scenario`` takes them) are injected during the run, ``detect_args`` (``--detect``...) passed to it."""
        self.scenarios, self.detect_args = scenarios, detect_args
        self.duration, self.rate, self.workers, self.ports = duration, rate, workers, ports
        self.protocol, self.framing, self.fmt = protocol, framing, fmt
        self.report_dir, self.targets, self.optimize = report_dir, targets, optimize
        self.sink_processes, self.out = sink_processes, out
        self.interrupted = False
        self.samples: list[Sample] = []
        self.last: dict[str, Any] = {}
        self.sysctls: dict[str, str] = {}
        self.first_frame = 0.0
        self.cpu: ProcessCpu | None = None
        self.write = write
        self.usable = sorted(os.sched_getaffinity(0)) if usable_cpus is None else usable_cpus
        self.split = split_cpus(self.usable)

    def rate_short(self) -> str:
        """The run's rate cannot meet the events-per-second target: said at the start and in the report."""
        rate = float(self.rate)
        if rate and rate < self.targets.events_per_second * (1 - EPS_TOLERANCE):
            return (f"--rate {rate:,.0f} ev/s is below --target-eps {self.targets.events_per_second:,.0f}: the "
                    "events-per-second target cannot pass (give --target-eps the rate you mean to hold)")
        return ""

    def _interrupt(self, signum: int, frame: object) -> None:
        self.interrupted = True

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def command(self) -> list[str]:
        sink_processes, cpus = self.sink_processes, []
        if self.split is not None:
            workers, sink = self.split
            cpus = ["--cpus", format_ports(tuple(workers)), "--sink-cpus", format_ports(tuple(sink))]
            sink_processes = sink_processes or len(sink)
        return [sys.executable, "-m", "loggend", "run", "--config", "/dev/null", "--target", "127.0.0.1",
                "--ports", self.ports, "--workers", str(self.workers), "--rate", self.rate, *cpus,
                "--duration", f"{self.duration:g}s", "--local-sink", "--sink-processes", str(sink_processes),
                "--dashboard", "127.0.0.1:0", "--dashboard-interval", f"{SAMPLE_SECONDS:g}s",
                "--summary-json", str(self.report_dir / "run-summary.json"),
                "--ready-file", str(self.report_dir / "ready.json"),
                "--protocol", self.protocol, "--format", self.fmt,
                *(["--framing", self.framing] if self.framing else []),
                *(arg for text in self.scenarios for arg in ("--scenario", text)), *self.detect_args]

    def run(self) -> int:
        check_writable_dir("--report-dir", self.report_dir)
        if self.split is not None:
            self.say(f"perftest: workers on CPUs {format_ports(tuple(self.split[0]))}, the local sink on CPUs "
                     f"{format_ports(tuple(self.split[1]))}")
        else:
            self.say(f"perftest: {len(self.usable)} CPUs: the workers and the local sink share them (the sink gets "
                     f"its own from {SPLIT_MIN_CPUS}); if it falls behind, it is the bottleneck")
        if (why := self.rate_short()):
            self.say(f"perftest: {why}")
        signal.signal(signal.SIGINT, self._interrupt)
        signal.signal(signal.SIGTERM, self._interrupt)
        tuner, tuned = Tuner(state=str(self.report_dir / "tuning-state.json")), False
        if self.optimize:
            try:
                changed = tuner.apply()
                tuned = True
                self.say(f"perftest: kernel tuning applied ({len(changed)} changed; restored at the end)")
            except TuningError as err:
                self.say(f"perftest: kernel tuning not applied: {err}")
        started = time.time()
        self.sysctls = {key: current for key, current, _, _ in Tuner().show()}     # as they are during the run
        log_path = self.report_dir / "loggend.log"
        try:
            with open(log_path, "w", encoding="utf-8") as log:
                code = self._drive(log, log_path)
        finally:
            if tuned:
                try:
                    tuner.restore()
                    self.say("perftest: kernel tuning restored")
                except TuningError as err:
                    self.say(f"perftest: could not restore the tuning: {err}; run `loggend tune restore "
                             f"--state {tuner.state}`")
        return self._report(started, code, tuned)

    def _drive(self, log: TextIO, log_path: Path) -> int:
        (self.report_dir / "ready.json").unlink(missing_ok=True)      # a report dir may be reused
        proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=die_with_this_process())
        url = self._dashboard(proc)
        self.cpu = ProcessCpu(proc.pid)
        self.cpu.look()
        begin = time.monotonic()
        deadline = begin + self.duration + STOP_GRACE
        next_at = begin
        while proc.poll() is None:
            if self.interrupted or time.monotonic() > deadline:
                proc.send_signal(signal.SIGTERM)
                break
            next_at += SAMPLE_SECONDS
            time.sleep(max(0.0, next_at - time.monotonic()))
            if url:
                self._sample(url)
        try:
            code = proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
        if code and not self.interrupted:
            lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            self.say(f"perftest: loggend run exited with status {code}: {lines[-1] if lines else 'no output'}")
        return code

    def _dashboard(self, proc: subprocess.Popen[bytes]) -> str:
        """The dashboard's address, from the ready file the run writes once every worker sends."""
        ready = self.report_dir / "ready.json"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None and not self.interrupted:
            try:
                url: str = json.loads(ready.read_text())["dashboard"] or ""
                return url
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        return ""

    def _sample(self, url: str) -> None:
        """One /api/metrics document; its own timestamp (when the counters were read) places it in time."""
        try:
            with urllib.request.urlopen(url + "/api/metrics", timeout=2) as r:
                m = json.loads(r.read())
        except (OSError, ValueError, urllib.error.URLError):
            return
        if m["time"] == self.last.get("time"):
            return                                 # the same frame as last time: nothing new to record
        self.last = m
        if not self.first_frame:                   # the baseline: its 1 s rates span the start-up (a spike)
            self.first_frame = m["time"]
            if self.cpu:
                self.cpu.look()
            return
        t = m["time"] - self.first_frame
        sink = m.get("sink") or {}
        s = Sample(t=round(t, 2), sent_eps=m["events_per_second"]["1s"],
                   received_eps=sink.get("events_per_second", 0.0), sent=m["totals"]["events"],
                   received=sink.get("received", 0), lost=sink.get("lost", 0),
                   cpu_percent=m["system"]["cpu_percent"], memory_bytes=m["system"]["loggen_memory_bytes"],
                   system_memory_bytes=m["system"]["memory_used_bytes"],
                   processes=self.cpu.look() if self.cpu else {})
        self.samples.append(s)
        # loss is the sink's count by sequence only; what is on its way is in flight, not lost
        loss = 100.0 * s.lost / s.sent if s.sent else 0.0
        self.say(f"[{t:6.0f}s] sent {s.sent_eps:12,.0f} ev/s  received {s.received_eps:12,.0f} ev/s  "
                 f"lost {s.lost:,} ({loss:.3f} %)  in flight {s.in_flight:,}  CPU {s.cpu_percent:5.1f} %  "
                 f"memory {format_size(s.memory_bytes)}")

    def _report(self, started: float, code: int, tuned: bool) -> int:
        """The verdict lines first, then the report files (atomically): a full disk costs the files only."""
        summary = self._run_summary()             # after the run drained; the samples stop a little earlier
        final = (summary["sent"], summary["sink"]["received"]) if summary and summary.get("sink") else None
        whole = self.duration if code == 0 and not self.interrupted else 0.0      # it ran all of its duration
        results = verdicts(self.samples, self.targets, summary, whole)
        ok = all(v["pass"] for v in results) and code == 0 and not self.interrupted
        notes = self._notes(summary, ok)
        if not ok:
            notes += self._why_failed(results)
        report = {
            "pass": ok, "interrupted": self.interrupted, "exit_status_of_run": code,
            "started": started, "started_iso": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
            "duration_seconds": whole or (self.samples[-1].t if self.samples else 0.0),
            "final": {"sent": final[0], "received": final[1]} if final else None,
            "config": {"rate": self.rate, "workers": self.workers, "ports": self.ports, "duration": self.duration,
                       "protocol": self.protocol, "framing": self.framing or None, "format": self.fmt,
                       "command": " ".join(self.command()[1:])},
            "cpus": {"usable": format_ports(tuple(self.usable)),
                     "workers": format_ports(tuple(self.split[0])) if self.split else format_ports(tuple(self.usable)),
                     "sink": format_ports(tuple(self.split[1])) if self.split else None},
            "targets": asdict(self.targets),
            "manifest": manifest(self.last.get("transport") or "", tuned, self.sysctls),
            "verdicts": results,
            "notes": notes,
            "samples": [asdict(s) for s in self.samples],
            "workers": (summary or {}).get("workers", []),
            "sink": (summary or {}).get("sink"),
            "loss_verdict": (summary or {}).get("loss_verdict"),
            "errors": (summary or {}).get("errors", {}),
            "restarts": (summary or {}).get("restarts", 0),
            "pushback": {k: (summary or {}).get(k, 0) for k in ("blocked_seconds", "reconnects", "possibly_lost")},
            "detection": by_load([("the run", float((summary or {}).get("rate") or 0.0),
                                   [s["id"] for s in (summary or {}).get("scenarios", [])])], summary or {}),
        }
        for v in results:
            self.say(f"{'PASS' if v['pass'] else 'FAIL'}  {v['target']}: {v['shown']} (goal {v['goal']})")
        for line in notes:
            self.say(f"perftest: {line}")
        for line in console_lines(report["detection"]):
            self.say(line)
        if self.protocol != "udp":
            p = report["pushback"]
            self.say(f"push-back: blocked {p['blocked_seconds']:.2f} s waiting for the sink, reconnects "
                     f"{p['reconnects']}, possibly lost {p['possibly_lost']}")
        try:
            self.write({str(self.report_dir / "report.json"): json.dumps(report, indent=1),
                        str(self.report_dir / "report.html"): html_report(report)})
        except OSError as err:
            self.say(f"{'PASS' if ok else 'FAIL'}: but the report could not be written in {self.report_dir}: "
                     f"{err.strerror or err}")
            return EXIT_INTERRUPTED if self.interrupted else EXIT_REPORT_FAILED
        self.say(f"{'PASS' if ok else 'FAIL'}{' (interrupted)' if self.interrupted else ''}: report in "
                 f"{self.report_dir}/report.html and report.json")
        if self.interrupted:
            return EXIT_INTERRUPTED
        return 0 if ok else EXIT_TARGET_FAILED

    def _why_failed(self, results: list[dict[str, Any]]) -> list[str]:
        """What a failed target comes from: a rate below the target, a process short of CPU, or a box
        busy with other work."""
        notes = [why] if (why := self.rate_short()) and not results[0]["pass"] else []
        steady = [s.processes for s in self.samples[WARMUP_SAMPLES:-1]]
        short = short_of_cpu(steady)
        notes += short
        cpu = next((v for v in results if v["target"].startswith("CPU")), None)
        if cpu is not None and not cpu["pass"] and not short and steady:
            ours = sum(sum(p.values()) for p in steady) / len(steady) / max(1, len(self.usable))
            rest = (f", the rest of the {cpu['shown']} was other work on the box" if ours < cpu["measured"]
                    else "; the box did little else")
            notes.append(f"no process of the run was short of CPU: loggen's processes used {ours:.0f} % of the "
                         f"{len(self.usable)} CPUs on average{rest}")
        return notes

    def _notes(self, summary: dict[str, Any] | None, ok: bool) -> list[str]:
        """What a reader of a FAIL must know: the local sink as the bottleneck."""
        behind = sink_behind((summary or {}).get("sink"))
        if not behind:
            return []
        why = "; ".join(behind)
        if self.split is None:
            return [f"the local sink is the bottleneck: it could not keep up ({why}); it shares the "
                    f"{len(self.usable)} CPUs with the workers (it gets its own from {SPLIT_MIN_CPUS}), so the "
                    "figures measure this box's sink, not what the generator sent"]
        return [f"the local sink is the bottleneck: it could not keep up on its own CPUs "
                f"{format_ports(tuple(self.split[1]))} ({why}); the generator's figures stand, the loss is the sink's"]

    def _run_summary(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.report_dir / "run-summary.json").read_text())
        except (OSError, ValueError):
            return None
        return data
