"""Signals as a queue: handlers only append; a wake-up pipe ends the main loop's wait at once.

``signal.set_wakeup_fd`` makes the C-level handler write the signal number to a pipe, so the
loop sleeps in ``select`` until its next timer or the next signal, whichever comes first: no
polling interval stands between a SIGCHLD and the restart it asks for. The same ``select`` waits
on the control socket's descriptors, so a ``loggend ctl`` request is answered as soon as it comes.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Iterable, Sequence

HELD = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)   # their default action ends the process
_early: list[int] = []


def hold_early(signals: Iterable[int] = HELD) -> None:
    """From the first moment of `loggend run` and `loggend sink`: these signals are kept, not fatal,
    until the loop's queue takes them over (a SIGHUP while the config is read or the corpus rendered
    used to end the run without a word)."""
    for sig in signals:
        signal.signal(sig, lambda signum, frame: _early.append(signum))


class SignalQueue:
    def __init__(self) -> None:
        self.queue: list[int] = []
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def install(self, signals: Iterable[int]) -> None:
        """Handle ``signals`` from now on; those held since the start (``hold_early``) come first."""
        signals = tuple(signals)
        for sig in signals:
            signal.signal(sig, self._enqueue)
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        self.queue[:0] = [sig for sig in _early if sig in signals]
        _early.clear()

    def _enqueue(self, signum: int, frame: object) -> None:
        self.queue.append(signum)

    def wait(self, seconds: float, fds: Sequence[int] = ()) -> set[int]:
        """Up to ``seconds``; returns at once when a signal is (or was already) queued, or when one of
        ``fds`` (the control socket and its connections) is readable: those are returned."""
        ready: list[int] = []
        if not self.queue:
            try:
                ready, _, _ = select.select([self.read_fd, *fds], [], [], max(0.0, seconds))
            except InterruptedError:
                ready = []
        try:
            while os.read(self.read_fd, 512):
                pass
        except BlockingIOError:
            pass
        return set(ready) - {self.read_fd}

    def pop(self) -> str | None:
        """The oldest queued signal as a lower-case name (``sighup``), or None."""
        return signal.Signals(self.queue.pop(0)).name.lower() if self.queue else None
