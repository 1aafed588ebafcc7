"""The web process's HTTP server: werkzeug's threaded server with bounded connections and idle time.

werkzeug's ``ThreadedWSGIServer`` starts a thread per accepted connection and waits on it with no
timeout, so 2,000 sockets that connect and send nothing make 2,000 threads blocked forever.
``BoundedServer`` changes three things and keeps the rest (the WSGI handling, WebSockets):

* **No thread before a request.** An accepted connection is *parked* in a selector in the
  accepting thread; only when its first bytes arrive is it handed to a thread. A connection that
  sends nothing costs a file descriptor, not a thread, and is closed after ``idle_seconds``.
* **A cap on open connections** (parked + served, WebSockets included): at the cap, a new
  connection takes the place of the oldest parked one; when none is parked (every connection is
  busy), the new one gets a one-line 503 and is closed. So a flood of idle sockets cannot keep
  a real client (a probe's ``/healthz``, a scrape) out: it is served within one loop turn.
* **Time limits in the threads.** Every read and write of a served connection times out after
  ``REQUEST_SECONDS`` (a slow or stalled client, an idle keep-alive connection); a WebSocket
  client gets ``WS_SEND_SECONDS`` to take a frame before it is dropped.
* **Half-sent requests give way.** Near the cap, connections that have been sending their
  request's first lines for ``SLOW_REQUEST_SECONDS`` or more (one byte and then nothing, or an
  idle keep-alive connection) are cut, oldest first, until a sixteenth of the places is free
  again: 300 sockets that each sent one byte kept ``/healthz`` at 503 for as long as they held
  their threads.
"""

from __future__ import annotations

import json
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from loggend.engine import journal
from loggend.engine.journal import ERR, WARNING, Log, Throttle

MAX_CONNECTIONS = 256        # open connections at most (parked, served and WebSockets): threads <= this
IDLE_SECONDS = 10.0          # a connection that sends nothing this long after it connected is closed
REQUEST_SECONDS = 10.0       # per read / write once served: slow clients, idle keep-alive connections
WS_SEND_SECONDS = 30.0       # a WebSocket client that takes no frame this long is dropped
SLOW_REQUEST_SECONDS = 1.0   # a served connection still sending its request's head this long gives way near the cap
ACCEPT_BATCH = 64            # connections accepted per turn of the loop before looking at the parked ones
POLL_SECONDS = 1.0           # the loop's longest wait (idle connections are closed on time anyway)
BUSY_BODY = json.dumps({"error": "too many connections; try again", "status": 503}).encode()
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(BUSY_BODY)).encode() + b"\r\n\r\n" + BUSY_BODY)


def dashboard_line(line: str, level: int = journal.INFO) -> None:
    journal.write(f"dashboard: {line}", level)


class TimedHandler(WSGIRequestHandler):
    """werkzeug's handler with a timeout on every read and write of the connection; its warnings
    (bad requests, timeouts) go through the server's ``Throttle``: a flood of them is one line, then
    a count."""

    timeout = REQUEST_SECONDS
    server: BoundedServer

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "info":
            super().log(type, message, *args)
            return
        text = message % args if args else message
        self.server.warn(f"http: {message}", f"{self.address_string()}: {text}", ERR if type == "error" else WARNING)

    def handle_one_request(self) -> None:
        self.server.reading(self.connection)          # its request's head is on its way (or never comes)
        super().handle_one_request()

    def run_wsgi(self) -> None:
        self.server.read(self.connection)             # the head is in: the request is being served
        super().run_wsgi()


