"""What every child of a run does to its own process before it works (the child side of a fork).

Workers, sink processes and the web process all call ``init_child``: stop on SIGTERM / SIGINT
through a flag (the handler only sets it), ignore SIGHUP (a reload is the supervisor's business),
pin to a CPU, die with the parent (``PR_SET_PDEATHSIG``, even after a SIGKILL of it), print
every thread's stack when killed as hung (SIGABRT, through ``faulthandler``) and take a
process name (``loggend-w3``, ``loggend-p1``, ``loggend-sink0``, ``loggend-web``) that ``ps``, ``top`` and
``loggend profile`` show. The parent side (fork, reap, stop) is ``loggend.control.children``.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import sys
from collections.abc import Callable

from loggend.engine import journal
from loggend.errors import EXIT_FAILURE

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
NAME_BYTES = 15               # the kernel keeps 16 bytes of a task name, NUL included

StopHandler = Callable[[int, object], None]


def _prctl(option: int, value: int | bytes) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies, even by SIGKILL."""
    _prctl(PR_SET_PDEATHSIG, sig)


def die_with_this_process(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` for a command this process starts (``loggend run`` under find-limit or
    perftest, in a session of its own): the kernel sends it ``sig`` when this process dies, however
    it dies. The thread that starts it must live as long as this process (the main thread): the
    signal comes when that thread ends. A parent gone before the prctl took effect sends nothing,
    so the child then exits at once instead of running without one."""
    parent = os.getpid()

    def preexec() -> None:
        set_parent_death_signal(sig)
        if os.getppid() != parent:
            os._exit(EXIT_FAILURE)
    return preexec


def set_process_name(name: str) -> None:
    """The task name ps, top and /proc/PID/comm show (at most 15 bytes)."""
    _prctl(PR_SET_NAME, name.encode("ascii", "replace")[:NAME_BYTES])


def init_child(name: str, on_stop: StopHandler | int, cpu: int | None = None) -> None:
    """Signals, CPU pinning, parent-death signal and name of a freshly forked child."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for sig in (signal.SIGUSR1, signal.SIGUSR2):          # the supervisor's rate controls, not ours
        signal.signal(sig, signal.SIG_IGN)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    set_parent_death_signal()
    set_process_name(name)
    faulthandler.enable(all_threads=True)                  # SIGABRT from the supervisor: the stack, then death


def log_stderr(line: str, level: int = journal.INFO) -> None:
    journal.write(line, level, sys.stderr)
