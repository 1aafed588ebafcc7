"""Signals as a queue: handlers only append; a wake-up pipe ends the main loop's wait at once.

``signal.set_wakeup_fd`` makes the C-level handler write the signal number to a pipe, so the
loop sleeps in ``select`` until its next timer or the next signal, whichever comes first: no
polling interval stands between a SIGCHLD and the restart it asks for.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Iterable


class SignalQueue:
    def __init__(self) -> None:
        self.queue: list[int] = []
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def install(self, signals: Iterable[int]) -> None:
        for sig in signals:
            signal.signal(sig, self._enqueue)
        signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)

    def _enqueue(self, signum: int, frame: object) -> None:
        self.queue.append(signum)

    def wait(self, seconds: float) -> None:
        """Up to ``seconds``; returns at once when a signal is (or was already) queued."""
        if not self.queue:
            select.select([self.read_fd], [], [], max(0.0, seconds))
        try:
            while os.read(self.read_fd, 512):
                pass
        except BlockingIOError:
            pass

    def pop(self) -> str | None:
        """The oldest queued signal as a lower-case name (``sighup``), or None."""
        return signal.Signals(self.queue.pop(0)).name.lower() if self.queue else None
