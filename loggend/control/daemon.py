"""Running detached from a shell: ``loggend run --daemon --pidfile PATH``.

The pidfile is locked with ``flock`` before detaching, so a second instance is refused in the
foreground with a clear message, and a pidfile left by a crash (nobody holds the lock) is simply
taken over. The locked descriptor survives python-daemon's fork and fd clean-up (it is in
``files_preserve``); the daemon then writes its own pid and removes the file when it stops.
Sockets, the shared counters and the workers are all created after detaching.

The shell that starts a daemon learns whether it came up, as ``systemctl start`` does for a
``Type=notify`` unit: the foreground process keeps the read end of a pipe and waits; the daemon
writes ``ready`` once every worker sends, or the line that says why it stopped before that. So
``loggend run --daemon ...`` exits 0 only when the run is really up.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import signal
import stat
import sys
import time
from collections.abc import Callable
from typing import TextIO

from loggend.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError

MAX_PID_BYTES = 32           # a pidfile holds a pid and a line end
PID_TEXT = re.compile(rb"\s*(\d{1,20}\s*)?")   # what a pidfile holds (empty: made by the user, or cut short)
READY_TIMEOUT = 60.0         # the starting shell waits this long for "ready" (systemd's TimeoutStartSec)
STARTED, READY, FAILED, GONE, TIMEOUT = "started", "ready", "failed", "gone", "timeout"


class AlreadyRunning(Exception):
    exit_code = EXIT_FAILURE


class PidFile:
    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.fd = -1

    def acquire(self) -> None:
        """Lock the file or raise AlreadyRunning naming the holder; OSError when it cannot be opened."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise UsageError(f"--pidfile: {self.path} is a symbolic link; loggen never follows links") from None
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(f"already running as pid {holder} (pidfile {self.path})") from None
        except OSError:
            os.close(fd)
            raise
        mode = os.fstat(fd).st_mode
        old = os.pread(fd, MAX_PID_BYTES + 1, 0) if stat.S_ISREG(mode) else b""
        if not stat.S_ISREG(mode) or not PID_TEXT.fullmatch(old):
            os.close(fd)
            what = "not a regular file" if not stat.S_ISREG(mode) else "not a pidfile (a pid and a line end)"
            raise UsageError(f"--pidfile: {self.path} is {what}; loggen would replace it: remove it or "
                             "choose another path")
        self.fd = fd

    def write(self, pid: int) -> None:
        """UsageError when the pid cannot be written (a full or failing file system): the pidfile is
        removed, so nothing is left claiming a pid."""
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{pid}\n".encode(), 0)
        except OSError as err:
            self.release()
            raise UsageError(f"--pidfile: cannot write {self.path}: {err.strerror}") from None

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = -1


class ReadyPipe:
    """The daemon's end of the pipe to the shell that started it: one verdict, then closed.

    Lines: ``started PID`` as soon as it is detached, then ``ready TEXT`` (every worker sends) or
    ``failed LINE`` (the run stopped before that, with the line that says why).
    """

    def __init__(self, fd: int = -1) -> None:
        self.fd = fd

    def _send(self, text: str, close: bool = True) -> None:
        if self.fd < 0:
            return
        try:
            os.write(self.fd, (text.replace("\n", " ") + "\n").encode())
        except OSError:
            pass                          # the shell gave up waiting: nothing to tell any more
        if close:
            os.close(self.fd)
            self.fd = -1

    def started(self, pid: int) -> None:
        self._send(f"{STARTED} {pid}", close=False)

    def ready(self, text: str) -> None:
        self._send(f"{READY} {text}")

    def failed(self, line: str) -> None:
        self._send(f"{FAILED} {line}")


def wait_ready(fd: int, timeout: float, clock: Callable[[], float] = time.monotonic) -> tuple[str, str, int]:
    """Read the daemon's lines until its verdict: (READY | FAILED | "gone" | "timeout", text, its pid or 0)."""
    deadline = clock() + timeout
    buffer, pid = b"", 0
    while True:
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            word, _, text = line.decode(errors="replace").partition(" ")
            if word == STARTED:
                pid = int(text) if text.isdigit() else 0
            elif word in (READY, FAILED):
                return word, text, pid
        left = deadline - clock()
        if left <= 0:
            return TIMEOUT, "", pid
        readable, _, _ = select.select([fd], [], [], left)
        if readable:
            chunk = os.read(fd, 4096)
            if not chunk:
                return GONE, "", pid
            buffer += chunk


def run_detached(pidfile: PidFile, log_path: str, main: Callable[[ReadyPipe], int],
                 timeout: float = READY_TIMEOUT, err: TextIO = sys.stderr) -> int:
    """Detach ``main`` into a daemon and wait, in the foreground, until it reports ready or failed.

    The exit status of the starting shell is then the daemon's verdict: 0 once every worker sends,
    1 with the daemon's own failure line when it stopped before that (or was not ready within
    ``timeout``: it is then stopped, as systemd would). The daemon returns ``main``'s status.
    """
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        return _daemon(pidfile, log_path, main, w)
    os.close(w)
    os.close(pidfile.fd)              # the lock stays with the daemon's copy of the descriptor
    pidfile.fd = -1
    try:
        os.wait()                     # the first child exits as soon as the daemon is detached
    except ChildProcessError:
        pass
    verdict, text, pid = wait_ready(r, timeout)
    os.close(r)
    if verdict == READY:
        print(f"loggend: ready: pid {pid} {text}; pidfile {pidfile.path}, log {log_path}", file=err)
        return EXIT_OK
    if verdict == FAILED:
        print(f"loggend: {text} (log {log_path})", file=err)
    elif verdict == TIMEOUT:
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        print(f"loggend: not ready after {timeout:g} s; stopped pid {pid or '?'} (log {log_path})", file=err)
    else:
        print(f"loggend: the daemon exited before it was ready (log {log_path})", file=err)
    return EXIT_FAILURE


def _daemon(pidfile: PidFile, log_path: str, main: Callable[[ReadyPipe], int], pipe_fd: int) -> int:
    """The daemon's side: detach (double fork, setsid, chdir /), log to ``log_path``, run ``main``."""
    import daemon  # python-daemon: only needed here

    from loggend.engine import journal

    log: TextIO = open(log_path, "a", buffering=1, encoding="utf-8")   # noqa: SIM115 - kept open while running
    context = daemon.DaemonContext(
        working_directory="/", umask=0o022, stdout=log, stderr=log, detach_process=True,
        files_preserve=[pidfile.fd, log.fileno(), pipe_fd], signal_map={},
    )
    with context:
        journal.forget()              # stdout and stderr are the log file now
        pipe = ReadyPipe(pipe_fd)
        try:
            pidfile.write(os.getpid())
        except UsageError as err:
            pipe.failed(str(err))
            return EXIT_USAGE
        pipe.started(os.getpid())
        code = EXIT_FAILURE
        try:
            code = main(pipe)
        finally:
            if code != EXIT_OK:
                pipe.failed(f"stopped with exit status {code}")
            else:
                pipe.ready("ran to its end")
            pidfile.release()
        return code
