"""The supervisor loop of ``loggend run`` and ``loggend sink``: one turn, the same for both.

The shape is gunicorn's arbiter: signal handlers only enqueue (a wake-up pipe ends the loop's
wait at once, so nothing polls); each turn drains the queue into ``handle_<signal>()``, reaps
the children that ended (``after_exit``), spawns the restarts that are due, kills the hung ones,
lets ``advance()`` move on whatever is in progress (a start, a reload's hand-over: states, never
waits), runs ``tick()`` once every ``REPORT_SECONDS``, pings the systemd watchdog, and sleeps
until the next of these is due, a signal comes or the control socket has a request
(``sleep_until``). A turn never blocks, so the watchdog is fed and ``loggend ctl`` answered
through a reload of any size.

The clock is a parameter (CLOCK_MONOTONIC in ns, which the counters' heartbeats are on), so the
loop runs in unit tests under a fake one.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from loggend.control.children import GRACEFUL_TIMEOUT, WEB, Child, ChildSet, abort_then_kill
from loggend.control.ctlsocket import ControlServer
from loggend.control.dashboard import Dashboard, DashboardError
from loggend.control.signals import SignalQueue
from loggend.control.sinks import SinkProcesses
from loggend.control.sinkwatch import SinkWatch
from loggend.control.systemd import Notifier
from loggend.engine import journal
from loggend.engine.journal import ERR, INFO, WARNING
from loggend.errors import EXIT_FAILURE, EXIT_OK
from loggend.report.sources import Sources
from loggend.web.child import WebSettings

REPORT_SECONDS = 1.0         # the live line, memory check and board period
BOOT_SECONDS = 30.0          # a child setting up with no sign of progress this long is hung
ABORT_GRACE = 2.0            # a hung child that SIGABRT did not end is SIGKILLed after this
START_TIMEOUT = 10.0         # sink processes must be receiving within this, or the command does not start
HUNG_LOOK_SECONDS = 0.25     # children are looked at for a stopped heartbeat this often (at most)
PING_EARLY = 0.5             # the watchdog is pinged this fraction of its interval early (a quarter of
                             # WatchdogSec): a turn slowed by a busy machine stays inside the half systemd asks
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)

__all__ = ["ABORT_GRACE", "BOOT_SECONDS", "GRACEFUL_TIMEOUT", "REPORT_SECONDS", "START_TIMEOUT", "Loop"]


class Loop:
    """The turn; a command supplies the ``handle_<signal>`` methods and the hooks below."""

    signals_handled: tuple[int, ...] = STOP_SIGNALS

    def __init__(self, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 clock_ns: Callable[[], int] = time.monotonic_ns, notifier: Notifier | None = None) -> None:
        self.out, self.err, self.clock_ns = out, err, clock_ns
        self.notifier = notifier or Notifier()
        self.signals = SignalQueue()
        self.children = ChildSet(self.log, clock_ns)
        self.control: ControlServer | None = None
        self.dashboard: Dashboard | None = None
        self.aborted: dict[int, float] = {}       # pid of a hung child -> when it was sent SIGABRT
        self.stopping = self.asked_to_stop = False       # asked: by SIGTERM / SIGINT (or the end it was given)
        self.exit_code = EXIT_OK
        self.failure = ""                         # the line that said why the command failed
        self.next_report = self.next_ping = self.next_hung = 0.0

    def clock(self) -> float:
        return self.clock_ns() / 1e9

    def log(self, line: str, level: int = INFO) -> None:
        journal.write(line, level, self.err)

    # --- hooks ---------------------------------------------------------------------------------------

    def start(self) -> bool:
        """Everything before the first turn; False: the command does not run (``finish`` still does)."""
        raise NotImplementedError

    def running(self) -> bool:
        """Whether to take another turn."""
        raise NotImplementedError

    def after_exit(self, child: Child, status: int) -> None:
        """A child was reaped (not while stopping)."""

    def murder_hung(self) -> None:
        """Kill the children whose heartbeat stopped (the reaper restarts them)."""

    def abort_hung(self, hung: list[tuple[Child, str, float]], label: Callable[[int], str]) -> None:
        """SIGABRT the ``hung`` children (their stack goes to the log), SIGKILL them if that does not
        end them within ``ABORT_GRACE``; the reaper then restarts them."""
        for child, what, age in hung:
            sent = abort_then_kill(child, self.aborted, ABORT_GRACE, self.clock())
            if sent:
                self.log(f"{label(child.index)} (pid {child.pid}) is hung: {what} for {age:.1f} s; {sent}", WARNING)

    def advance(self) -> float:
        """Move what is in progress one step; the seconds until it is worth a look again."""
        return float("inf")

    def tick(self, now: float) -> None:
        """Once every ``REPORT_SECONDS``."""

    def stop(self) -> None:
        """Stop every child (once)."""
        raise NotImplementedError

    def finish(self) -> int:
        """Stop, report; the exit status."""
        raise NotImplementedError

    # --- the turn ------------------------------------------------------------------------------------

    def run(self) -> int:
        self.signals.install(self.signals_handled)
        if self.start():
            now = self.clock()
            self.next_report = self.next_report or now + REPORT_SECONDS
            self.next_ping = now
            while self.turn():
                pass
        return self.finish()

    def turn(self) -> bool:
        """One turn of the loop; False when the command is to finish."""
        self.dispatch_signals()
        self.reap_children()
        if not self.running():
            return False
        self.manage_children()
        if self.clock() >= self.next_hung:
            self.murder_hung()
            self.next_hung = self.clock() + HUNG_LOOK_SECONDS
        look = self.advance()
        self.pulse()
        now = self.clock()
        if now >= self.next_report:
            self.tick(now)
            self.next_report += REPORT_SECONDS
            self.pulse()
        wake = min([self.next_report, *self.children.pending.values(), self.clock() + look])
        if self.notifier.watchdog_interval:
            wake = min(wake, self.next_ping)
        self.sleep_until(wake)
        return True

    def dispatch_signals(self) -> None:
        while not self.stopping and (name := self.signals.pop()) is not None:
            getattr(self, f"handle_{name}")()

    def handle_sigchld(self) -> None:
        self.reap_children()

    def reap_children(self) -> None:
        for child, status in self.children.reap():
            if not self.stopping:
                self.after_exit(child, status)

    def manage_children(self) -> None:
        """Spawn the children whose restart is due."""
        for kind, index in self.children.due():
            self.respawn(kind, index)

    def respawn(self, kind: str, index: int) -> None:
        self.children.spawn(kind, index)

    def pulse(self) -> None:
        """WATCHDOG=1 when it is due (also called from the few bounded waits outside the turn)."""
        interval = self.notifier.watchdog_interval
        now = self.clock()
        if interval and now >= self.next_ping:
            self.notifier.watchdog()
            self.next_ping = now + interval * (1 - PING_EARLY)

    def sleep_until(self, wake: float) -> None:
        """The loop's sleep: until ``wake``, a signal or a control request; the requests that came
        are answered."""
        if self.control is None:
            self.signals.wait(wake - self.clock())
            return
        deadline = self.control.deadline()
        ready = self.signals.wait(min(wake, deadline or wake) - self.clock(), self.control.fds())
        self.control.service(ready)
        self.after_control()

    def after_control(self) -> None:
        """After the control socket was served."""

    def stop_children(self, pids: list[int]) -> None:
        """SIGTERM, up to ``GRACEFUL_TIMEOUT``, SIGKILL; the watchdog is fed meanwhile."""
        self.children.stop(pids, GRACEFUL_TIMEOUT, self.pulse)

    def fail(self, line: str) -> None:
        self.log(line, ERR)
        self.failure = self.failure or line
        self.exit_code = EXIT_FAILURE
        self.stop()

    def start_sinks(self, sinks: SinkProcesses, watch: SinkWatch, count: int, between: Callable[[], object],
                    ports: tuple[int, ...] = ()) -> bool:
        """Spawn ``count`` sink processes and wait until all receive (up to ``START_TIMEOUT``, the
        watchdog fed, ``between`` run at every look); False when another socket receives on the
        ports (the command fails), or the sinks failed, or the command stops. ``ports``: the ports
        asked for, when the sinks' are others (``(0,)``: a free one, held by this process meanwhile)."""
        refused = watch.check_ports(replace(sinks.spec, ports=ports or sinks.spec.ports)) if count else ""
        if refused:
            self.fail(refused)
            return False

        def give_up() -> bool:
            between()
            self.pulse()
            return self.stopping or self.asked_to_stop or self.exit_code != EXIT_OK
        return sinks.start(self.children, count, START_TIMEOUT, give_up)

    # --- the web process -----------------------------------------------------------------------------

    def bind_web(self, settings: WebSettings | None, sources: Sources) -> bool:
        """Bind the dashboard's socket (before any child, kept across web restarts); False (said in
        one line, the command fails) when it is taken."""
        if settings is None:
            return True
        self.dashboard = Dashboard(settings, sources, self.log, (self.out, self.err))
        try:
            self.log(f"dashboard: {self.dashboard.open()}/ (metrics at /metrics)")
        except DashboardError as err:
            self.dashboard = None
            self.fail(str(err))
            return False
        return True

    def spawn_web(self, label: str) -> None:
        """The web process on the bound socket (restarted with back-off when it dies)."""
        if self.dashboard is not None:
            self.children.register(WEB, self.dashboard.spawn, lambda i: label)
            self.children.spawn(WEB, 0)

    def close_dashboard(self) -> None:
        self.stop_children(self.children.pids(WEB))
        self.children.cancel(lambda key: key[0] != WEB)
        if self.dashboard is not None:
            self.dashboard.close()
            self.dashboard = None
