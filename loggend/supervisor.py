"""The arbiter: forks the workers, watches them, turns signals into actions, reports.

Signal handlers only enqueue the signal; the main loop drains the queue and dispatches to
``handle_<name>()``. Each pass of the loop reaps dead workers (scheduling their restart with
back-off), spawns the ones that are due, kills hung ones, enforces the memory limit, prints the
live line and talks to systemd. Workers write their counter slots; this process only reads them
and owns each slot's RESTARTS field.

The message corpus is rendered here once, before the workers fork, so that 40 workers start
sending within a second or two instead of each rendering its own messages.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from loggend import __version__
from loggend import sink as sink_fields
from loggend.board import Board
from loggend.children import exited, fork_child, kill_quietly, stop_all
from loggend.config import MAX_SINK_PROCESSES, MAX_WORKERS, Config, format_ports, format_size
from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.engine.render import Corpus
from loggend.engine.worker import EXIT_BOOT_FAILED, Worker
from loggend.errors import EXIT_FAILURE, EXIT_OK, UsageError
from loggend.procinfo import pss_bytes
from loggend.report import LiveLine, sink_summary, summary, summary_json
from loggend.sink import EXIT_BIND_FAILED, SinkTotals
from loggend.sink import STATE_RUNNING as SINK_RUNNING
from loggend.sinkrun import fork_sink
from loggend.systemd import Notifier
from loggend.tuning import STATE_PATH, Tuner, TuningError
from loggend.webchild import WebSettings, fork_web

LOOP_SECONDS = 0.1           # main loop period: signal latency and reaping
REPORT_SECONDS = 1.0         # live line and memory check period
GRACEFUL_TIMEOUT = 5.0       # SIGTERM -> SIGKILL for workers that do not stop
BOOT_SECONDS = 30.0          # a worker still setting up after this long is hung
BACKOFF_FIRST = 0.5          # first restart delay; doubles per consecutive failure
BACKOFF_MAX = 30.0
BACKOFF_RESET = 60.0         # a worker that ran this long has its failure count forgiven
OVERRUN_SECONDS = 15.0       # past the end of a timed run, stop whatever is still running
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
WEB = -1                     # the web process's index among the children (it has no counter slot)
SINK0 = -2                   # local sink process k has index SINK0 - k (and sink slot k)
SINK_START_TIMEOUT = 10.0    # local sinks must be receiving within this, or the run does not start

Loader = Callable[[], Config]


@dataclass
class Child:
    index: int
    pid: int
    spawned_ns: int              # CLOCK_MONOTONIC, comparable with the slot's heartbeat


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def backoff(failures: int) -> float:
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, failures - 1)))


def share(total: int, index: int, parts: int) -> int:
    """Worker ``index``'s whole part of ``total`` events: the parts add up to exactly ``total``."""
    return total // parts + (1 if index < total % parts else 0)


