"""``loggend sink``: K receiving processes sharing a port range, a line per second, a summary.

The parent only forks, watches and reports; each child is a ``SinkWorker`` writing its slot of
a shared ``CounterBlock``. The supervisor's ``--local-sink`` forks the same workers itself.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from typing import TextIO

from loggend.board import Board
from loggend.children import exited, fork_child, stop_all
from loggend.config import MAX_WORKERS, format_ports
from loggend.engine.counters import CounterBlock
from loggend.errors import EXIT_FAILURE, EXIT_OK
from loggend.sink import EXIT_BIND_FAILED, SinkTotals, SinkWorker, open_sockets
from loggend.webchild import WebSettings, fork_web

REPORT_SECONDS = 1.0
LOOP_SECONDS = 0.05
STOP_TIMEOUT = 5.0
MAX_PROCESSES = 256
MAX_STREAMS = MAX_WORKERS        # per-stream slots: stream "<prefix><i>" -> slot i


def sink_cpus(count: int) -> list[int | None]:
    usable = sorted(os.sched_getaffinity(0))
    return [usable[i % len(usable)] for i in range(count)]


def fork_sink(host: str, ports: tuple[int, ...], block: CounterBlock, index: int, cpu: int | None,
              gro: bool = True, outputs: tuple[TextIO, ...] = (sys.stdout, sys.stderr),
              close: tuple[socket.socket, ...] = (), streams: CounterBlock | None = None) -> int:
    """Fork sink process ``index``; the parent gets its pid. ``close``: parent sockets the child must not keep."""
    worker = SinkWorker(host, ports, block.slot(index), cpu, log=lambda line: print(line, file=sys.stderr, flush=True),
                        gro=gro, streams=streams)

    def body() -> int:
        for sock in close:           # else it stays in the SO_REUSEPORT group and takes a share of flows
            sock.close()
        worker.init_process()
        return worker.run()

    return fork_child(body, outputs)


def reserve_port(host: str) -> tuple[socket.socket, int]:
    """A free port held with SO_REUSEPORT until the sink processes have bound it too."""
    (sock,) = open_sockets(host, (0,))
    return sock, sock.getsockname()[1]


class SinkCommand:
    def __init__(self, host: str, ports: tuple[int, ...], processes: int, duration: float = 0.0,
                 idle_exit: float = 0.0, gro: bool = True, out: TextIO = sys.stdout,
                 dashboard: WebSettings | None = None) -> None:
        self.host, self.ports, self.processes, self.gro = host, ports, processes, gro
        self.dashboard = dashboard
        self.web_pid = 0
        self.duration, self.idle_exit, self.out = duration, idle_exit, out
        self.block = CounterBlock(processes)
        self.streams = CounterBlock(MAX_STREAMS)
        self.children: dict[int, int] = {}
        self.stopping = False
        self.failed = False

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def totals(self) -> SinkTotals:
        return SinkTotals.of(self.block, self.processes)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        held = None
        if self.ports == (0,):
            held, port = reserve_port(self.host)
            self.ports = (port,)
        for i, cpu in enumerate(sink_cpus(self.processes)):
            pid = fork_sink(self.host, self.ports, self.block, i, cpu, self.gro, close=(held,) if held else (),
                            streams=self.streams)
            self.children[pid] = i
        while self.totals().running < self.processes and not self.reap():
            time.sleep(0.01)
        if held is not None:
            held.close()
        if self.failed:
            self.stop()
            return EXIT_FAILURE
        print(f"READY listening on {self.host}:{format_ports(self.ports)} ({self.processes} processes)",
              file=self.out, flush=True)
        if self.dashboard is not None:
            self.start_web()
        start = last_change = last_report = time.monotonic()
        last = reported = 0
        while not self.stopping and not self.reap():
            time.sleep(LOOP_SECONDS)
            now = time.monotonic()
            t = self.totals()
            if t.received != last:
                last, last_change = t.received, now
            if now - last_report >= REPORT_SECONDS:
                print(f"sink: received {(t.received - reported) / (now - last_report):12,.0f} ev/s  "
                      f"total {t.received:,}  lost {t.lost:,}  kernel drops {t.kernel_drops:,}", file=self.out,
                      flush=True)
                last_report, reported = now, t.received
            if self.duration and now - start >= self.duration:
                break
            if self.idle_exit and t.received and now - last_change >= self.idle_exit:
                break
        self.stop()
        t = self.totals()
        print(f"sink summary: received {t.received:,} datagrams ({t.bytes:,} bytes) from {t.streams} streams; "
              f"lost {t.lost:,}; reordered {t.late:,}; duplicates {t.duplicates:,}; without sequence "
              f"{t.unsequenced:,}; kernel drops {t.kernel_drops:,}", file=self.out, flush=True)
        return EXIT_FAILURE if self.failed else EXIT_OK

    def start_web(self) -> None:
        """The web process over the sink's counters: /metrics (loggen_sink_*), /api/metrics, the dashboard."""
        assert self.dashboard is not None
        board = Board()
        board.publish({"target": f"{self.host}:{format_ports(self.ports)}", "ports": list(self.ports), "rate": 0,
                       "workers": 0, "slots": 0, "sink_slots": self.processes, "started_unix": time.time()})
        self.board = board
        self.web_pid = fork_web(self.dashboard, CounterBlock(1), board,
                                lambda line: print(f"loggend: {line}", file=sys.stderr, flush=True),
                                self.block, self.streams, (self.out, sys.stderr))

    def reap(self) -> bool:
        """Reap exited children; True when one failed (the sink cannot do its job)."""
        for pid, status in exited():
            if pid == self.web_pid:
                if not self.stopping:
                    print("loggend: sink dashboard exited; the sink goes on without it", file=sys.stderr, flush=True)
                self.web_pid = 0
                continue
            index = self.children.pop(pid, None)
            if index is not None and not self.stopping:
                code = os.waitstatus_to_exitcode(status)
                if code == EXIT_BIND_FAILED:
                    self.failed = True
                elif code != 0:
                    print(f"loggend: sink process {index} exited with status {code}", file=sys.stderr, flush=True)
                    self.failed = True
        return self.failed

    def stop(self) -> None:
        """The dashboard and the sink processes: SIGTERM (they drain their queues), SIGKILL after STOP_TIMEOUT."""
        self.stopping = True
        pids = [*self.children, *([self.web_pid] if self.web_pid else [])]
        stop_all(pids, lambda pid: pid in self.children or pid == self.web_pid, self.reap, STOP_TIMEOUT)
