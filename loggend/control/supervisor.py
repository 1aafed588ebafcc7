"""The arbiter: forks the children, watches them, turns signals into actions, reports.

The shape is gunicorn's arbiter: signal handlers only enqueue (a wake-up pipe ends the loop's
wait at once, so nothing polls); the loop drains the queue into ``handle_<signal>()``, then
``reap_children``, ``manage_children`` (restarts that are due), ``murder_hung`` and, once a
second, ``tick`` (live line, memory, board, systemd). Children are kept by kind in a
``ChildSet`` (workers, local sink processes, the web process), whose exit policy says whether an
exit is done, fatal or to be restarted. Workers and sinks write their counter slots; this
process only reads them and owns each worker slot's RESTARTS field.

The message corpus is rendered here once, before the workers fork, so that 40 workers start
sending within a second or two instead of each rendering its own messages.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, TextIO

from loggend import __version__
from loggend.config import FIXED, IN_PLACE, NEXT_START, OUTPUT_FIELDS, SINK_FIELDS, WEB_FIELDS, Config
from loggend.content.scenarios import Background, Request
from loggend.control import children as K
from loggend.control.children import Child, ChildSet
from loggend.control.ctlsocket import (
    ControlError,
    ControlServer,
    Peer,
    claim_path,
    request,
    socket_path,
    sweep_stale,
)
from loggend.control.dashboard import Dashboard, DashboardError
from loggend.control.detect import DEFAULT_TIMEOUT, DetectSpec, verdict_lines
from loggend.control.injector import DETECTOR, INJECTOR, RunScenarios, summary_lines
from loggend.control.injector import STREAM as INJECTOR_STREAM
from loggend.control.live import LiveRate, describe
from loggend.control.memory import MemoryWatch
from loggend.control.pki import PkiError
from loggend.control.shared import STREAM_WIDTH, SharedRun
from loggend.control.signals import SignalQueue
from loggend.control.sinks import LocalSinkTls, SinkProcesses
from loggend.control.sinkwatch import SinkWatch
from loggend.control.systemd import Notifier
from loggend.control.tuning import STATE_PATH, RunTuning
from loggend.control.workers import READY_STATES, WorkerPool, abort_then_kill
from loggend.engine import counters as C
from loggend.engine import journal
from loggend.engine.journal import ERR, INFO, NOTICE, WARNING
from loggend.engine.process import set_process_name
from loggend.errors import EXIT_FAILURE, EXIT_OK, EXIT_REPORT_FAILED, UsageError
from loggend.files import claim, identity, write_json
from loggend.fleet import new_run_id, stream_prefix
from loggend.parsers import format_size, plural
from loggend.sink.spec import SinkSpec
from loggend.tools.console import LiveLine, summary, target_text
from loggend.web.child import WebSettings

REPORT_SECONDS = 1.0         # live line, memory check and board period
GRACEFUL_TIMEOUT = 5.0       # SIGTERM -> SIGKILL for children that do not stop
BOOT_SECONDS = 30.0          # a worker process setting up with no progress (a worker set up) this long is hung
ABORT_GRACE = 2.0            # a hung worker that SIGABRT did not end is SIGKILLed after this
OVERRUN_SECONDS = 15.0       # past the end of a timed run, stop whatever is still running
SINK_START_TIMEOUT = 10.0    # local sinks must be receiving within this, or the run does not start
LIVE_TTY_SECONDS = 1.0       # live_interval: auto on a terminal
LIVE_PIPE_SECONDS = 10.0     # live_interval: auto anywhere else (the journal, a pipe, a file); STATUS= stays 1 s
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2)
SUMMARY_KEYS = frozenset({"target", "sent"})                 # a --summary-json file a run wrote has these
READY_KEYS = frozenset({"pid", "target", "started_unix"})    # ... a --ready-file


def claim_outputs(summary_path: str, ready_path: str, control_socket: str) -> None:
    """UsageError (before the run) unless --summary-json, --ready-file and a control socket path can
    be written without replacing anything but loggen's own: a summary, the ready file or the socket
    of a run that ended."""
    if control_socket not in ("auto", "off"):
        try:
            claim_path(control_socket)
        except ControlError as err:
            raise UsageError(str(err)) from None
    if summary_path:
        claim(summary_path, "--summary-json", lambda doc: isinstance(doc, dict) and SUMMARY_KEYS <= doc.keys(),
              "a summary loggen wrote")
    if ready_path:
        claim(ready_path, "--ready-file", _ended_run_ready_file, "the ready file of a run that ended")


def _ended_run_ready_file(doc: object) -> bool:
    if not isinstance(doc, dict) or not READY_KEYS <= doc.keys() or not isinstance(doc["pid"], int):
        return False
    return doc["pid"] > 0 and not os.path.exists(f"/proc/{doc['pid']}")

Loader = Callable[[], Config]


def webhook_detection(path: str, words: str) -> dict[str, Any]:
    """The web process's ``POST /api/detections``, through the control socket as ``detected ID [TIME]``."""
    try:
        return request(path, f"detected {words}")
    except ControlError as err:
        return {"ok": False, "unavailable": True, "message": str(err)}


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


