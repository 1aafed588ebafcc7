"""What a run says of itself: the board the web process shows, the live line and STATUS=, the
``loggend ctl status`` document, and the summary at the end (stdout and ``--summary-json``).

It reads the shared counters and the plan; the supervisor owns what is decided from them (stop
on an overrun, fail a run that sent nothing). The config is passed in on every call: the
supervisor's is the only one, and a reload replaces it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from loggend import __version__
from loggend.config import Config
from loggend.control.children import WORKER, ChildSet
from loggend.control.loop import REPORT_SECONDS
from loggend.control.memory import MemoryWatch
from loggend.control.ratecontrol import RateControl, describe
from loggend.control.refusals import RefusalWatch
from loggend.control.runfiles import RunFiles
from loggend.control.scenariorun import ScenarioRun
from loggend.control.shared import SharedRun
from loggend.control.systemd import Notifier
from loggend.control.workers import READY_STATES, Workers
from loggend.engine import counters as C
from loggend.engine.journal import Log
from loggend.fleet import new_run_id
from loggend.parsers import format_size, plural
from loggend.report.console import LiveLine, summary, target_text
from loggend.report.totals import SlotSums

LIVE_TTY_SECONDS = 1.0       # live_interval: auto on a terminal
LIVE_PIPE_SECONDS = 10.0     # live_interval: auto anywhere else (the journal, a pipe, a file); STATUS= stays 1 s


def live_interval(config: Config, out: TextIO) -> float:
    """Seconds between live lines on stdout: the config's, or by what stdout is."""
    if config.live_interval:
        return config.live_interval
    isatty = getattr(out, "isatty", None)
    return LIVE_TTY_SECONDS if isatty is not None and isatty() else LIVE_PIPE_SECONDS


def nothing_sent(sent: int, started: bool, planned: int | None, set_up: int, workers: int, seconds: float) -> str:
    """Why a run that sent nothing failed ("" when it sent something, or nothing was due)."""
    if sent:
        return ""
    if not started:
        return (f"nothing sent: the workers never became ready ({set_up} of {workers} set up after {seconds:.1f} s; "
                "see the lines above)")
    if planned is None or planned > 0:
        due = "" if planned is None else f" of {planned:,} events due"
        return (f"nothing sent{due}: the workers did not start sending within the run's {seconds:.1f} s "
                "(see the lines above)")
    return ""


