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
EXIT_REPORT_FAILED = 4    # a report or summary not written: perftest, find-limit, run's --summary-json (what it
                          # says was printed all the same)
EXIT_INTERRUPTED = 130    # stopped by Ctrl-C before it finished (128 + SIGINT)
SHOWN_CHARS = 80          # a value quoted in an error line is cut to about this length
SHOWN_ITEMS = 6           # ... a list or mapping to its first items
SHOWN_DEPTH = 3           # ... this many levels deep


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A config key or flag with a value that is not allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"{key}: {shown(value)} is not allowed; expected {allowed}")
        self.key = key
        self.allowed = allowed


def shown(value: object, depth: int = 0) -> str:
    """``repr(value)`` cut to a readable length, without building the whole of it first (the repr
    of a 377-byte YAML alias bomb is 39 MB): lists and mappings show their first items, a few
    levels deep; an integer too long to print says how long it is."""
    if isinstance(value, (list, tuple, dict)):
        if depth >= SHOWN_DEPTH:
            return "[...]" if not isinstance(value, dict) else "{...}"
        if isinstance(value, dict):
            parts = [f"{shown(k, depth + 1)}: {shown(v, depth + 1)}" for k, v in list(value.items())[:SHOWN_ITEMS]]
        else:
            parts = [shown(v, depth + 1) for v in value[:SHOWN_ITEMS]]
        if len(value) > SHOWN_ITEMS:
            parts.append("...")
        text = ", ".join(parts)
        text = "{" + text + "}" if isinstance(value, dict) else "(" + text + ")" if isinstance(value, tuple) \
            else "[" + text + "]"
        return text if len(text) <= SHOWN_CHARS + 10 else text[:SHOWN_CHARS] + "..."
    try:
        text = repr(value)
    except ValueError:                      # an integer of more digits than Python prints
        return f"<an integer of {value.bit_length() * 0.30103:,.0f} digits>"  # type: ignore[attr-defined]
    if len(text) <= SHOWN_CHARS + 10:
        return text
    half = SHOWN_CHARS // 2
    return text[:half] + "..." + text[-half:]