class Supervisor:
    def __init__(self, config: Config, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 clock: Callable[[], float] = time.monotonic, notifier: Notifier | None = None,
                 loader: Loader | None = None, summary_path: str = "", ready_path: str = "",
                 tuning_state: str = STATE_PATH, on_ready: Callable[[str], None] | None = None,
                 start_at: float | None = None, scenarios: tuple[Request, ...] = (), truth_path: str = "",
                 detect: tuple[DetectSpec, ...] = (), detect_timeout: float = DEFAULT_TIMEOUT,
                 injector: bool = False) -> None:
        self.config, self.loader, self.clock, self.out, self.err = config, loader, clock, out, err
        self.summary_path, self.ready_path, self.on_ready = summary_path, ready_path, on_ready
        self.notifier = notifier or Notifier()
        self.tuning = RunTuning(self.log, tuning_state, under_systemd=self.notifier.enabled)
        self.memory = MemoryWatch(config.memory_limit)
        self.shared = SharedRun()
        self.signals = SignalQueue()
        self.children = ChildSet(self.log, clock)
        self.local_tls = LocalSinkTls()
        self.sinks = SinkProcesses(SinkSpec(config.host, config.ports), self.shared.sink_block, [], self.log,
                                   (out, err), streams=self.shared.stream_block, announced=STREAM_WIDTH,
                                   width=STREAM_WIDTH)
        self.sink_watch = SinkWatch(self.shared.sink_block, self.log, config.sink_share_ports)
        self.workers = WorkerPool(config, self.shared, self.log, (out, err), start_at=start_at)
        self.generated_run_id = new_run_id()          # the run's id when the config gives none
        self.children.register(K.WORKER, self.workers.spawn, self.workers.label)
        self.children.register(K.SINK, self.sinks.spawn, lambda i: f"local sink {i}")
        self.scenarios = (RunScenarios(scenarios, truth_path, self.log, (out, err), detect, detect_timeout)
                          if scenarios or injector else None)
        if self.scenarios is not None:
            self.children.register(INJECTOR, self.scenarios.spawn, lambda i: "scenario injector")
            self.children.register(DETECTOR, self.scenarios.spawn_detector, lambda i: "detection poller")
        self.live = LiveRate(self.workers, self.log, self.counters)
        self.control: ControlServer | None = None
        self.dashboard: Dashboard | None = None
        self.aborted: dict[int, float] = {}       # pid of a hung worker -> when it was sent SIGABRT
        self.reloads = self.web_restarts = 0
        self.ready = self.stopping = self.asked_to_stop = False
        self.ready_written: tuple[int, int, int] | None = None   # files.identity of the ready file written
        self.exit_code = EXIT_OK
        self.failure = ""                         # the line that said why the run failed
        self.live_printed = 0.0                   # when the live line last went to stdout

    def log(self, line: str, level: int = INFO) -> None:
        journal.write(line, level, self.err)

    # --- signals -------------------------------------------------------------------------------------

    def dispatch_signals(self) -> None:
        while not self.stopping and (name := self.signals.pop()) is not None:
            getattr(self, f"handle_{name}")()

    def handle_sigint(self) -> None:
        self.asked_to_stop = True
        self.stop()

    def handle_sigterm(self) -> None:
        self.asked_to_stop = True
        self.stop()

    def handle_sighup(self) -> None:
        self.reload()

    def handle_sigchld(self) -> None:
        self.reap_children()

    def handle_sigusr1(self) -> None:
        self.live.scale(2.0, "SIGUSR1")
        self.publish_board()

    def handle_sigusr2(self) -> None:
        self.live.scale(0.5, "SIGUSR2")
        self.publish_board()

    # --- spawning ------------------------------------------------------------------------------------

    def spawn_sinks(self) -> bool:
        """Start the local sinks and wait until they receive; False (the run stops) when they cannot."""
        c = self.config
        count = c.sink_processes if c.local_sink else 0
        self.shared.sink_slots = max(self.shared.sink_slots, count)      # a reload to fewer keeps the counts
        self.sinks.cpus = list(c.sink_cpus or c.cpus or sorted(os.sched_getaffinity(0)))
        self.sink_watch.share, self.sink_watch.count = c.sink_share_ports, count
        refused = self.sink_watch.check_ports(self.sinks.spec) if count else ""
        if refused:
            self.fail(refused)
            return False

        def give_up() -> bool:
            self.reap_children()
            return self.stopping
        if not self.sinks.start(self.children, count, SINK_START_TIMEOUT, give_up):
            self.fail("local sink: not receiving; stopping")
            return False
        return True

    def bind_dashboard(self) -> bool:
        """Bind the dashboard's socket (kept across web restarts); False (said in one line) when taken."""
        c = self.config
        if c.dashboard is None:
            return True
        settings = WebSettings(c.dashboard[0], c.dashboard[1], c.dashboard_token, c.dashboard_origins,
                               c.dashboard_interval, c.dashboard_hosts)
        self.dashboard = Dashboard(settings, self.shared.sources, self.log, (self.out, self.err))
        try:
            self.log(f"dashboard: {self.dashboard.open()}/ (metrics at /metrics)")
        except DashboardError as err:
            self.dashboard = None
            self.fail(str(err))
            return False
        self.workers.close_in_child = self.sinks.close_in_child = self.dashboard.sockets()
        return True

    def open_dashboard(self) -> bool:
        """Bind the dashboard's socket if not yet bound, and start the web process on it."""
        if self.dashboard is None and not self.bind_dashboard():
            return False
        if self.dashboard is not None:
            self.children.register(K.WEB, self.dashboard.spawn, lambda i: "dashboard")
            self.children.spawn(K.WEB, 0)
        return True

    def open_control(self) -> bool:
        """The live-control socket (``loggend ctl``), unless ``control_socket: off``."""
        path = socket_path(self.config.control_socket, os.getpid())
        if path is None:
            return True
        self.control = ControlServer(path, self.control_command, self.log, self.clock)
        if self.dashboard is not None and self.scenarios is not None and self.scenarios.detect:
            self.dashboard.detections = partial(webhook_detection, path)
        try:
            self.control.open()
            if self.config.control_socket == "auto":
                sweep_stale(os.path.dirname(path))           # left by runs that were killed
        except (ControlError, OSError) as err:
            self.control = None
            why = str(err) if isinstance(err, ControlError) else f"control socket {path}: {err.strerror or err}"
            if self.config.control_socket == "auto":     # best effort (a read-only /tmp in a container)
                self.log(f"{why}; running without live control (control_socket: a writable path gives it)",
                         WARNING)
                return True
            self.fail(f"{why}; stopping")
            return False
        self.log(f"control socket: {path} (loggend ctl rate|pause|resume|status)")
        return True

    def control_command(self, line: str, peer: Peer) -> dict[str, Any]:
        """A control-socket request: the scenarios' (``inject``, ``detected``) here, the rest live control's."""
        verb, _, arg = line.strip().partition(" ")
        if verb not in ("inject", "detected"):
            return self.live.command(line, peer)
        try:
            if self.scenarios is None:
                raise UsageError(f"{verb}: this run injects no scenarios (run it with --scenario or --inject)")
            if verb == "inject":
                message = self.scenarios.inject(arg)
            else:
                by = "webhook" if peer.pid in self.children.pids(K.WEB) else f"ctl, pid {peer.pid}"
                message = self.scenarios.detected(arg, by, time.time())
        except UsageError as err:
            return {"ok": False, "usage": True, "message": str(err)}
        self.log(message)
        return {"ok": True, "message": message, "status": self.live.status()}

    def counters(self, now_ns: int) -> dict[str, object]:
        """What ``loggend ctl status`` adds to the plan's state: the run's counts so far."""
        sink, snaps = self.shared.sink_totals(), self.shared.snapshots()
        return {"pid": os.getpid(), "workers": self.config.workers, "target": self.config.target,
                "sent": sum(s.sent for s in snaps), "planned": self.workers.planned(now_ns),
                "worker_pids": [s.pid if s.state in (C.STATE_READY, C.STATE_RUNNING) else 0
                                for s in snaps[:self.config.workers]],
                "blocked_ns": sum(s.blocked_ns for s in snaps), "possibly_lost": sum(s.possibly_lost for s in snaps),
                "sink": None if sink is None else {"received": sink.received, "lost": sink.lost}}

    def close_dashboard(self) -> None:
        self.children.stop(self.children.pids(K.WEB), GRACEFUL_TIMEOUT)
        self.children.cancel(lambda key: key[0] != K.WEB)
        if self.dashboard is not None:
            self.dashboard.close()
            self.dashboard = None
        self.workers.close_in_child = self.sinks.close_in_child = ()

    # --- watching ------------------------------------------------------------------------------------

    def reap_children(self) -> None:
        for child, status in self.children.reap():
            if not self.stopping:
                self.after_exit(child, status)

    def after_exit(self, child: Child, status: int) -> None:
        now_ns = time.monotonic_ns()
        self.aborted.pop(child.pid, None)
        wanted = child.kind != K.WORKER or self.workers.wanted(child, now_ns)
        verdict = ChildSet.verdict(child, status, wanted, bool(self.config.duration))
        if child.kind == K.SINK:
            self.sink_watch.ended(child, status)
        if verdict == K.FATAL:
            what = {K.WORKER: "start sending to", K.SINK: "listen on"}.get(child.kind, "serve on")
            where = self.dashboard.url if child.kind == K.WEB and self.dashboard else self.config.target
            self.fail(f"{self.children.label(child.kind, child.index)} could not {what} {where}; stopping")
        elif verdict == K.RESTART:
            self.web_restarts += child.kind == K.WEB
            if child.kind == K.WORKER:
                self.workers.died(child, now_ns)
            self.children.schedule_restart(child, status, " (sending goes on)" if child.kind == K.WEB else "")

    def manage_children(self) -> None:
        """Spawn the children whose restart is due."""
        for kind, index in self.children.due():
            if kind == K.WORKER:
                for worker in self.workers.members(index):
                    self.shared.block.slot(worker)[C.RESTARTS] += 1
            self.children.spawn(kind, index)

    def murder_hung(self) -> None:
        """SIGABRT workers whose heartbeat stopped (their stack goes to the log), SIGKILL them if that
        does not end them; the reaper then restarts them."""
        hung = self.children.hung(K.WORKER, self.workers.heartbeat, self.config.hung_timeout, BOOT_SECONDS,
                                  progress=self.workers.setup_progress)
        for child, what, age in hung:
            sent = abort_then_kill(child, self.aborted, ABORT_GRACE, self.clock())
            if sent:
                self.log(f"{self.workers.label(child.index)} (pid {child.pid}) is hung: {what} for {age:.1f} s; "
                         f"{sent}", WARNING)
        self.sink_watch.kill_hung(self.children, self.sinks.spec, self.config.hung_timeout, BOOT_SECONDS, self.aborted,
                                  ABORT_GRACE)

    # --- reporting -----------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return self.config.run_id or self.generated_run_id

    def publish_board(self) -> None:
        now_ns = time.monotonic_ns()
        self.shared.publish(self.config, run_id=self.run_id, version=__version__, reloads=self.reloads,
                            web_restarts=self.web_restarts,
                            memory_bytes=self.memory.current, peak_memory_bytes=self.memory.peak,
                            state="stopping" if self.stopping else "running",
                            target_rate=self.workers.target_rate(now_ns), paused=self.live.state(now_ns) == "paused",
                            scenarios=self.scenario_figures())

    def scenario_figures(self) -> dict[str, object] | None:
        """What the board (and /metrics) says of the scenarios: per scenario, and whether detection is on."""
        if self.scenarios is None:
            return None
        return {"detect": bool(self.scenarios.detect), "by_scenario": self.scenarios.tally.figures(time.time())}

    def check_memory(self) -> None:
        """Add up the PSS of this process and its children; over the limit, stop (once: the last
        measure, for the summary's peak, comes when the run is stopping already)."""
        pids = [os.getpid(), *self.children.pids()]
        total = self.memory.measure(pids)
        if self.memory.over and not self.stopping:
            self.fail(f"memory limit exceeded: {format_size(total)} in {plural(len(pids), 'process', 'processes')} > "
                      f"{format_size(self.memory.limit)}; stopping")

    def announce_ready(self, now: float) -> None:
        """Every worker sends: the ready file, READY=1, the log line, the starting shell (--daemon)."""
        if not self.write_file(self.ready_path, "ready file", {
                "pid": os.getpid(), "dashboard": self.dashboard.url if self.dashboard else None,
                "target": self.config.target, "started_unix": self.shared.started_unix,
                "control_socket": self.control.path if self.control else None}):
            self.fail("the ready file cannot say the run is up; stopping")      # a script would wait for ever
            return
        if self.ready_path:
            self.ready_written = identity(self.ready_path)
        self.ready = True
        text = f"sending to {self.config.target}"
        self.notifier.ready(text)
        web = f"; dashboard {self.dashboard.url}/" if self.dashboard else ""
        self.log(f"ready: {self.config.workers} of {self.config.workers} workers {text} "
                 f"({now - self.shared.started:.1f} s after start){web}")
        if self.on_ready is not None:
            self.on_ready(text + web)

    def live_interval(self) -> float:
        """Seconds between live lines on stdout: the config's, or by what stdout is."""
        if self.config.live_interval:
            return self.config.live_interval
        isatty = getattr(self.out, "isatty", None)
        return LIVE_TTY_SECONDS if isatty is not None and isatty() else LIVE_PIPE_SECONDS

    def tick(self, live: LiveLine, now: float) -> None:
        """Once a second: READY, the live line and STATUS, the memory check, the board, the overrun."""
        snaps = self.shared.snapshots()
        if not self.ready and all(s.state == C.STATE_RUNNING for s in snaps[:self.config.workers]):
            self.announce_ready(now)
        now_ns = time.monotonic_ns()
        target = target_text(self.workers.target_rate(now_ns), self.live.state(now_ns))
        line = live.line(now, snaps, self.config.workers, self.shared.sink_totals(), target,
                         set(self.children.pids(K.WORKER)))
        # a tick comes every REPORT_SECONDS, give or take the loop's latency: half a tick of slack
        if not self.config.quiet and now - self.live_printed >= self.live_interval() - REPORT_SECONDS / 2:
            print(line, file=self.out, flush=True)
            self.live_printed = now
        self.notifier.status(line.strip())
        self.sink_watch.watch_ports(self.sinks.spec, len(self.children.pids(K.SINK)))
        self.check_memory()
        self.publish_board()
        self.workers.account_down(time.monotonic_ns())
        self.shared.note_first_send()
        if self.workers.over(time.monotonic_ns() - round(OVERRUN_SECONDS * 1e9)):
            self.log(f"workers still running {OVERRUN_SECONDS:g} s after the end of the run; stopping them",
                     WARNING)
            self.stop()

    def remove_ready_file(self) -> None:
        """A ready file says a run is up: none before it is (what is there was claimed at the start),
        none after it ended (ours only: not a file put in its place since)."""
        if not self.ready_path:
            return
        try:
            if not self.ready_written or identity(self.ready_path) == self.ready_written:
                os.unlink(self.ready_path)
        except OSError:
            pass

    def write_file(self, path: str, what: str, doc: dict[str, object]) -> bool:
        """Whether ``doc`` is in ``path`` (or none was asked for); a failure is logged."""
        if not path:
            return True
        try:
            write_json(path, doc)
        except OSError as err:
            self.log(f"cannot write the {what} {path}: {err.strerror}", ERR)
            return False
        return True

    # --- stopping and reloading ----------------------------------------------------------------------

    def fail(self, line: str) -> None:
        self.log(line, ERR)
        self.failure = self.failure or line
        self.exit_code = EXIT_FAILURE
        self.stop()

    def stop(self) -> None:
        """Workers first, then the helpers: a local sink drains what the workers sent last."""
        if self.stopping:
            return
        self.stopping = True
        self.notifier.stopping()
        self.children.pending.clear()
        self.children.stop(self.children.pids(K.WORKER), GRACEFUL_TIMEOUT)
        self.sink_watch.stop(self.children, self.sinks.spec, GRACEFUL_TIMEOUT)
        self.children.stop(self.children.pids(), GRACEFUL_TIMEOUT)

    def reload(self) -> None:
        """Re-read the config and apply what changed; an invalid one is logged and the running one kept.

        A new rate or duration is a new plan (nobody restarts); new workers (any other change to
        what they send or where) take over from the old ones without a silent moment; the web
        process and the local sinks are restarted only when their own keys change.
        """
        if self.loader is None:
            self.log("reload: no config to re-read; ignored")
            return
        self.notifier.reloading()
        try:
            spec, new = self.local_tls.apply(self.loader())
        except (UsageError, PkiError) as err:
            self.log(f"reload: {err}; keeping the running config", ERR)
            self.notifier.ready()
            return
        changes = self.config.changes(new)
        if changes & FIXED:
            self.log(f"reload: instance {new.instance}/{new.instances}: a fleet's split cannot change while it "
                     f"runs (this is {self.config.instance}/{self.config.instances}); keeping the running config", ERR)
            self.notifier.ready()
            return
        self.log(f"reload: {new.describe()}" if changes else "reload: config unchanged", NOTICE)
        if changes & NEXT_START:
            self.log("reload: control_socket applies at the next start; the socket stays where it is", WARNING)
            new = replace(new, control_socket=self.config.control_socket)
            changes -= NEXT_START
        if changes & WEB_FIELDS:
            self.close_dashboard()
        if changes & SINK_FIELDS:
            self.sink_watch.stop(self.children, self.sinks.spec, GRACEFUL_TIMEOUT)
            self.children.cancel(lambda key: key[0] != K.SINK)
        self.children.failures.clear()
        self.reloads += bool(changes)
        self.memory.limit = new.memory_limit
        self.shared.slots_used = max(self.shared.slots_used, new.workers)
        old, self.config, self.sinks.spec = self.config, new, spec
        if changes & SINK_FIELDS and not self.spawn_sinks():
            return
        if changes - IN_PLACE - WEB_FIELDS - OUTPUT_FIELDS - {"local_sink", "sink_processes"}:
            self.workers.hand_over(new, self.children, time.monotonic_ns,
                                   lambda pids: self.children.stop(pids, GRACEFUL_TIMEOUT))
        elif changes & IN_PLACE:
            self.workers.change_in_place(new, time.monotonic_ns())
        if changes & WEB_FIELDS:
            self.open_dashboard()
        self.publish_board()
        self.notifier.ready()
        del old

    # --- main loop -----------------------------------------------------------------------------------

    def start(self) -> bool:
        self.signals.install(HANDLED_SIGNALS)
        set_process_name("loggend-run")
        self.remove_ready_file()
        self.log(f"config {self.config.source}: {self.config.describe()}")
        if self.config.protocol != "udp" and self.config.worker_processes < self.config.workers:
            self.log(f"{self.config.protocol}: several workers per process: a receiver that pushes back (each send "
                     f"waits up to 0.1 s) holds up the other workers of its process", WARNING)
        if self.config.profile().unlimited and not self.config.duration:
            self.log("rate 0 and duration 0: sending as fast as it can, until stopped (set rate and duration, "
                     "e.g. --rate 10k --duration 5m, for a bounded run)", WARNING)
        if not self.bind_dashboard():
            return False
        try:
            self.sinks.spec, self.config = self.local_tls.apply(self.config)
        except PkiError as err:
            self.fail(f"local sink: {err}")
            return False
        self.workers.config = self.config
        if self.config.optimize:
            self.tuning.apply()
        self.workers.render_corpus()
        if self.workers.corpus is not None and not len(self.workers.corpus):
            self.fail("sources: no message of the mix fits max_length: nothing to send")   # never a worker's loop
            return False
        self.shared.start(self.clock(), self.config.workers)
        if not self.open_control() or not self.spawn_sinks():
            return False
        self.publish_board()
        self.workers.publish(self.workers.plan)
        for process in range(self.config.worker_processes):
            self.children.spawn(K.WORKER, process)
        return self.open_dashboard()

    def spawn_injector(self) -> None:
        """The scenarios' sender, beside the workers (their hot path is left alone), spawned once the
        workers' plan has started: a scenario's ``at`` counts from when the background starts."""
        if self.scenarios is None or self.scenarios.process is not None or not self.workers.plan.started:
            return
        c = self.config
        if c.protocol == "tls":
            self.log("scenarios: the injector sends over UDP or TCP only; TLS targets get no scenarios", WARNING)
            return
        m = c.messages
        background = Background(seed=m.seed, hosts=m.hosts, mix=tuple(name for name, _ in m.sources), form=m.form,
                                engine_format=m.format)
        self.scenarios.configure(c.host, c.ports[0], c.protocol, c.framing,
                                 stream_prefix(c.instance, c.instances) + INJECTOR_STREAM, m.timezone == "utc",
                                 background)
        process = self.scenarios.process
        assert process is not None
        process.start = time.time() + (self.workers.run_start_ns - time.monotonic_ns()) / 1e9
        process.until = process.start + c.duration if c.duration else float("inf")
        self.children.spawn(INJECTOR, 0)
        if self.scenarios.detect:
            self.children.spawn(DETECTOR, 0)

    def running(self) -> bool:
        return not self.stopping and bool(self.children.pids(K.WORKER) or self.children.has_pending(K.WORKER))

    def run(self) -> int:
        if self.start():
            live = LiveLine(self.shared.started)
            next_report = self.shared.started + REPORT_SECONDS
            next_ping = self.shared.started
            while True:
                self.dispatch_signals()
                self.reap_children()
                if not self.running():
                    break
                self.manage_children()
                self.murder_hung()
                now = self.clock()
                if now >= next_report:
                    self.tick(live, now)
                    next_report += REPORT_SECONDS
                if self.notifier.watchdog_interval and now >= next_ping:
                    self.notifier.watchdog()
                    next_ping = now + self.notifier.watchdog_interval
                look = self.workers.start_when_ready(time.monotonic_ns())
                self.spawn_injector()
                wake = min([next_report, *self.children.pending.values(), self.clock() + look])
                if self.notifier.watchdog_interval:
                    wake = min(wake, next_ping)
                self.serve_control(wake)
        return self.finish()

    def serve_control(self, wake: float) -> None:
        """Sleep until ``wake``, a signal or a control request; answer the requests that came."""
        if self.control is None:
            self.signals.wait(wake - self.clock())
            return
        deadline = self.control.deadline()
        ready = self.signals.wait(min(wake, deadline or wake) - self.clock(), self.control.fds())
        changes = self.live.changes
        self.control.service(ready)
        if self.live.changes != changes:
            self.publish_board()                   # the dashboard's target follows at once

    def finish(self) -> int:
        self.stop()
        if self.control is not None:
            self.control.close()
        if self.dashboard is not None:
            self.dashboard.close()
        if self.shared.started and self.children.ever(K.WORKER):   # else refused before anything was sent
            self.check_sent()
            self.report()
        self.remove_ready_file()
        self.tuning.restore()
        self.local_tls.close()
        return self.exit_code

    def check_sent(self) -> None:
        """A run that ended by itself having sent nothing of what was due failed: say why, exit 1."""
        if self.exit_code != EXIT_OK or self.asked_to_stop:
            return
        snaps = self.shared.snapshots()[:self.config.workers]
        now_ns = time.monotonic_ns()
        line = nothing_sent(sum(s.sent for s in snaps), self.workers.plan.started, self.workers.planned(now_ns),
                            sum(s.state in READY_STATES or s.sent > 0 for s in snaps), len(snaps),
                            self.clock() - self.shared.started)
        if line:
            self.fail(line)

    def report(self) -> None:
        """The summary on stdout and in --summary-json."""
        self.check_memory()
        now_ns = time.monotonic_ns()
        self.workers.account_down(now_ns, final=True)
        self.shared.note_first_send()
        totals = self.shared.totals(self.config, self.memory.peak, self.clock(), self.workers.planned(now_ns),
                                    self.workers.start_at, self.workers.requested_start_ns, self.run_id,
                                    self.live.changes, self.live.paused_seconds(now_ns))
        if self.live.changes:
            totals = replace(totals, live_last=describe(self.live.following()))
        print(summary(totals), file=self.out, flush=True)
        document = totals.document()
        if self.scenarios is not None:
            sent = self.scenarios.sent()
            print("\n".join(summary_lines(sent)), file=self.out, flush=True)
            document["scenarios"] = [s.as_dict() for s in sent]
            if self.scenarios.detect:
                found = self.scenarios.verdicts(time.time())
                print("\n".join(verdict_lines(found, self.scenarios.detect_timeout)), file=self.out, flush=True)
                document["detection"] = {"timeout_seconds": self.scenarios.detect_timeout,
                                         "by": [d.describe() for d in self.scenarios.detect],
                                         "instances": [v.as_dict() for v in found]}
            self.scenarios.close()
        if not self.write_file(self.summary_path, "summary", document) and self.exit_code == EXIT_OK:
            self.exit_code = EXIT_REPORT_FAILED
