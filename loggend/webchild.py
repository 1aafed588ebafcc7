"""Forking the web process: flask and friends are imported in the child only.

Used by the supervisor (``loggend run``) and by the standalone sink (``loggend sink
--dashboard``); the parent never imports the web stack, so neither do the workers it forks.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from loggend.board import Board
from loggend.children import fork_child
from loggend.engine.counters import CounterBlock
from loggend.engine.worker import set_parent_death_signal


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    token: str = ""
    origins: tuple[str, ...] = ()
    interval: float = 1.0


def fork_web(settings: WebSettings, block: CounterBlock, board: Board, log: Callable[[str], None],
             sink_block: CounterBlock | None = None, stream_block: CounterBlock | None = None,
             outputs: tuple[TextIO, ...] = (sys.stdout, sys.stderr)) -> int:
    """Fork the web process; the parent gets its pid, the child serves until it is killed."""

    def body() -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        set_parent_death_signal()
        from loggend.web import serve
        return serve(settings.host, settings.port, settings.token, settings.origins, settings.interval,
                     block, board, log, sink_block, stream_block)

    return fork_child(body, outputs)