class Supervisor:
    def __init__(
        self,
        config: Config,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
        notifier: Notifier | None = None,
        loader: Loader | None = None,
        summary_path: str = "",
        tuning_state: str = STATE_PATH,
    ) -> None:
        self.tuning_state = tuning_state
        self.config = config
        self.summary_path = summary_path
        self.loader = loader
        self.notifier = notifier or Notifier()
        self.out = out
        self.err = err
        self.clock = clock
        self.block = CounterBlock(MAX_WORKERS)
        self.board = Board()
        self.sink_block = CounterBlock(MAX_SINK_PROCESSES)
        self.stream_block = CounterBlock(MAX_WORKERS)           # what the local sink got of each stream
        self.sink_slots = 0
        self.tuner: Tuner | None = None
        self.reloads = 0
        self.web_restarts = 0
        self.memory = 0
        self.children: dict[int, Child] = {}        # pid -> child
        self.pending: dict[int, float] = {}         # worker index -> when to (re)spawn it
        self.failures: dict[int, int] = {}          # worker index -> consecutive failures
        self.signals: list[int] = []
        self.corpus: Corpus | None = None
        self.slots_used = config.workers
        self.started = self.deadline = 0.0
        self.started_unix = 0.0
        self.ready = False
        self.stopping = False
        self.exit_code = EXIT_OK
        self.peak_memory = 0

    def log(self, line: str) -> None:
        print(f"loggend: {line}", file=self.err, flush=True)

    # --- signals -------------------------------------------------------------------------------------

    def install_signals(self) -> None:
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self._enqueue)

    def _enqueue(self, signum: int, frame: object) -> None:
        self.signals.append(signum)

    def dispatch_signals(self) -> None:
        while self.signals and not self.stopping:
            name = signal.Signals(self.signals.pop(0)).name.lower()
            getattr(self, f"handle_{name}")()

    def handle_sigint(self) -> None:
        self.stop()

    def handle_sigterm(self) -> None:
        self.stop()

    def handle_sighup(self) -> None:
        self.reload()

    # --- workers -------------------------------------------------------------------------------------

    def render_corpus(self) -> None:
        if self.corpus is None or self.corpus.spec != self.config.messages:
            self.corpus = Corpus(self.config.messages, time.time())

    def spawn_worker(self, index: int, remaining: float | None = None) -> None:
        """Fork worker ``index`` for the ``remaining`` seconds of the run; its slot's counts carry on."""
        config = self.config
        duration = 0.0
        count = 0
        if config.duration:
            duration = self.deadline - self.clock() if remaining is None else remaining
            if duration <= 0:
                return
            if config.rate:
                count = self.block.slot(index)[C.SENT] + share(round(config.rate * duration), index, config.workers)
        worker = Worker(config.worker_spec(index, duration, count), self.block.slot(index), corpus=self.corpus)

        def body() -> int:
            worker.init_process()          # sets the worker's own signal handlers
            return worker.run()

        pid = fork_child(body, (self.out, self.err))
        self.children[pid] = Child(index, pid, time.monotonic_ns())

    def spawn_workers(self, remaining: float | None = None) -> None:
        """All workers, sharing one figure of the time left so that their counts add up exactly."""
        if remaining is None:
            remaining = self.deadline - self.clock()
        for index in range(self.config.workers):
            self.spawn_worker(index, remaining)

    def spawn_web(self) -> None:
        """Fork the web process (dashboard, REST, /ws, /metrics); it only reads the counters and the board."""
        c = self.config
        if c.dashboard is None:
            return
        settings = WebSettings(c.dashboard[0], c.dashboard[1], c.dashboard_token, c.dashboard_origins,
                               c.dashboard_interval)
        pid = fork_web(settings, self.block, self.board, self.log, self.sink_block, self.stream_block,
                       (self.out, self.err))
        self.children[pid] = Child(WEB, pid, time.monotonic_ns())

    def spawn_sink(self, k: int) -> None:
        """Fork local sink process ``k``: it receives on the target ports and writes sink slot ``k``."""
        cpus = self.config.cpus or sorted(os.sched_getaffinity(0))
        pid = fork_sink(self.config.host, self.config.ports, self.sink_block, k, cpus[k % len(cpus)],
                        outputs=(self.out, self.err), streams=self.stream_block)
        self.children[pid] = Child(SINK0 - k, pid, time.monotonic_ns())

    def spawn_sinks(self) -> bool:
        """Start the local sinks and wait until they receive; False (logged) when they cannot."""
        if not self.config.local_sink:
            self.sink_slots = 0
            return True
        self.sink_slots = self.config.sink_processes
        for k in range(self.sink_slots):
            self.spawn_sink(k)
        deadline = self.clock() + SINK_START_TIMEOUT
        while self.clock() < deadline:
            if all(self.sink_block.values(k)[sink_fields.STATE] == SINK_RUNNING for k in range(self.sink_slots)):
                return True
            self.reap_workers()
            if self.stopping:
                return False
            time.sleep(0.01)
        self.log(f"local sink: not receiving after {SINK_START_TIMEOUT:g} s; stopping")
        self.exit_code = EXIT_FAILURE
        self.stop()
        return False

    def sink_totals(self) -> SinkTotals | None:
        return SinkTotals.of(self.sink_block, self.sink_slots) if self.sink_slots else None

    def optimize(self) -> None:
        """Apply the kernel tuning when allowed (restored at the end of the run), else say why not."""
        tuner = Tuner(state=self.tuning_state)
        try:
            if tuner.saved() is not None:
                self.log(f"optimize: tuning already applied by `loggend tune apply` ({tuner.state}); left as it is")
                return
            changed = tuner.apply()
        except TuningError as err:
            self.log(f"optimize: not applied: {err}")
            return
        self.tuner = tuner
        done = ", ".join(f"{k} {a} -> {b}" for k, a, b in changed) or "already in place"
        self.log(f"optimize: kernel tuning applied ({done}); restored when the run ends")

    def restore_tuning(self) -> None:
        if self.tuner is None:
            return
        try:
            changed = self.tuner.restore()
            self.log(f"optimize: kernel tuning restored ({len(changed)} values)")
        except TuningError as err:
            self.log(f"optimize: could not restore: {err}; run `loggend tune restore`")
        self.tuner = None

    def write_summary(self, snapshots: list[C.SlotSnapshot], totals: SinkTotals | None) -> None:
        streams = [self.stream_block.values(i) for i in range(len(snapshots))] if totals is not None else None
        doc = summary_json(snapshots, self.clock() - self.started, self.config, self.peak_memory, totals, streams)
        try:
            with open(self.summary_path, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=1)
        except OSError as err:
            self.log(f"cannot write the summary to {self.summary_path}: {err.strerror}")

    def publish_board(self) -> None:
        """What the web process shows besides the counters: the config in force, memory, restarts."""
        c = self.config
        self.board.publish({
            "version": __version__, "target": c.target, "host": c.host, "ports": list(c.ports),
            "ports_text": format_ports(c.ports), "rate": c.rate, "workers": c.workers, "slots": self.slots_used,
            "cpus": list(c.cpus), "transport": c.transport, "duration": c.duration,
            "started_unix": self.started_unix, "reloads": self.reloads, "web_restarts": self.web_restarts,
            "memory_bytes": self.memory, "peak_memory_bytes": self.peak_memory, "memory_limit": c.memory_limit,
            "source": c.source, "state": "stopping" if self.stopping else "running", "sink_slots": self.sink_slots,
        })

    def reap_workers(self) -> None:
        for pid, status in exited():
            child = self.children.pop(pid, None)
            if child is not None and not self.stopping:
                self.after_exit(child, status)

    def after_exit(self, child: Child, status: int) -> None:
        """Decide what a child's exit means: done, fatal, or restart with back-off."""
        index = child.index
        if index == WEB:
            self.web_restarts += 1
            self.schedule_restart(child, status, "dashboard", " (sending goes on)")
            return
        sink = index <= SINK0
        name = f"local sink {SINK0 - index}" if sink else f"worker {index}"
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == (EXIT_BIND_FAILED if sink else EXIT_BOOT_FAILED):
            self.log(f"{name} could not {'listen on' if sink else 'start sending to'} {self.config.target}; stopping")
            self.exit_code = EXIT_FAILURE
            self.stop()
            return
        if not sink and status == 0 and self.config.duration:
            return                                    # its share of the timed run is done
        if index >= self.config.workers:
            return                                    # retired by a reload
        self.schedule_restart(child, status, name)

    def schedule_restart(self, child: Child, status: int, name: str, note: str = "") -> None:
        """Restart after a back-off that doubles per consecutive failure; a long run forgives them."""
        ran = (time.monotonic_ns() - child.spawned_ns) / 1e9
        failures = 1 if ran >= BACKOFF_RESET else self.failures.get(child.index, 0) + 1
        self.failures[child.index] = failures
        delay = backoff(failures)
        self.log(f"{name} (pid {child.pid}) {describe_exit(status)}; restarting in {delay:g} s "
                 f"(it ran {ran:.1f} s){note}")
        self.pending[child.index] = self.clock() + delay

    def manage_workers(self) -> None:
        """Spawn the workers whose restart is due."""
        now = self.clock()
        for index, due in sorted(self.pending.items()):
            if due <= now:
                del self.pending[index]
                if index == WEB:
                    self.spawn_web()
                    continue
                if index <= SINK0:
                    self.spawn_sink(SINK0 - index)
                    continue
                self.block.slot(index)[C.RESTARTS] += 1
                self.spawn_worker(index)

    def murder_workers(self) -> None:
        """Kill workers whose heartbeat stopped; the reaper then restarts them."""
        now_ns = time.monotonic_ns()
        for child in list(self.children.values()):
            if child.index < 0:
                continue
            slot = self.block.slot(child.index)
            running = slot[C.STATE] == C.STATE_RUNNING and slot[C.PID] == child.pid
            since = max(child.spawned_ns, slot[C.HEARTBEAT_NS]) if running else child.spawned_ns
            limit = self.config.hung_timeout if running else BOOT_SECONDS
            age = (now_ns - since) / 1e9
            if age > limit:
                what = "no heartbeat" if running else "still setting up"
                self.log(f"worker {child.index} (pid {child.pid}) is hung: {what} for {age:.1f} s; killing it")
                kill_quietly(child.pid, signal.SIGKILL)
                child.spawned_ns = now_ns            # one kill per period, until it is reaped

    def stop_children(self, pids: list[int]) -> None:
        """SIGTERM ``pids``, wait up to GRACEFUL_TIMEOUT, SIGKILL the rest, reap them all."""
        stop_all(pids, self.children.__contains__, self._reap_quietly, GRACEFUL_TIMEOUT, self.clock)

    def _reap_quietly(self) -> None:
        for pid, _ in exited():
            self.children.pop(pid, None)

    def stop(self) -> None:
        """Workers first, then the helpers: a local sink drains what the workers sent last."""
        self.stopping = True
        self.notifier.stopping()
        self.pending.clear()
        self.stop_children(self.worker_pids())
        self.stop_children(list(self.children))

    def reload(self) -> None:
        """Re-read the config; an invalid one is logged and the running one kept."""
        if self.loader is None:
            self.log("reload: no config to re-read; ignored")
            return
        self.notifier.reloading()
        try:
            new = self.loader()
        except UsageError as err:
            self.log(f"reload: {err}; keeping the running config")
            self.notifier.ready()
            return
        if new == self.config:
            self.log("reload: config unchanged")
            self.notifier.ready()
            return
        self.log(f"reload: {new.describe()}")
        old = self.config
        web_changed = (old.dashboard, old.dashboard_token, old.dashboard_interval, old.dashboard_origins) != \
            (new.dashboard, new.dashboard_token, new.dashboard_interval, new.dashboard_origins)
        sink_changed = (old.local_sink, old.sink_processes, old.host, old.ports) != \
            (new.local_sink, new.sink_processes, new.host, new.ports)
        self.stop_children(self.worker_pids())
        self.stop_children([pid for pid, c in self.children.items()
                            if (c.index == WEB and web_changed) or (c.index <= SINK0 and sink_changed)])
        web_running = any(c.index == WEB for c in self.children.values())
        self.pending = {i: due for i, due in self.pending.items()
                        if (i == WEB and not web_changed) or (i <= SINK0 and not sink_changed)}
        self.failures.clear()
        self.reloads += 1
        self.config = new
        self.deadline = self.started + new.duration
        self.slots_used = max(self.slots_used, new.workers)
        self.render_corpus()
        self.ready = False
        if sink_changed and not self.spawn_sinks():
            return
        self.publish_board()
        self.spawn_workers()
        if not web_running and WEB not in self.pending:
            self.spawn_web()

    def worker_pids(self) -> list[int]:
        return [pid for pid, c in self.children.items() if c.index >= 0]

    def all_running(self) -> bool:
        return all(s.state == C.STATE_RUNNING for s in self.block.snapshots(self.config.workers))

    def check_memory(self) -> None:
        """Add up the PSS of this process and its workers; over the limit, stop."""
        pids = [os.getpid(), *self.children]
        total = sum(pss_bytes(pid) for pid in pids)
        self.memory = total
        self.peak_memory = max(self.peak_memory, total)
        if self.config.memory_limit and total > self.config.memory_limit:
            self.log(f"memory limit exceeded: {format_size(total)} in {len(pids)} processes > "
                     f"{format_size(self.config.memory_limit)}; stopping")
            self.exit_code = EXIT_FAILURE
            self.stop()

    # --- main loop ----------------------------------------------------------------------------------

    def run(self) -> int:
        self.install_signals()
        self.log(f"config {self.config.source}: {self.config.describe()}")
        if self.config.optimize:
            self.optimize()
        self.render_corpus()
        self.started = self.clock()
        self.started_unix = time.time()
        self.deadline = self.started + self.config.duration
        if self.spawn_sinks():
            self.publish_board()
            self.spawn_workers(self.config.duration)
            self.spawn_web()
        live = LiveLine(self.started)
        next_report = self.started + REPORT_SECONDS
        next_ping = self.started
        while True:
            self.dispatch_signals()
            self.reap_workers()
            if self.stopping or not (self.worker_pids() or any(i >= 0 for i in self.pending)):
                break
            self.manage_workers()
            self.murder_workers()
            now = self.clock()
            if not self.ready and self.all_running():
                self.notifier.ready(f"sending to {self.config.target}")
                self.ready = True
            if now >= next_report:
                line = live.line(now, self.block.snapshots(self.slots_used), self.config.workers,
                                 self.sink_totals())
                print(line, file=self.out, flush=True)
                self.notifier.status(line.strip())
                self.check_memory()
                self.publish_board()
                next_report += REPORT_SECONDS
            if self.config.duration and now > self.deadline + OVERRUN_SECONDS:
                self.log(f"workers still running {OVERRUN_SECONDS:g} s after the end of the run; stopping them")
                self.stop()
            if self.notifier.watchdog_interval and now >= next_ping:
                self.notifier.watchdog()
                next_ping = now + self.notifier.watchdog_interval
            time.sleep(LOOP_SECONDS)
        if not self.stopping:
            self.notifier.stopping()
            self.stopping = True
            self.stop_children(list(self.children))          # the web process
        self.check_memory()
        snapshots = self.block.snapshots(self.slots_used)
        print(summary(snapshots, self.clock() - self.started, self.config, self.peak_memory), file=self.out, flush=True)
        totals = self.sink_totals()
        if totals is not None:
            print(sink_summary(totals, sum(s.sent for s in snapshots)), file=self.out, flush=True)
        if self.summary_path:
            self.write_summary(snapshots, totals)
        self.restore_tuning()
        return self.exit_code
