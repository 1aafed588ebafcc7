"""The web process's body: serve the app on a socket the parent bound, until it is stopped.

The parent (the supervisor, or ``loggend sink``'s parent) binds the listening socket before it
forks (so a taken port is one line at start, and the socket survives a restart of this process)
and forks; the child imports the web stack (Flask, werkzeug, prometheus_client, psutil) only
here, so the parent and the workers never load it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from loggend.errors import EXIT_OK
from loggend.web.state import Sources


@dataclass(frozen=True)
class WebSettings:
    host: str
    port: int
    token: str = ""
    origins: tuple[str, ...] = ()
    interval: float = 1.0


def listen(settings: WebSettings) -> socket.socket:
    """The dashboard's listening socket; OSError when the address is taken or not ours."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    return socket.create_server((settings.host, settings.port), family=family, backlog=128)


def serve(settings: WebSettings, sources: Sources, sock: socket.socket, log: Callable[[str], None]) -> int:
    """Run the web process on ``sock`` until it is killed."""
    from werkzeug.serving import make_server

    from loggend.web.app import create_app
    from loggend.web.state import WebState

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    state = WebState(sources, settings.interval)
    app = create_app(state, settings.token, settings.origins)
    server = make_server(settings.host, settings.port, app, threaded=True, fd=sock.fileno())
    state.start()
    server.serve_forever()
    return EXIT_OK


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
