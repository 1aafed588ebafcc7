"""The parent side of child processes: fork one, reap them, stop a group, and ``ChildSet``.

``ChildSet`` keeps a run's children by kind (``worker``, ``sink``, ``web``) and index: it spawns
them through the function registered for their kind, reaps them, decides what an exit means (the
exit policy below), restarts with a back-off that doubles per consecutive failure, finds the hung
ones by their heartbeat and stops them (SIGTERM, then SIGKILL after a grace period). The
supervisor and ``loggend sink`` both run their children through it.

Exit policy, in order:

* exit status ``EXIT_BOOT_FAILED``: the child cannot start at all (a worker cannot send, a sink
  cannot bind, the web process cannot serve); restarting cannot help: ``FATAL``.
* a child its owner no longer wants (retired by a reload, or the run is stopping): ``GONE``.
* a worker that exited 0 in a timed run has sent its share: ``DONE``.
* anything else (a crash, a kill, a hung child killed): ``RESTART`` after the back-off.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO

from loggend.engine import journal
from loggend.engine.journal import WARNING, Log
from loggend.errors import EXIT_BOOT_FAILED, EXIT_FAILURE

POLL_SECONDS = 0.01
GRACEFUL_TIMEOUT = 5.0       # SIGTERM -> SIGKILL for children that do not stop
BACKOFF_FIRST = 0.5          # first restart delay; doubles per consecutive failure
BACKOFF_MAX = 30.0
BACKOFF_RESET = 60.0         # a child that ran this long has its failure count forgiven
FATAL, GONE, DONE, RESTART = "fatal", "gone", "done", "restart"
WORKER, SINK, WEB = "worker", "sink", "web"


def fork_child(body: Callable[[], int], outputs: Iterable[TextIO] = (sys.stdout, sys.stderr)) -> int:
    """Fork; the child runs ``body`` and exits with its status (1 after an exception, printed).

    ``outputs`` are flushed first, so the child does not print the parent's buffered lines again.
    """
    for out in outputs:
        out.flush()
    pid = os.fork()
    if pid:
        return pid
    code = EXIT_FAILURE
    try:
        code = body()
    except BaseException:          # a child must never return into the parent's code
        journal.write(traceback.format_exc().rstrip("\n"), journal.ERR)
    finally:
        os._exit(code)


def exited() -> Iterator[tuple[int, int]]:
    """(pid, wait status) of every child that has exited, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def kill_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_all(pids: list[int], alive: Callable[[int], bool], reap: Callable[[], object], timeout: float,
             clock: Callable[[], float] = time.monotonic) -> None:
    """SIGTERM ``pids``, reap until none is ``alive``; SIGKILL whatever is left after ``timeout``."""
    for pid in pids:
        kill_quietly(pid, signal.SIGTERM)
    deadline = clock() + timeout
    while any(alive(pid) for pid in pids):
        if clock() >= deadline:
            for pid in pids:
                if alive(pid):
                    kill_quietly(pid, signal.SIGKILL)
        reap()
        time.sleep(POLL_SECONDS)


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def backoff(failures: int) -> float:
    return float(min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, failures - 1)))


@dataclass
class Child:
    kind: str
    index: int
    pid: int
    spawned_ns: int              # CLOCK_MONOTONIC, comparable with heartbeats in the counters
    silent_since_ns: int = 0     # when found hung: its last sign of life (heartbeat, or the spawn)

    @property
    def key(self) -> tuple[str, int]:
        return self.kind, self.index


Spawner = Callable[[int], int]   # index -> pid of the forked child
Label = Callable[[int], str]     # index -> how the log names the child


