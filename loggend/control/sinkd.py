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
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from loggend.config import MAX_SINK_PROCESSES
from loggend.control import children as K
from loggend.control.children import GRACEFUL_TIMEOUT, Child, ChildSet
from loggend.control.loop import ABORT_GRACE, BOOT_SECONDS, REPORT_SECONDS, Loop
from loggend.control.sinks import SinkProcesses
from loggend.control.sinkwatch import SinkWatch
from loggend.engine import counters as C
from loggend.engine.counters import Board, CounterBlock
from loggend.errors import EXIT_FAILURE, EXIT_OK
from loggend.parsers import format_ports, format_size, plural
from loggend.report.console import BEHIND_SHOWN_BYTES, sink_summary
from loggend.report.sources import Sources
from loggend.report.totals import SinkTotals, unheard_instances
from loggend.sink.receiver import open_sockets
from loggend.sink.sinkspec import SinkSpec
from loggend.sink.streams import listen
from loggend.web.child import WebSettings

HUNG_SECONDS = 10.0              # a sink process whose heartbeat is this old is killed and restarted


class SinkCommand(Loop):
    def __init__(self, spec: SinkSpec, processes: int, duration: float = 0.0,
                 idle_exit: float = 0.0, out: TextIO = sys.stdout,
                 dashboard: WebSettings | None = None, run_id: str = "", share: bool = False,
                 clock_ns: Callable[[], int] = time.monotonic_ns, expect_instances: int = 0) -> None:
        assert processes <= MAX_SINK_PROCESSES
        super().__init__(out, sys.stderr, clock_ns)
        self.spec, self.processes = spec, processes
        self.duration, self.idle_exit = duration, idle_exit
        self.settings = dashboard
        self.run_id = run_id
        self.expect_instances = expect_instances          # a fleet's size: who never sent is said (0: not checked)
        self.block = CounterBlock(processes)
        self.streams = CounterBlock(processes * C.STREAM_SLOTS_PER_SINK)
        self.board = Board()
        cpus = sorted(os.sched_getaffinity(0))
        self.sinks = SinkProcesses(spec, self.block, cpus, self.log, (out, sys.stderr), self.streams)
        self.watch = SinkWatch(self.block, self.log, share, self.clock)
        self.watch.count = processes
        self.children.register(K.SINK, self.sinks.spawn, lambda i: f"sink process {i}")
        self.started = False
        self.start_time = self.last_change = self.last_report = 0.0
        self.last = self.reported = 0

    def totals(self) -> SinkTotals:
        totals = SinkTotals.of(self.block.rows(self.processes))
        names = (n.decode("utf-8", "replace") for _, n in self.streams.named())
        unheard = () if totals.overflow else unheard_instances(names, self.expect_instances)   # names all: else unknown
        return replace(totals, standalone=True, unheard=unheard, expected=self.expect_instances)

    def handle_sigterm(self) -> None:
        self.asked_to_stop = True

    handle_sigint = handle_sigterm

    def after_exit(self, child: Child, status: int) -> None:
        if child.kind == K.SINK:
            self.watch.ended(child, status)
        if ChildSet.verdict(child, status, wanted=True, timed=False) == K.FATAL:
            self.exit_code = EXIT_FAILURE
        else:
            self.children.schedule_restart(child, status, " (the sink goes on without it)"
                                           if child.kind == K.WEB else "")

    def start(self) -> bool:
        if not self.bind_web(self.settings, Sources(CounterBlock(1), self.board, self.block, self.streams)):
            return False
        self.sinks.close_in_child = self.dashboard.sockets() if self.dashboard else ()
        held = None
        spec = self.spec
        if spec.ports == (0,):       # any free port: hold one with SO_REUSEPORT until the sinks bound it too
            (held,) = (open_sockets if spec.protocol == "udp" else listen)(spec.host, (0,))
            self.spec = self.sinks.spec = spec.with_ports((held.getsockname()[1],))
            self.sinks.close_in_child = (held, *self.sinks.close_in_child)
        ok = self.start_sinks(self.sinks, self.watch, self.processes, self.dispatch_signals, spec.ports)
        if held is not None:
            held.close()
            self.sinks.close_in_child = self.dashboard.sockets() if self.dashboard else ()
        if not ok:
            return False
        processes = plural(self.processes, "process", "processes")
        where = f"{self.spec.host}:{format_ports(self.spec.ports)}"
        print(f"READY listening on {where} ({self.spec.protocol}, {processes})", file=self.out, flush=True)
        self.open_dashboard()
        self.started = True
        self.start_time = self.last_change = self.last_report = self.clock()
        self.next_report = self.start_time + REPORT_SECONDS
        return True

    def open_dashboard(self) -> None:
        if self.dashboard is None:
            return
        self.board.publish({"target": f"{self.spec.host}:{format_ports(self.spec.ports)}",
                            "ports": list(self.spec.ports), "protocol": self.spec.protocol,
                            "rate": 0, "workers": 0, "slots": 0, "sink_slots": self.processes,
                            "run_id": self.run_id, "stream_width": C.STREAM_SLOTS_PER_SINK, "mode": "sink",
                            "expect_instances": self.expect_instances,
                            "started_unix": time.time()})
        self.spawn_web("sink dashboard")

    def running(self) -> bool:
        return not self.asked_to_stop and self.exit_code == EXIT_OK

    def murder_hung(self) -> None:
        self.watch.kill_hung(self.children, self.spec, HUNG_SECONDS, BOOT_SECONDS, self.aborted, ABORT_GRACE)
        self.watch.watch_ports(self.spec, len(self.children.pids(K.SINK)))

    def advance(self) -> float:
        """Follow the received count (for --idle-exit); at the end of --duration or --idle-exit, stop."""
        now = self.clock()
        t = self.totals()
        if t.received != self.last:
            self.last, self.last_change = t.received, now
        idle = bool(self.idle_exit and t.received and now - self.last_change >= self.idle_exit)
        if idle or (self.duration and now - self.start_time >= self.duration):
            self.asked_to_stop = True
            return 0.0
        return self.start_time + self.duration - now if self.duration else float("inf")

    def tick(self, now: float) -> None:
        t = self.totals()
        extra = (f"kernel drops {t.kernel_drops:,}" if self.spec.protocol == "udp" else
                 f"connections {t.open:,} open  torn {t.torn:,}")
        if t.backlog_bytes >= BEHIND_SHOWN_BYTES:
            extra += f"  behind {format_size(t.backlog_bytes)}"
        print(f"sink: received {(t.received - self.reported) / (now - self.last_report):12,.0f} ev/s  "
              f"total {t.received:,}  lost {t.lost_shown}  {extra}", file=self.out, flush=True)
        self.last_report, self.reported = now, t.received

    def finish(self) -> int:
        """Refused (ports taken by another receiver...): said in one line, and no summary of nothing
        that a script could take for 0 lost."""
        self.stop()
        if self.started:
            print(sink_summary(self.totals()), file=self.out, flush=True)
        return self.exit_code

    def stop(self) -> None:
        """The dashboard and the sink processes: SIGTERM (they drain their queues), SIGKILL after
        GRACEFUL_TIMEOUT."""
        if self.stopping:
            return
        self.stopping = True
        self.children.pending.clear()
        self.watch.stop(self.children, self.spec, GRACEFUL_TIMEOUT)
        self.stop_children(self.children.pids())
        if self.dashboard is not None:
            self.dashboard.close()
