"""Errors the control plane turns into one line and a named exit status."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1          # the run failed (a worker could not start, a target failed)
EXIT_USAGE = 2            # bad flags, config or request: one line, no traceback


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A config key or flag with a value that is not allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        super().__init__(f"{key}: {value!r} is not allowed; expected {allowed}")
        self.key = key
