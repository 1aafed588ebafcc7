"""The arbiter of ``loggend run``: forks the workers, watches them, turns signals into actions, reports.

It runs on the loop shared with ``loggend sink`` (``loggend.control.loop``: a turn that drains
the signal queue into ``handle_<signal>()``, reaps, restarts what is due, kills the hung, advances
what is in progress, ticks once a second and pings the watchdog, never blocking). Children are
kept by kind in a ``ChildSet`` (workers, local sink processes, the web process), whose exit
policy says whether an exit is done, fatal or to be restarted. Workers and sinks write their
counter slots; this process only reads them and owns each worker slot's RESTARTS field. A
reload that needs new workers is a ``HandOver`` the loop advances a step per turn.

The message corpus is rendered here once, before the workers fork, so that 40 workers start
sending within a second or two instead of each rendering its own messages.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TextIO

from loggend import settings
from loggend.config import FIXED, HAND_OVER_FIELDS, IN_PLACE, NEXT_START, SINK_FIELDS, WEB_FIELDS, Config
from loggend.control import children as K
from loggend.control.children import GRACEFUL_TIMEOUT, Child, ChildSet
from loggend.control.ctlsocket import ControlError, ControlServer, Handler, socket_path, sweep_stale
from loggend.control.handover import HandOver
from loggend.control.loop import ABORT_GRACE, BOOT_SECONDS, REPORT_SECONDS, Loop
from loggend.control.memory import MemoryWatch
from loggend.control.pki import PkiError
from loggend.control.ratecontrol import RateControl
from loggend.control.runfiles import RunFiles, claim_outputs
from loggend.control.runreport import RunReport, nothing_sent
from loggend.control.scenariorun import ScenarioRun
from loggend.control.shared import STREAM_WIDTH, SharedRun
from loggend.control.sinks import LocalSinkTls, SinkProcesses
from loggend.control.sinkwatch import SinkWatch
from loggend.control.systemd import Notifier
from loggend.control.tuning import STATE_PATH, RunTuning
from loggend.control.workers import Workers
from loggend.engine.journal import ERR, NOTICE, WARNING, Log
from loggend.engine.procsetup import set_process_name
from loggend.errors import EXIT_OK, EXIT_REPORT_FAILED, UsageError
from loggend.parsers import format_ports
from loggend.sink.sinkspec import SinkSpec
from loggend.web.child import WebSettings

OVERRUN_SECONDS = 15.0       # past the end of a timed run, stop whatever is still running

__all__ = ["Supervisor", "claim_outputs", "nothing_sent", "reload_steps"]


Loader = Callable[[], Config]


@dataclass(frozen=True)
class ReloadSteps:
    """What a reload's changed keys ask for (``Config.changes``)."""
    web: bool          # restart the web process
    sinks: bool        # restart the local sinks
    hand_over: bool    # new workers take over from the running ones
    in_place: bool     # a new plan for the running workers (only without a hand-over)


def reload_steps(changes: frozenset[str] | set[str]) -> ReloadSteps:
    hand_over = bool(changes & HAND_OVER_FIELDS)
    return ReloadSteps(web=bool(changes & WEB_FIELDS), sinks=bool(changes & SINK_FIELDS), hand_over=hand_over,
                       in_place=not hand_over and bool(changes & IN_PLACE))


def open_control(setting: str, handler: Handler, log: Log,
                 clock: Callable[[], float]) -> tuple[ControlServer | None, str]:
    """The live-control socket (``loggend ctl``): (the server, "") or (None, "") when it is off or, for
    ``auto``, cannot be had (a read-only /tmp in a container: said); (None, why) when the path asked
    for cannot be opened (the run stops)."""
    path = socket_path(setting, os.getpid())
    if path is None:
        return None, ""
    control = ControlServer(path, handler, log, clock)
    try:
        control.open()
        if setting == "auto":
            sweep_stale(os.path.dirname(path))           # left by runs that were killed
    except (ControlError, OSError) as err:
        why = str(err) if isinstance(err, ControlError) else f"control socket {path}: {err.strerror or err}"
        if setting == "auto":     # best effort
            log(f"{why}; running without live control (control_socket: a writable path gives it)", WARNING)
            return None, ""
        return None, f"{why}; stopping"
    log(f"control socket: {path} (loggend ctl rate|pause|resume|status)")
    return control, ""


