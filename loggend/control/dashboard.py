"""The web process as a child kind: its listening socket (held by the parent) and its spawner.

The parent binds the dashboard's socket before it forks anything, so a taken port is one clear
line at start (not a traceback in a child restarted forever), port 0 becomes a real port the
parent knows, and the socket outlives a restart of the web process: no refused connection while
it comes back.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import TextIO

from loggend.control.children import fork_child
from loggend.engine.journal import Log
from loggend.engine.procsetup import init_child
from loggend.report.sources import Sources
from loggend.web.child import Detections, WebSettings, listen, serve, url


class DashboardError(Exception):
    """The dashboard's address cannot be bound."""


class Dashboard:
    def __init__(self, settings: WebSettings, sources: Sources, log: Log,
                 outputs: tuple[TextIO, ...]) -> None:
        self.settings, self.sources, self.log, self.outputs = settings, sources, log, outputs
        self.sock: socket.socket | None = None
        self.detections: Detections | None = None        # set when the run takes detections (a webhook)

    def open(self) -> str:
        """Bind the socket; the dashboard's URL. DashboardError (one line) when it cannot."""
        s = self.settings
        try:
            self.sock = listen(s)
        except OSError as err:
            # (create_server appends "(while attempting to bind on address ...)": the errno says it all)
            why = os.strerror(err.errno) if err.errno else str(err)
            raise DashboardError(f"dashboard: cannot listen on {s.host}:{s.port}: {why}") from None
        host, port = self.sock.getsockname()[:2]
        return url(host, port)

    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening socket, for the other children to close after their fork."""
        return (self.sock,) if self.sock is not None else ()

    @property
    def url(self) -> str:
        if self.sock is None:
            return ""
        host, port = self.sock.getsockname()[:2]
        return url(host, port)

    def spawn(self, index: int = 0) -> int:
        """Fork the web process on the held socket; it only reads the shared memory."""
        assert self.sock is not None, "open() first"
        settings, sources, sock, log, detections = self.settings, self.sources, self.sock, self.log, self.detections

        def body() -> int:
            init_child("loggend-web", signal.SIG_DFL)
            return serve(settings, sources, sock, log, detections)
        return fork_child(body, self.outputs)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
