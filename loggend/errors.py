"""Every exit status of every loggend process, and the errors that become one line and exit 2.

This module imports nothing, so the hot path (``loggend.engine``) may use its exit codes too:
a child process reports *why* it stopped through its exit status, and the supervisor decides
from it whether to restart the child or to stop the run.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1          # the run failed (a child could not start, a target failed, the memory limit)
EXIT_USAGE = 2            # bad flags, config, template or request: one line, no traceback
EXIT_BOOT_FAILED = 3      # a child could not start at all (a worker cannot send, a sink cannot bind,
                          # the web process cannot listen): restarting it cannot help
EXIT_REPORT_FAILED = 4    # perftest: the report could not be written (its verdict was printed all the same)
EXIT_INTERRUPTED = 130    # stopped by Ctrl-C before it finished (128 + SIGINT)
SHOWN_CHARS = 80          # a value quoted in an error line is cut to about this length


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A config key or flag with a value that is not allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"{key}: {shown(value)} is not allowed; expected {allowed}")
        self.key = key


def shown(value: object) -> str:
    """``repr(value)`` cut to a readable length, without building the whole of it first (the repr
    of a 377-byte YAML alias bomb is 39 MB): nested values are summarised by ``reprlib``."""
    import reprlib
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxtuple, short.maxset = 3, 6, 6, 6, 6
    short.maxstring = short.maxlong = short.maxother = SHOWN_CHARS
    text = short.repr(value)
    return text if len(text) <= SHOWN_CHARS + 10 else text[:SHOWN_CHARS] + "..."