def read_reload(loader: Loader, running: Config, local_tls: LocalSinkTls, log: Log,
                live: RateControl | None = None) -> tuple[SinkSpec, Config, frozenset[str]] | None:
    """A reload's new config, the local sink's spec for it and what changed; None (said why) when the
    running config stays: an invalid one, a fleet's split changed, or a rate past the bounds unforced."""
    def refuse(line: str) -> None:      # said, and what ``loggend ctl reload`` answers
        log(line, ERR)
        if live is not None:
            live.reload_outcome = (False, line)
    forced = live.take_force() if live is not None else False
    try:
        spec, new = local_tls.apply(loader())
    except (UsageError, PkiError) as err:
        refuse(f"reload: {err}; keeping the running config")
        return None
    changes = running.changes(new)
    if changes & FIXED:
        refuse(f"reload: instance {new.instance}/{new.instances}: a fleet's split cannot change while it "
               f"runs (this is {running.instance}/{running.instances}); keeping the running config")
        return None
    if live is not None and (why := live.reload_bound(running.profile(), new.profile(), new.max_rate, forced)):
        refuse(f"reload: {why}; keeping the running config (loggend ctl reload --force applies it)")
        return None
    said = f"reload: {new.describe()}" if changes else "reload: config unchanged"
    log(said, NOTICE)
    if live is not None:
        live.reload_outcome = (True, said)
    if changes & NEXT_START:
        kept = sorted(changes & NEXT_START)
        if "control_socket" in kept:
            log("reload: control_socket applies at the next start; the socket stays where it is", WARNING)
        if set(kept) - {"control_socket"}:
            log(f"reload: {', '.join(k for k in kept if k != 'control_socket')} apply at the next start; the run "
                "goes on with its own", WARNING)
        new = replace(new, **{name: getattr(running, name) for name in kept})
        changes -= NEXT_START
    return spec, new, changes


def local_sinks(c: Config, shared: SharedRun, sinks: SinkProcesses, watch: SinkWatch) -> int:
    """Set the local sinks up for ``c``: how many there are (0: none)."""
    count = c.sink_processes if c.local_sink else 0
    shared.sink_slots = max(shared.sink_slots, count)      # a reload to fewer keeps the counts
    sinks.cpus = list(c.sink_cpus or c.cpus or sorted(os.sched_getaffinity(0)))
    watch.share, watch.count = c.sink_share_ports, count
    return count


def say_config(c: Config, log: Log) -> None:
    """The config's line at the start, and what in it deserves a warning."""
    log(f"config {c.source}: {c.describe()}")
    if c.protocol != "udp" and c.worker_processes < c.workers:
        log(f"{c.protocol}: several workers per process: a receiver that pushes back (each send "
            f"waits up to 0.1 s) holds up the other workers of its process", WARNING)
    if len(c.ports) > 1 and c.ports == settings.default_value("ports") and not c.local_sink:
        log(f"sending to {len(c.ports)} ports of {c.host} ({format_ports(c.ports)}, the default: one per worker); "
            f"a SIEM usually has one input: --ports 514 sends every worker there", NOTICE)
    if any(d.kind == "webhook" for d in c.detect) and not c.dashboard_token:
        log("detect webhook without dashboard_token: anyone who reaches the dashboard can post a detection "
            "(set dashboard_token, or LOGGEN_DASHBOARD_TOKEN)", WARNING)
    if c.profile().unlimited and not c.duration:
        log("rate 0 and duration 0: sending as fast as it can, until stopped (set rate and duration, "
            "e.g. --rate 10k --duration 5m, for a bounded run)", WARNING)


