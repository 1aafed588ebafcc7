"""The web process's body: serve the app on a socket the parent bound, until it is stopped.

The parent (the supervisor, or ``loggend sink``'s parent) binds the listening socket before it
forks (so a taken port is one line at start, and the socket survives a restart of this process)
and forks; the child imports the web stack (Flask, werkzeug, prometheus_client, psutil) only
here, so the parent and the workers never load it. The server is ``BoundedServer`` (bounded
connections and idle time); Python logging (werkzeug's, Flask's) goes out as journal lines.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loggend.engine import journal
from loggend.engine.journal import Log
from loggend.errors import EXIT_OK
from loggend.report.sources import Sources

LEVELS = {logging.CRITICAL: journal.ERR, logging.ERROR: journal.ERR, logging.WARNING: journal.WARNING,
          logging.INFO: journal.INFO, logging.DEBUG: journal.DEBUG}


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    token: str = ""
    origins: tuple[str, ...] = ()
    interval: float = 1.0
    hosts: tuple[str, ...] = ()         # Host names answered besides the dashboard's own (DNS-rebinding guard)


class JournalHandler(logging.Handler):
    """Python logging records as ``loggend: dashboard: ...`` lines with the journal's priority."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            journal.write(f"dashboard: {self.format(record)}", LEVELS.get(record.levelno, journal.INFO))
        except Exception:                 # logging must never take the web process down
            self.handleError(record)


def listen(settings: WebSettings) -> socket.socket:
    """The dashboard's listening socket; OSError when the address is taken or not ours."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    return socket.create_server((settings.host, settings.port), family=family, backlog=128)


Detections = Callable[[str], dict[str, Any]]     # "ID [TIME]" -> the supervisor's reply (POST /api/detections)


def serve(settings: WebSettings, sources: Sources, sock: socket.socket, log: Log,
          detections: Detections | None = None) -> int:
    """Run the web process on ``sock`` until it is killed; ``detections`` hands a SIEM's detection to
    the supervisor (given by the parent: the web layer does not talk to the control layer itself)."""
    from loggend.web.app import create_app
    from loggend.web.server import BoundedServer
    from loggend.web.state import WebState

    logging.basicConfig(level=logging.INFO, handlers=[JournalHandler()], force=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    state = WebState(sources, settings.interval)
    app = create_app(state, settings.token, settings.origins, listen=settings.host, hosts=settings.hosts,
                     supervisor_pid=os.getppid(), detections=detections)
    server = BoundedServer(settings.host, settings.port, app, fd=sock.fileno())
    state.start()
    server.serve_forever()
    return EXIT_OK


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