class BoundedServer(ThreadedWSGIServer):
    block_on_close = False        # the process is stopped by a signal; never wait for client threads

    def __init__(self, host: str, port: int, app: Any, fd: int, max_connections: int = MAX_CONNECTIONS,
                 idle_seconds: float = IDLE_SECONDS, handler: type[WSGIRequestHandler] = TimedHandler,
                 clock: Callable[[], float] = time.monotonic, log: Log = dashboard_line) -> None:
        super().__init__(host, port, app, handler, fd=fd)
        self.max_connections, self.idle_seconds, self.clock = max_connections, idle_seconds, clock
        self.warn = Throttle(log, clock=clock)
        self.parked: dict[socket.socket, tuple[Any, float]] = {}      # oldest first: (address, since)
        self.heads: dict[socket.socket, float] = {}    # served, its request's head not in yet: since (oldest first)
        self.cut: set[socket.socket] = set()           # cut by make_room, not yet closed by their threads
        self.reserve = max(1, max_connections // 16)   # places make_room keeps free from half-sent requests
        self.open = 0                                                  # accepted and not yet closed
        self.refused = self.evicted = self.timed_out = 0
        self.lock = threading.Lock()
        self.selector = selectors.DefaultSelector()

    def log(self, type: str, message: str, *args: Any) -> None:
        """werkzeug's own lines (a request that failed with a traceback): throttled by their first line."""
        text = message % args if args else message
        self.warn(f"server: {text.partition(chr(10))[0]}", text, ERR if type == "error" else WARNING)

    # --- every connection ends here, once ----------------------------------------------------------

    def shutdown_request(self, request: Any) -> None:
        with self.lock:
            self.open -= 1
            self.heads.pop(request, None)
            self.cut.discard(request)
        super().shutdown_request(request)

    # --- the serving threads say where their request is -------------------------------------------

    def reading(self, request: socket.socket) -> None:
        with self.lock:
            self.heads.pop(request, None)
            self.heads[request] = self.clock()

    def read(self, request: socket.socket) -> None:
        with self.lock:
            self.heads.pop(request, None)

    # --- the accepting thread -------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = POLL_SECONDS) -> None:
        self.socket.setblocking(False)
        self.selector.register(self.socket, selectors.EVENT_READ, None)
        while True:
            for key, _ in self.selector.select(self.wait(poll_interval)):
                if key.data is None:
                    self.accept_some()
                elif key.fileobj in self.parked:    # not evicted by an accept earlier in this turn
                    self.hand_over(key.fileobj)
            self.close_idle()
            self.make_room()
            self.warn.tick()

    def wait(self, longest: float) -> float:
        if not self.parked:
            return longest
        oldest = next(iter(self.parked.values()))[1]
        return max(0.0, min(longest, oldest + self.idle_seconds - self.clock()))

    def accept_some(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                request, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:                  # out of descriptors: make room, take the rest next turn
                self.evict_oldest()
                return
            with self.lock:
                self.open += 1
                full = self.open > self.max_connections
            if full and not self.evict_oldest():
                self.refuse(request)
            else:
                self.park(request, address)

    def park(self, request: socket.socket, address: Any) -> None:
        self.selector.register(request, selectors.EVENT_READ, address)
        self.parked[request] = (address, self.clock())

    def unpark(self, request: socket.socket) -> Any:
        self.selector.unregister(request)
        return self.parked.pop(request)[0]

    def hand_over(self, request: socket.socket) -> None:
        """Its first bytes (or its end) arrived: serve it in a thread of its own."""
        address = self.unpark(request)
        try:
            self.process_request(request, address)
        except Exception:                    # cannot start a thread: drop this one connection
            self.shutdown_request(request)

    def evict_oldest(self) -> bool:
        """Close the connection parked longest to make room; False when none is parked."""
        if not self.parked:
            return False
        request = next(iter(self.parked))
        self.unpark(request)
        self.evicted += 1
        self.shutdown_request(request)
        return True

    def make_room(self) -> None:
        """Near the cap, cut the served connections that have been sending their request's head for
        ``SLOW_REQUEST_SECONDS`` or more, oldest first, until ``reserve`` places are free: their
        threads' reads end and the threads with them (which close them and count them closed)."""
        while True:
            with self.lock:
                if self.open - len(self.cut) <= self.max_connections - self.reserve or not self.heads:
                    return
                request, since = next(iter(self.heads.items()))
                if since > self.clock() - SLOW_REQUEST_SECONDS:
                    return
                del self.heads[request]
                self.cut.add(request)
            self.evicted += 1
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def refuse(self, request: socket.socket) -> None:
        """Every connection is being served: a 503 that needs no thread, and close."""
        self.refused += 1
        try:
            request.setblocking(False)
            request.send(BUSY)
        except OSError:
            pass
        self.shutdown_request(request)

    def close_idle(self) -> None:
        limit = self.clock() - self.idle_seconds
        while self.parked:
            request, (_, since) = next(iter(self.parked.items()))
            if since > limit:
                return
            self.unpark(request)
            self.timed_out += 1
            self.shutdown_request(request)