class Supervisor(Loop):
    signals_handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self, config: Config, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 clock_ns: Callable[[], int] = time.monotonic_ns, notifier: Notifier | None = None,
                 loader: Loader | None = None, summary_path: str = "", ready_path: str = "",
                 tuning_state: str = STATE_PATH, on_ready: Callable[[str], None] | None = None,
                 start_at: float | None = None) -> None:
        super().__init__(out, err, clock_ns, notifier)
        self.config, self.loader = config, loader
        self.tuning = RunTuning(self.log, tuning_state, under_systemd=self.notifier.enabled)
        self.memory = MemoryWatch(config.memory_limit)
        self.shared = SharedRun()
        self.local_tls = LocalSinkTls()
        self.sinks = SinkProcesses(SinkSpec(config.host, config.ports), self.shared.sink_block, [], self.log,
                                   (out, err), streams=self.shared.stream_block, announced=STREAM_WIDTH,
                                   width=STREAM_WIDTH)
        self.sink_watch = SinkWatch(self.shared.sink_block, self.log, config.sink_share_ports, self.clock)
        self.workers = Workers(config, self.shared, self.log, (out, err), start_at=start_at)
        self.children.register(K.WORKER, self.workers.spawn, self.workers.label)
        self.children.register(K.SINK, self.sinks.spawn, lambda i: f"local sink {i}")
        self.files, self.on_ready = RunFiles(ready_path, summary_path, self.log), on_ready
        self.report = RunReport(self.shared, self.workers, self.children, self.memory, self.notifier, self.files,
                                out, clock_ns, self.log)
        self.live = self.report.live = RateControl(self.workers, self.log, lambda now_ns: self.report.status(
            self.config, now_ns), clock_ns, reloader=self.handle_sighup)
        self.scenarios = self.report.scenarios = ScenarioRun(config, self.log, (out, err), self.children)
        self.handover: HandOver | None = None     # a reload's hand-over in progress
        self.reload_waiting = False               # a SIGHUP came during a hand-over: reload after it
        self.ready = False

    # --- signals -------------------------------------------------------------------------------------

    def handle_sigterm(self) -> None:
        self.asked_to_stop = True
        self.stop()

    handle_sigint = handle_sigterm

    def handle_sighup(self) -> None:
        if self.handover is not None:
            self.log(f"reload: a hand-over is under way ({self.handover.state}); this reload follows it", NOTICE)
            self.reload_waiting = True
            return
        self.reload()

    def handle_sigusr1(self, factor: float = 2.0, name: str = "SIGUSR1") -> None:
        self.live.scale(factor, name)
        self.publish_board()

    def handle_sigusr2(self) -> None:
        self.handle_sigusr1(0.5, "SIGUSR2")

    # --- children ------------------------------------------------------------------------------------

    def spawn_sinks(self) -> bool:
        """Start the local sinks and wait until they receive; False (the run stops) when they cannot."""
        count = local_sinks(self.config, self.shared, self.sinks, self.sink_watch)
        if not self.start_sinks(self.sinks, self.sink_watch, count, self.reap_children):
            self.fail("local sink: not receiving; stopping")
            return False
        return True

    def after_exit(self, child: Child, status: int) -> None:
        self.aborted.pop(child.pid, None)
        if self.handover is not None and self.handover.owns(child.pid):
            return                                # retired by the hand-over
        now_ns = self.clock_ns()
        wanted = child.kind != K.WORKER or self.workers.wanted(child, now_ns)
        verdict = ChildSet.verdict(child, status, wanted, bool(self.config.duration))
        if child.kind == K.SINK:
            self.sink_watch.ended(child, status)
        if verdict == K.FATAL:
            what = {K.WORKER: "start sending to", K.SINK: "listen on"}.get(child.kind, "serve on")
            where = self.dashboard.url if child.kind == K.WEB and self.dashboard else self.config.target
            self.fail(f"{self.children.label(child.kind, child.index)} could not {what} {where}; stopping")
        elif verdict == K.RESTART:
            self.report.web_restarts += child.kind == K.WEB
            if child.kind == K.WORKER:
                self.workers.died(child, now_ns)
            self.children.schedule_restart(child, status, " (sending goes on)" if child.kind == K.WEB else "")

    def respawn(self, kind: str, index: int) -> None:
        if kind == K.WORKER:
            self.workers.count_restart(index)
        self.children.spawn(kind, index)

    def murder_hung(self) -> None:
        """SIGABRT workers whose heartbeat stopped (their stack goes to the log), SIGKILL them if that
        does not end them; the reaper then restarts them. A hand-over's old workers are its own."""
        hung = self.children.hung(K.WORKER, self.workers.heartbeat, self.config.hung_timeout, BOOT_SECONDS,
                                  progress=self.workers.setup_progress)
        self.abort_hung([h for h in hung if self.handover is None or not self.handover.minds(h[0].pid)],
                        self.workers.label)
        self.sink_watch.kill_hung(self.children, self.sinks.spec, self.config.hung_timeout, BOOT_SECONDS, self.aborted,
                                  ABORT_GRACE)

    def advance(self) -> float:
        """The hand-over in progress, else the start of the plan once every worker is ready."""
        if self.handover is None:
            return self.workers.start_when_ready(self.clock_ns())
        look = self.handover.advance()
        if self.handover.done:
            self.handover = None
            self.publish_board()
            self.notifier.ready()
            if self.reload_waiting:
                self.reload_waiting = False
                self.reload()
            return 0.0
        return look

    # --- reporting -----------------------------------------------------------------------------------

    def publish_board(self) -> None:
        self.report.publish_board(self.config, self.stopping)

    def after_control(self) -> None:
        if self.live.changes != self.report.live_shown:
            self.publish_board()                   # the dashboard's target follows at once

    def check_memory(self) -> None:
        """Over the memory limit, stop (once: the last measure, for the summary's peak, comes when the
        run is stopping already)."""
        line = self.report.measure_memory(self.pulse)
        if line and not self.stopping:
            self.fail(line)

    def announce_ready(self, now: float) -> None:
        """Every worker sends: the ready file, READY=1, the log line, the starting shell (--daemon)."""
        line = self.report.announce(self.config, now, self.dashboard.url if self.dashboard else "",
                                    self.control.path if self.control else None, self.log)
        if line is None:
            self.fail("the ready file cannot say the run is up; stopping")      # a script would wait for ever
            return
        self.ready = True
        if self.on_ready is not None:
            self.on_ready(line)

    def tick(self, now: float) -> None:
        """Once a second: READY, the live line and STATUS, the memory check, the board, the overrun."""
        if not self.ready and self.report.all_running(self.config):
            self.announce_ready(now)
        self.report.show_live(self.config, now)
        self.scenarios.spawn(self.config, self.workers)      # once the plan has started: `at` counts from there
        self.sink_watch.watch_ports(self.sinks.spec, len(self.children.pids(K.SINK)))
        self.report.refusals.look_at(self.handover.sending if self.handover else self.config, self.shared.snapshots(),
                                     now)                   # a hand-over's ports are its old ones until it is done
        self.check_memory()
        self.publish_board()
        now_ns = self.clock_ns()
        self.workers.account_down(now_ns)
        self.shared.note_first_send()
        if self.workers.over(now_ns - round(OVERRUN_SECONDS * 1e9)):
            self.log(f"workers still running {OVERRUN_SECONDS:g} s after the end of the run; stopping them",
                     WARNING)
            self.stop()

    # --- stopping and reloading ----------------------------------------------------------------------

    def stop(self) -> None:
        """Workers first (a hand-over's old and new alike), then the helpers (a local sink drains their last)."""
        if self.stopping:
            return
        self.stopping = True
        self.handover = None
        self.notifier.stopping()
        self.children.pending.clear()
        self.stop_children(self.children.pids(K.WORKER))
        self.sink_watch.stop(self.children, self.sinks.spec, GRACEFUL_TIMEOUT)
        self.stop_children(self.children.pids())

    def reload(self) -> None:
        """Re-read the config and apply what changed; an invalid one is logged and the running one kept.

        A new rate or duration is a new plan (nobody restarts); new workers (any other change to what they
        send or where) take over from the old ones without a silent moment, as a ``HandOver`` the loop
        advances (READY=1 when done); the web process and the local sinks restart only when their keys change."""
        if self.loader is None:
            self.log("reload: no config to re-read; ignored")
            return
        self.notifier.reloading()
        read = read_reload(self.loader, self.config, self.local_tls, self.log, self.live)
        if read is None:
            self.notifier.ready()
            return
        spec, new, changes = read
        steps = reload_steps(changes)
        if steps.web:
            self.close_dashboard()
        if steps.sinks:
            self.sink_watch.stop(self.children, self.sinks.spec, GRACEFUL_TIMEOUT)
            self.children.cancel(lambda key: key[0] != K.SINK)
        self.children.failures.clear()
        self.report.reloads += bool(changes)
        self.memory.limit = new.memory_limit
        self.shared.slots_used = max(self.shared.slots_used, new.workers)
        self.config, self.sinks.spec = new, spec
        if steps.sinks and not self.spawn_sinks():
            return
        if steps.hand_over:
            self.handover = HandOver(self.workers, new, self.children, self.pulse)
        elif steps.in_place:
            self.workers.change_in_place(new, self.clock_ns())
        if steps.web:
            self.open_dashboard()
        self.publish_board()
        if self.handover is None:
            self.notifier.ready()

    # --- the web process and the control socket ------------------------------------------------------

    def bind_dashboard(self) -> bool:
        c = self.config
        settings = None if c.dashboard is None else WebSettings(
            c.dashboard[0], c.dashboard[1], c.dashboard_token, c.dashboard_origins, c.dashboard_interval,
            c.dashboard_hosts)
        if not self.bind_web(settings, self.shared.sources):
            return False
        self.workers.close_in_child = self.sinks.close_in_child = self.dashboard.sockets() if self.dashboard else ()
        return True

    def open_dashboard(self) -> bool:
        """Bind the dashboard's socket if not yet bound, and start the web process on it."""
        if self.dashboard is None and not self.bind_dashboard():
            return False
        self.scenarios.wire(self.dashboard, self.control)
        self.spawn_web("dashboard")
        return True

    def close_dashboard(self) -> None:
        super().close_dashboard()
        self.workers.close_in_child = self.sinks.close_in_child = ()

    def open_control(self) -> bool:
        self.control, why = open_control(self.config.control_socket, self.scenarios.handler(self.live), self.log,
                                         self.clock)
        if why:
            self.fail(why)
        return not why

    # --- start and finish ----------------------------------------------------------------------------

    def start(self) -> bool:
        set_process_name("loggend-run")
        self.files.remove_ready()
        say_config(self.config, self.log)
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
        self.report.start(self.shared.started)
        self.next_report = self.shared.started + REPORT_SECONDS
        if not self.open_control() or not self.spawn_sinks():
            return False
        self.publish_board()
        self.workers.publish(self.workers.plan)
        for process in range(self.config.worker_processes):
            self.children.spawn(K.WORKER, process)
        return self.open_dashboard()

    def running(self) -> bool:
        return not self.stopping and bool(self.children.pids(K.WORKER) or self.children.has_pending(K.WORKER))

    def finish(self) -> int:
        self.stop()
        if self.control is not None:
            self.control.close()
        if self.dashboard is not None:
            self.dashboard.close()
        if self.shared.started and self.children.ever(K.WORKER):   # else refused before anything was sent
            self.check_sent()
            self.summarise()
        self.files.remove_ready()
        self.tuning.restore()
        self.local_tls.close()
        return self.exit_code

    def check_sent(self) -> None:
        """A run that measured nothing (``RunReport.measured_nothing``) failed: exit 1."""
        line = self.report.measured_nothing(self.config, self.clock() - self.shared.started, self.asked_to_stop)
        if self.exit_code == EXIT_OK and line:
            self.fail(line)

    def summarise(self) -> None:
        """The summary on stdout and in --summary-json."""
        self.check_memory()
        if not self.report.summary(self.config, self.clock()) and self.exit_code == EXIT_OK:
            self.exit_code = EXIT_REPORT_FAILED
