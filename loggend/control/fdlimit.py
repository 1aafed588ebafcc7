"""Open files: raise the soft limit to the hard one, and refuse a sink that cannot have its ports.

A sink process opens one socket per port (UDP) or one listener per port plus a connection per
sender (TCP), beside a few files of its own. ``loggend`` raises ``RLIMIT_NOFILE``'s soft limit to
the hard one at start (children inherit it); when even that is too low for the ports asked for,
``ensure_fds`` says so in one line (exit status 2) instead of a child's traceback.
"""

from __future__ import annotations

import resource

from loggend.errors import UsageError

FD_MARGIN = 64            # files a sink process needs beside its sockets (epoll, pipes, /proc, std streams...)


def raise_nofile() -> tuple[int, int]:
    """Soft limit up to the hard one (what any process may do); (soft, hard) afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft, hard


def ensure_fds(ports: int, label: str, value: object) -> None:
    """UsageError (one line, naming the flag or key) when ``ports`` sockets cannot be opened in one process."""
    soft, hard = raise_nofile()
    needed = ports + FD_MARGIN
    if needed > soft:
        raise UsageError(f"{label}: {value!s:.60} is not allowed here: {ports:,} ports need about {needed:,} open "
                         f"files per sink process, and the limit is {soft:,} (ulimit -n; the hard limit is "
                         f"{hard:,}): raise it, or use fewer ports")
