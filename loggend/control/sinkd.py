"""``loggend sink``: K receiving processes sharing a port range, a line per second, a summary.

The parent only forks, watches and reports, through the same ``ChildSet`` as the supervisor: a
sink process that dies is restarted with back-off and carries its slot's counts on; one that
cannot bind stops the command. ``SinkWatch`` refuses ports another socket receives on (unless
``--share-ports``), kills a sink process whose heartbeat stopped and counts a queue lost with a
process. Each child is a ``SinkWorker`` writing its slot of a shared ``CounterBlock`` and naming
the streams it sees in its own range of stream slots; ``--dashboard`` adds the web process (the
sink's own view) over them. Its socket is bound first, before any sink process: a taken
dashboard port is one line and exit 1, at once.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import replace
from typing import TextIO

from loggend.config import MAX_SINK_PROCESSES
from loggend.control import children as K
from loggend.control.children import ChildSet
from loggend.control.dashboard import Dashboard, DashboardError
from loggend.control.signals import SignalQueue
from loggend.control.sinks import SinkProcesses
from loggend.control.sinkwatch import SinkWatch
from loggend.engine import counters as C
from loggend.engine import journal
from loggend.engine.counters import Board, CounterBlock
from loggend.engine.journal import ERR, INFO
from loggend.errors import EXIT_FAILURE, EXIT_OK
from loggend.parsers import format_ports, format_size, plural
from loggend.report.console import BEHIND_SHOWN_BYTES, sink_summary
from loggend.report.sources import Sources
from loggend.report.totals import SinkTotals
from loggend.sink.receiver import open_sockets
from loggend.sink.sinkspec import SinkSpec
from loggend.sink.streams import listen
from loggend.web.child import WebSettings

REPORT_SECONDS = 1.0
STOP_TIMEOUT = 5.0
START_TIMEOUT = 10.0
HUNG_SECONDS = 10.0              # a sink process whose heartbeat is this old is killed and restarted
BOOT_SECONDS = 30.0
ABORT_GRACE = 2.0


class SinkCommand:
    def __init__(self, spec: SinkSpec, processes: int, duration: float = 0.0,
                 idle_exit: float = 0.0, out: TextIO = sys.stdout,
                 dashboard: WebSettings | None = None, run_id: str = "", share: bool = False) -> None:
        assert processes <= MAX_SINK_PROCESSES
        self.spec, self.processes = spec, processes
        self.duration, self.idle_exit, self.out = duration, idle_exit, out
        self.settings = dashboard
        self.run_id = run_id
        self.block = CounterBlock(processes)
        self.streams = CounterBlock(processes * C.STREAM_SLOTS_PER_SINK)
        self.board = Board()
        self.signals = SignalQueue()
        self.children = ChildSet(self.log)
        cpus = sorted(os.sched_getaffinity(0))
        self.sinks = SinkProcesses(spec, self.block, cpus, self.log, (out, sys.stderr), self.streams)
        self.watch = SinkWatch(self.block, self.log, share)
        self.watch.count = processes
        self.aborted: dict[int, float] = {}
        self.children.register(K.SINK, self.sinks.spawn, lambda i: f"sink process {i}")
        self.dashboard: Dashboard | None = None
        self.stopping = self.failed = self.stop_requested = False

    def log(self, line: str, level: int = INFO) -> None:
        journal.write(line, level, sys.stderr)

    def totals(self) -> SinkTotals:
        return replace(SinkTotals.of(self.block.rows(self.processes)), standalone=True)

    def dispatch_signals(self) -> None:
        while (name := self.signals.pop()) is not None:
            if name == "sigchld":
                self.reap()
            else:
                self.stop_requested = True

    def reap(self) -> None:
        for child, status in self.children.reap():
            if child.kind == K.SINK:
                self.watch.ended(child, status)
            if self.stopping:
                continue
            verdict = ChildSet.verdict(child, status, wanted=True, timed=False)
            if verdict == K.FATAL:
                self.failed = True
            else:
                self.children.schedule_restart(child, status, " (the sink goes on without it)"
                                               if child.kind == K.WEB else "")

    def bind_dashboard(self) -> bool:
        """Bind the dashboard's socket before anything starts; False (one line) when it cannot."""
        if self.settings is None:
            return True
        self.dashboard = Dashboard(self.settings, Sources(CounterBlock(1), self.board, self.block, self.streams),
                                   self.log, (self.out, sys.stderr))
        try:
            self.log(f"dashboard: {self.dashboard.open()}/ (metrics at /metrics)")
        except DashboardError as err:
            self.log(str(err), ERR)
            self.dashboard = None
            return False
        self.sinks.close_in_child = self.dashboard.sockets()
        return True

    def start(self) -> bool:
        self.signals.install((signal.SIGTERM, signal.SIGINT, signal.SIGCHLD))
        held = None
        spec = self.spec
        refused = self.watch.check_ports(spec)
        if refused:
            self.log(refused, ERR)
            self.failed = True
            return False
        if spec.ports == (0,):       # any free port: hold one with SO_REUSEPORT until the sinks bound it too
            (held,) = (open_sockets if spec.protocol == "udp" else listen)(spec.host, (0,))
            self.spec = self.sinks.spec = spec.with_ports((held.getsockname()[1],))
            self.sinks.close_in_child = (held, *self.sinks.close_in_child)

        def give_up() -> bool:
            self.dispatch_signals()
            return self.failed or self.stop_requested
        ok = self.sinks.start(self.children, self.processes, START_TIMEOUT, give_up)
        if held is not None:
            held.close()
            self.sinks.close_in_child = self.dashboard.sockets() if self.dashboard else ()
        if not ok:
            return False
        processes = plural(self.processes, "process", "processes")
        where = f"{self.spec.host}:{format_ports(self.spec.ports)}"
        print(f"READY listening on {where} ({self.spec.protocol}, {processes})", file=self.out, flush=True)
        return self.open_dashboard()

    def open_dashboard(self) -> bool:
        if self.dashboard is None:
            return True
        self.board.publish({"target": f"{self.spec.host}:{format_ports(self.spec.ports)}",
                            "ports": list(self.spec.ports), "protocol": self.spec.protocol,
                            "rate": 0, "workers": 0, "slots": 0, "sink_slots": self.processes,
                            "run_id": self.run_id, "stream_width": C.STREAM_SLOTS_PER_SINK, "mode": "sink",
                            "started_unix": time.time()})
        self.children.register(K.WEB, self.dashboard.spawn, lambda i: "sink dashboard")
        self.children.spawn(K.WEB, 0)
        return True

    def run(self) -> int:
        if not self.bind_dashboard():
            return EXIT_FAILURE
        if not self.start():                    # refused (ports taken by another receiver...): said in one line,
            self.stop()                         # and no summary of nothing that a script could take for 0 lost
            return EXIT_FAILURE if self.failed else EXIT_OK
        start = last_change = last_report = time.monotonic()
        last = reported = 0
        while not self.stop_requested and not self.failed:
            self.signals.wait(min([last_report + REPORT_SECONDS, *self.children.pending.values()])
                              - time.monotonic())
            self.dispatch_signals()
            for kind, index in self.children.due():
                self.children.spawn(kind, index)
            self.watch.kill_hung(self.children, self.spec, HUNG_SECONDS, BOOT_SECONDS, self.aborted, ABORT_GRACE)
            self.watch.watch_ports(self.spec, len(self.children.pids(K.SINK)))
            now = time.monotonic()
            t = self.totals()
            if t.received != last:
                last, last_change = t.received, now
            if now - last_report >= REPORT_SECONDS:
                extra = (f"kernel drops {t.kernel_drops:,}" if self.spec.protocol == "udp" else
                         f"connections {t.open:,} open  torn {t.torn:,}")
                if t.backlog_bytes >= BEHIND_SHOWN_BYTES:
                    extra += f"  behind {format_size(t.backlog_bytes)}"
                print(f"sink: received {(t.received - reported) / (now - last_report):12,.0f} ev/s  "
                      f"total {t.received:,}  lost {t.lost_shown}  {extra}", file=self.out, flush=True)
                last_report, reported = now, t.received
            if self.duration and now - start >= self.duration:
                break
            if self.idle_exit and t.received and now - last_change >= self.idle_exit:
                break
        self.stop()
        print(sink_summary(self.totals()), file=self.out, flush=True)
        return EXIT_FAILURE if self.failed else EXIT_OK

    def stop(self) -> None:
        """The dashboard and the sink processes: SIGTERM (they drain their queues), SIGKILL after STOP_TIMEOUT."""
        self.stopping = True
        self.children.pending.clear()
        self.watch.stop(self.children, self.spec, STOP_TIMEOUT)
        self.children.stop(self.children.pids(), STOP_TIMEOUT)
        if self.dashboard is not None:
            self.dashboard.close()