class ChildSet:
    def __init__(self, log: Log, clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        """``clock_ns``: CLOCK_MONOTONIC in ns (heartbeats in the counters are on it); a test seam."""
        self.log = log
        self.clock_ns = clock_ns
        self.children: dict[int, Child] = {}                     # pid -> child
        self.pending: dict[tuple[str, int], float] = {}          # (kind, index) -> when to (re)spawn it
        self.failures: dict[tuple[str, int], int] = {}           # consecutive failures
        self.spawners: dict[str, tuple[Spawner, Label]] = {}
        self.spawned: set[str] = set()                             # kinds started at least once

    def clock(self) -> float:
        return self.clock_ns() / 1e9

    def register(self, kind: str, spawner: Spawner, label: Label) -> None:
        self.spawners[kind] = (spawner, label)

    def label(self, kind: str, index: int) -> str:
        return self.spawners[kind][1](index)

    # --- spawning ------------------------------------------------------------------------------------

    def spawn(self, kind: str, index: int) -> Child:
        pid = self.spawners[kind][0](index)
        child = self.children[pid] = Child(kind, index, pid, self.clock_ns())
        self.spawned.add(kind)
        return child

    def ever(self, kind: str) -> bool:
        """Whether a child of ``kind`` was ever started."""
        return kind in self.spawned

    def due(self) -> list[tuple[str, int]]:
        """The (kind, index) whose restart is due now, taken off the pending list."""
        now = self.clock()
        ready = sorted(key for key, at in self.pending.items() if at <= now)
        for key in ready:
            del self.pending[key]
        return ready

    def schedule_restart(self, child: Child, status: int, note: str = "") -> None:
        """Restart after a back-off that doubles per consecutive failure; a long run forgives them."""
        now_ns = self.clock_ns()
        ran = (now_ns - child.spawned_ns) / 1e9
        # a hung child ran only until its last sign of life: the silence neither counts as running
        # nor forgives its failures
        healthy = (child.silent_since_ns - child.spawned_ns) / 1e9 if child.silent_since_ns else ran
        failures = 1 if healthy >= BACKOFF_RESET else self.failures.get(child.key, 0) + 1
        self.failures[child.key] = failures
        delay = backoff(failures)
        ran_text = (f"it ran {ran:.1f} s, silent for the last {ran - healthy:.1f} s" if child.silent_since_ns
                    else f"it ran {ran:.1f} s")
        self.log(f"{self.label(child.kind, child.index)} (pid {child.pid}) {describe_exit(status)}; "
                 f"restarting in {delay:g} s ({ran_text}){note}", WARNING)
        self.pending[child.key] = self.clock() + delay

    def cancel(self, keep: Callable[[tuple[str, int]], bool]) -> None:
        """Drop pending restarts that ``keep`` says no to."""
        self.pending = {key: at for key, at in self.pending.items() if keep(key)}

    # --- exits ---------------------------------------------------------------------------------------

    def reap(self) -> list[tuple[Child, int]]:
        """Every child that has exited since the last call, with its wait status."""
        out = []
        for pid, status in exited():
            child = self.children.pop(pid, None)
            if child is not None:
                out.append((child, status))
        return out

    @staticmethod
    def verdict(child: Child, status: int, wanted: bool, timed: bool) -> str:
        """What the exit means (the exit policy of the module docstring)."""
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_BOOT_FAILED:
            return FATAL
        if not wanted:
            return GONE
        if child.kind == WORKER and timed and status == 0:
            return DONE
        return RESTART

    # --- watching ------------------------------------------------------------------------------------

    def hung(self, kind: str, heartbeat: Callable[[Child], int | None], limit: float, boot_limit: float,
             now_ns: int | None = None, progress: Callable[[Child], int] | None = None,
             ) -> list[tuple[Child, str, float]]:
        """Children of ``kind`` whose heartbeat is older than ``limit`` (or still booting after
        ``boot_limit``: since their spawn, or since the last sign of ``progress`` they gave while
        setting up). ``heartbeat`` gives a running child's last beat (CLOCK_MONOTONIC ns), or
        None while it has not started running."""
        now_ns = self.clock_ns() if now_ns is None else now_ns
        out = []
        for child in self.of_kind(kind):
            beat = heartbeat(child)
            if beat is None:
                since = max(child.spawned_ns, progress(child) if progress is not None else 0)
            else:
                since = max(child.spawned_ns, beat)
            age = (now_ns - since) / 1e9
            if age > (boot_limit if beat is None else limit):
                child.silent_since_ns = child.silent_since_ns or since
                out.append((child, "still setting up" if beat is None else "no heartbeat", age))
        return out

    # --- queries and stopping ------------------------------------------------------------------------

    def of_kind(self, kind: str) -> list[Child]:
        return [c for c in self.children.values() if c.kind == kind]

    def pids(self, kind: str | None = None) -> list[int]:
        return [pid for pid, c in self.children.items() if kind is None or c.kind == kind]

    def has_pending(self, kind: str) -> bool:
        return any(k == kind for k, _ in self.pending)

    def alive(self, pids: Iterable[int]) -> list[int]:
        """Those of ``pids`` not reaped yet."""
        return [pid for pid in pids if pid in self.children]

    def stop(self, pids: list[int], timeout: float, between: Callable[[], object] = lambda: None) -> None:
        """SIGTERM ``pids``, wait up to ``timeout``, SIGKILL the rest, reap them all; ``between`` runs
        at every look (the loop's watchdog ping)."""
        def reap() -> None:
            self.reap()
            between()
        stop_all(pids, self.children.__contains__, reap, timeout, self.clock)


def abort_then_kill(child: Child, aborted: dict[int, float], grace: float, now: float) -> str:
    """SIGABRT first (the worker's faulthandler prints its stack to the log), SIGKILL if that did
    not end it within ``grace``; returns what was sent."""
    if child.pid not in aborted:
        aborted[child.pid] = now
        kill_quietly(child.pid, signal.SIGABRT)
        return "SIGABRT (its stack goes to the log)"
    if now - aborted[child.pid] >= grace:
        kill_quietly(child.pid, signal.SIGKILL)
        return "SIGKILL"
    return ""
