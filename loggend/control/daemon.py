"""Running detached from a shell: ``loggend run --daemon --pidfile PATH``.

The pidfile is locked with ``flock`` before detaching, so a second instance is refused in the
foreground with a clear message, and a pidfile left by a crash (nobody holds the lock) is simply
taken over. The locked descriptor survives python-daemon's fork and fd clean-up (it is in
``files_preserve``); the daemon then writes its own pid and removes the file when it stops.
Sockets, the shared counters and the workers are all created after detaching.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from typing import TextIO

from loggend.errors import EXIT_FAILURE


class AlreadyRunning(Exception):
    exit_code = EXIT_FAILURE


class PidFile:
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.fd = -1

    def acquire(self) -> None:
        """Lock the file or raise AlreadyRunning naming the holder; OSError when it cannot be opened."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(f"already running as pid {holder} (pidfile {self.path})") from None
        self.fd = fd

    def write(self, pid: int) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{pid}\n".encode(), 0)

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = -1


def run_detached(pidfile: PidFile, log_path: str, main: Callable[[], int]) -> int:
    """Detach (double fork, setsid, chdir /), log to ``log_path``, run ``main`` and clean up."""
    import daemon  # python-daemon: only needed here

    log: TextIO = open(log_path, "a", buffering=1, encoding="utf-8")   # noqa: SIM115 - kept open while running
    context = daemon.DaemonContext(
        working_directory="/", umask=0o022, stdout=log, stderr=log,
        files_preserve=[pidfile.fd, log.fileno()], signal_map={},
    )
    with context:
        pidfile.write(os.getpid())
        try:
            return main()
        finally:
            pidfile.release()
