"""Child processes: fork one, reap the exited ones, stop a group (SIGTERM, then SIGKILL).

The supervisor, the standalone sink and the benchmark all fork children that must never return
into the parent's code; this is the one place that knows how.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO

from loggend.errors import EXIT_FAILURE

POLL_SECONDS = 0.01


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
        traceback.print_exc()
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
