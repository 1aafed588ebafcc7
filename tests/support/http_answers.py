"""HTTP servers in the test process on 127.0.0.1, for what ``find-limit`` reads as feedback.

* ``AnswerServer``: answers every GET with the body a test sets (``answer``), or with a body made by
  a function of the request's path (so a test can play a sink or a Prometheus whose figures move).
* ``TrickleServer``: accepts, then sends an HTTP answer one byte every ``interval`` seconds, never
  finishing in any useful time (a receiver that hangs without closing).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRICKLE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + b" " * 100000


class AnswerServer:
    def __init__(self, answer: Any = None) -> None:
        self.answer: Any = answer                                # a document (sent as JSON) or bytes
        self.make: Callable[[str], Any] | None = None            # path -> document, when set
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                doc = server.make(self.path) if server.make else server.answer
                body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class TrickleServer:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            for i in range(len(TRICKLE)):
                if self.stop.wait(self.interval if i else 0):
                    return
                try:
                    conn.sendall(TRICKLE[i:i + 1])
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