class RunReport:
    def __init__(self, shared: SharedRun, workers: Workers, children: ChildSet, memory: MemoryWatch,
                 notifier: Notifier, files: RunFiles, out: TextIO, clock_ns: Callable[[], int], log: Log) -> None:
        self.shared, self.workers, self.children, self.memory = shared, workers, children, memory
        self.notifier, self.files, self.out, self.clock_ns = notifier, files, out, clock_ns
        self.live: RateControl | None = None         # set by the supervisor, whose status it answers with
        self.scenarios: ScenarioRun | None = None    # set by the supervisor: the run's attack scenarios
        self.generated_run_id = new_run_id()      # the run's id when the config gives none
        self.reloads = self.web_restarts = 0
        self.live_line = LiveLine(0.0)
        self.live_printed = 0.0                   # when the live line last went to stdout
        self.live_shown = 0                       # live changes the board has shown
        self.refusals = RefusalWatch(log)         # UDP ports where nothing listens

    def run_id(self, config: Config) -> str:
        return config.run_id or self.generated_run_id

    def start(self, started: float) -> None:
        self.live_line = LiveLine(started)

    def status(self, config: Config, now_ns: int) -> dict[str, object]:
        """What ``loggend ctl status`` adds to the plan's state: the run's counts so far."""
        sink, snaps = self.shared.sink_totals(), self.shared.snapshots()
        return {"pid": os.getpid(), "workers": config.workers, "target": config.target,
                "sent": SlotSums.of(snaps).sent, "planned": self.workers.planned(now_ns),
                "worker_pids": [s.pid if s.state in (C.STATE_READY, C.STATE_RUNNING) else 0
                                for s in snaps[:config.workers]],
                "blocked_ns": SlotSums.of(snaps).blocked_ns, "possibly_lost": SlotSums.of(snaps).possibly_lost,
                "sink": None if sink is None else {"received": sink.received, "lost": sink.lost}}

    def publish_board(self, config: Config, stopping: bool) -> None:
        assert self.live is not None
        now_ns = self.clock_ns()
        self.live_shown = self.live.changes
        self.shared.publish(config, run_id=self.run_id(config), version=__version__, reloads=self.reloads,
                            web_restarts=self.web_restarts,
                            memory_bytes=self.memory.current, peak_memory_bytes=self.memory.peak,
                            state="stopping" if stopping else "running",
                            target_rate=self.workers.target_rate(now_ns), paused=self.live.state(now_ns) == "paused",
                            scenarios=self.scenarios.figures() if self.scenarios else None)

    def all_running(self, config: Config) -> bool:
        return all(s.state == C.STATE_RUNNING for s in self.shared.snapshots()[:config.workers])

    def show_live(self, config: Config, now: float) -> None:
        """The live line (on stdout every ``live_interval``) and STATUS= (every tick)."""
        assert self.live is not None
        now_ns = self.clock_ns()
        target = target_text(self.workers.target_rate(now_ns), self.live.state(now_ns))
        line = self.live_line.line(now, self.shared.snapshots(), config.workers, self.shared.sink_totals(), target,
                                   set(self.children.pids(WORKER)))
        # a tick comes every REPORT_SECONDS, give or take the loop's latency: half a tick of slack
        if not config.quiet and now - self.live_printed >= live_interval(config, self.out) - REPORT_SECONDS / 2:
            print(line, file=self.out, flush=True)
            self.live_printed = now
        self.notifier.status(line.strip())

    def measure_memory(self, between: Callable[[], object] = lambda: None) -> str:
        """Add up the PSS of this process and its children: the line that stops the run when that is
        over the limit, else ""."""
        pids = [os.getpid(), *self.children.pids()]
        total = self.memory.measure(pids, between=between)
        if not self.memory.over:
            return ""
        return (f"memory limit exceeded: {format_size(total)} in {plural(len(pids), 'process', 'processes')} > "
                f"{format_size(self.memory.limit)}; stopping")

    def announce(self, config: Config, now: float, dashboard: str, control: str | None, log: Log) -> str | None:
        """Every worker sends: the ready file, READY=1 and the log line; what the starting shell is
        told (``--daemon``), or None when the ready file cannot be written."""
        if not self.files.write_ready({"pid": os.getpid(), "dashboard": dashboard or None, "target": config.target,
                                       "started_unix": self.shared.started_unix, "control_socket": control}):
            return None
        text = f"sending to {config.target}"
        self.notifier.ready(text)
        web = f"; dashboard {dashboard}/" if dashboard else ""
        log(f"ready: {config.workers} of {config.workers} workers {text} "
            f"({now - self.shared.started:.1f} s after start){web}")
        return text + web

    def measured_nothing(self, config: Config, seconds: float, stopped: bool = False) -> str:
        """Why a run measured nothing (it sent nothing of what was due, or only to ports where nothing
        listens); "" if it did. ``stopped``: by a signal, when sending nothing is no failure, but sending
        only where nothing listens is (a run of duration 0 always ends so)."""
        self.refusals.look_at(config, self.shared.snapshots(), self.shared.started + seconds)
        nothing = "" if stopped else self.nothing_sent(config, seconds)
        sink = self.shared.sink_totals()
        if sink is not None and sink.received:              # the local sink got something: it was measured
            return nothing
        return nothing or self.refusals.measured_nothing(config.host, config.ports[:config.workers])

    def nothing_sent(self, config: Config, seconds: float) -> str:
        snaps = self.shared.snapshots()[:config.workers]
        return nothing_sent(SlotSums.of(snaps).sent, self.workers.plan.started,
                            self.workers.planned(self.clock_ns()),
                            sum(s.state in READY_STATES or s.sent > 0 for s in snaps), len(snaps), seconds)

    def summary(self, config: Config, now: float) -> bool:
        """The summary on stdout and in --summary-json; False when the file could not be written."""
        assert self.live is not None
        now_ns = self.clock_ns()
        self.workers.account_down(now_ns, final=True)
        self.shared.note_first_send()
        totals = self.shared.totals(config, self.memory.peak, now, self.workers.planned(now_ns),
                                    self.workers.start_at, self.workers.requested_start_ns, self.run_id(config),
                                    self.live.changes, self.live.paused_seconds(now_ns))
        if self.live.changes:
            totals = replace(totals, live_last=describe(self.live.following()))
        if self.scenarios is not None:
            numbered, unnumbered = self.scenarios.numbering()
            totals = replace(totals, numbered_injected=numbered, unnumbered_injected=unnumbered)
        if config.protocol == "udp":
            self.refusals.look_at(config, self.shared.snapshots(), now)       # the last counts, to the datagram
            totals = replace(totals, unanswered=self.refusals.unanswered(), refusals=self.refusals.refused())
        print(summary(totals), file=self.out, flush=True)
        document = totals.document()
        if self.scenarios is not None:
            self.scenarios.summarise(document, self.out)
        return self.files.write_summary(document)
