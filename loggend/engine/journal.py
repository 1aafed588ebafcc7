"""Log lines with a priority the journal understands: sd-daemon(3) ``<N>`` prefixes.

When a service's stdout / stderr is connected to the journal, systemd sets ``JOURNAL_STREAM`` to
the ``DEVICE:INODE`` of that stream, and a line that starts with ``<3>`` is stored with priority
3 (err), so ``journalctl -u loggen -p err`` finds it. Every line a loggend process logs goes
through ``write``: prefixed when its stream *is* the journal stream (the variable alone is not
enough: a child whose output was redirected inherits it), plain otherwise (a terminal, a file, a
pipe). Unprefixed lines, such as the live line and the summary, get the unit's default, info.

Standard library only: workers log through it too.
"""

from __future__ import annotations

import io
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol, TextIO

ERR, WARNING, NOTICE, INFO, DEBUG = 3, 4, 5, 6, 7      # syslog(3) priorities, as sd-daemon(3) spells them
THROTTLE_SECONDS = 10.0       # a repeated warning: its first line, then one count per this long


class Log(Protocol):
    """Every ``log`` a loggend object is given: one line, and its priority (default info)."""

    def __call__(self, line: str, level: int = INFO) -> None: ...


def is_journal_stream(fd: int, env: Mapping[str, str] | None = None) -> bool:
    """True when ``fd`` is the stream ``JOURNAL_STREAM`` (``DEVICE:INODE``) names."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):
        return False


_journal: dict[int, bool] = {}        # fd -> is_journal_stream(fd), asked once per process


def prefix(level: int, stream: TextIO) -> str:
    """``<N>`` when ``stream`` goes to the journal, else nothing."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return ""                     # an in-memory stream (a test's StringIO)
    if fd not in _journal:
        _journal[fd] = is_journal_stream(fd)
    return f"<{level}>" if _journal[fd] else ""


def write(line: str, level: int = INFO, stream: TextIO | None = None) -> None:
    """``loggend: LINE`` on ``stream`` (stderr), flushed; every line of a multi-line text (a traceback)
    carries the journal's prefix, so none of it falls back to the default priority."""
    out = stream if stream is not None else sys.stderr
    mark = prefix(level, out)
    first, *rest = line.splitlines() or [""]
    out.write(f"{mark}loggend: {first}\n" + "".join(f"{mark}{part}\n" for part in rest))
    out.flush()


class ReaderSafe(io.TextIOBase):
    """A stream whose reader may go away (``loggend run | head``): after its first broken pipe the
    descriptor goes to /dev/null and writes succeed, so a measurement is not cut short, and its summary
    file not lost, because whoever read its lines stopped reading."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._to_null()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._to_null()

    def _to_null(self) -> None:
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.stream.fileno())
            os.close(null)
            self.stream.flush()             # what it still held goes to /dev/null
        except (OSError, ValueError):
            pass

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def writable(self) -> bool:
        return True


def guard_streams() -> None:
    """stdout and stderr as ``ReaderSafe`` (the long commands: run, sink, find-limit, soak, perftest)."""
    if not isinstance(sys.stdout, ReaderSafe):
        sys.stdout = ReaderSafe(sys.stdout)
    if not isinstance(sys.stderr, ReaderSafe):
        sys.stderr = ReaderSafe(sys.stderr)


def forget() -> None:
    """Ask again which streams are the journal's (after a daemon re-pointed stdout and stderr)."""
    _journal.clear()


class Throttle:
    """Repeated warnings of one kind (a flood of bad handshakes, bad requests) as one line, then one
    line per ``every`` seconds with how many more came and the last of them; a kind that stays quiet
    for a whole period is said in full again next time. ``tick`` (called from a loop) says the counts
    that are due when no new warning comes to say them. Thread-safe (the web server's threads log)."""

    def __init__(self, log: Log, every: float = THROTTLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.every, self.clock = log, every, clock
        self.kinds: dict[str, tuple[float, int, str, int]] = {}     # kind -> (period start, more, last line, level)
        self.lock = threading.Lock()

    def __call__(self, kind: str, line: str, level: int = WARNING) -> None:
        with self.lock:
            now = self.clock()
            seen = self.kinds.get(kind)
            if seen is None:
                self.kinds[kind] = (now, 0, line, level)
                self.log(line, level)
                return
            self.kinds[kind] = (seen[0], seen[1] + 1, line, level)
        self.tick()

    def tick(self, final: bool = False) -> None:
        """Say the counts whose period is over (``final``: every count, at the end)."""
        with self.lock:
            now = self.clock()
            for kind, (since, more, last, level) in list(self.kinds.items()):
                if now - since < self.every and not final:
                    continue
                if not more:
                    del self.kinds[kind]
                    continue
                self.kinds[kind] = (now, 0, last, level)
                self.log(f"{more:,} more like that in the last {now - since:.1f} s; the last: {last}", level)
