"""The web process: dashboard, REST, WebSocket feed and Prometheus ``/metrics``; it only reads.

It runs in its own child of the supervisor (never a thread of the forking supervisor). A sampler
thread reads the shared counters and the run board once per interval and builds one snapshot
document; ``/api/metrics`` returns the latest, every ``/ws`` client is sent each new one from its
own thread (a slow client only delays itself and skips to the newest frame), ``/metrics`` is
built from the counters at scrape time. Endpoints are GET only; with a token set, every one
wants ``Authorization: Bearer TOKEN`` (or ``?token=`` where a browser cannot set headers).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import psutil
from flask import Flask, Response, jsonify, request
from flask_sock import Sock
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from loggend.board import Board
from loggend.engine.counters import CounterBlock, SlotSnapshot
from loggend.metrics import (
    History,
    LoggenCollector,
    ProcFigures,
    Rates,
    SinkCollector,
    SystemFigures,
    sink_document,
    snapshot_document,
    summary_document,
)
from loggend.sink import SinkTotals

DASHBOARD_FILES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
                   "/style.css": ("style.css", "text/css")}
WS_WAIT_FACTOR = 5               # a /ws client hears something at least every 5 intervals
EXIT_LISTEN_FAILED = 3


class ProcSampler:
    """CPU and memory of the worker processes and of the machine, through psutil."""

    def __init__(self) -> None:
        self.procs: dict[int, psutil.Process] = {}
        self.last: dict[int, tuple[float, float]] = {}     # pid -> (time, cpu seconds)
        psutil.cpu_percent()                               # primes the system-wide figure

    def workers(self, pids: list[int]) -> dict[int, ProcFigures]:
        out: dict[int, ProcFigures] = {}
        now = time.monotonic()
        for pid in pids:
            try:
                proc = self.procs.get(pid) or self.procs.setdefault(pid, psutil.Process(pid))
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss = proc.memory_info().rss
            except psutil.Error:
                self.procs.pop(pid, None)
                continue
            cpu = times.user + times.system
            then, before = self.last.get(pid, (now, cpu))
            self.last[pid] = (now, cpu)
            percent = 100.0 * (cpu - before) / (now - then) if now > then else 0.0
            out[pid] = ProcFigures(cpu_seconds=cpu, cpu_percent=percent, rss_bytes=rss)
        for gone in set(self.procs) - set(pids):
            self.procs.pop(gone, None)
            self.last.pop(gone, None)
        return out

    @staticmethod
    def system() -> SystemFigures:
        mem = psutil.virtual_memory()
        return SystemFigures(cpu_percent=psutil.cpu_percent(), memory_percent=mem.percent,
                             memory_used_bytes=mem.total - mem.available, memory_total_bytes=mem.total,
                             processes=len(psutil.pids()))


class WebState:
    """The sampler thread and what it produced, shared by the request threads."""

    def __init__(self, block: CounterBlock, board: Board, interval: float,
                 clock: Callable[[], float] = time.monotonic, wallclock: Callable[[], float] = time.time,
                 sink_block: CounterBlock | None = None, stream_block: CounterBlock | None = None) -> None:
        self.block = block
        self.sink_block = sink_block
        self.stream_block = stream_block
        self.sink_rates = Rates()
        self.board = board
        self.interval = interval
        self.clock = clock
        self.wallclock = wallclock
        self.rates = Rates()
        self.history = History()
        self.sampler = ProcSampler()
        self.procs: dict[int, ProcFigures] = {}
        self.frame: dict[str, Any] = {}
        self.frame_json = "{}"
        self.frame_number = 0
        self.changed = threading.Condition()
        self._stop = threading.Event()

    def slots(self, board: dict[str, Any]) -> list[SlotSnapshot]:
        return self.block.snapshots(int(board.get("slots", board.get("workers", 1))))

    def sink_rows(self, board: dict[str, Any] | None = None) -> list[list[int]]:
        board = self.board.read() if board is None else board
        count = int(board.get("sink_slots", 0))
        if self.sink_block is None or not count:
            return []
        return [self.sink_block.values(i) for i in range(count)]

    def stream_rows(self, board: dict[str, Any], slots: list[SlotSnapshot]) -> list[list[int]] | None:
        if self.stream_block is None or not int(board.get("sink_slots", 0)):
            return None
        return [self.stream_block.values(i) for i in range(len(slots))]

    def sink(self, board: dict[str, Any], slots: list[SlotSnapshot]) -> dict[str, Any] | None:
        count = int(board.get("sink_slots", 0))
        if self.sink_block is None or not count:
            return None
        totals = SinkTotals.of(self.sink_block, count)
        sent = sum(s.sent for s in slots) if int(board.get("workers", 0)) else None     # None: a sink on its own
        return sink_document(totals, sent, self.sink_rates.rate(1))

    def sample(self) -> None:
        board = self.board.read()
        slots = self.slots(board)
        now, wall = self.clock(), self.wallclock()
        self.rates.add(now, [s.sent for s in slots])
        self.sink_rates.add(now, [row[0] for row in self.sink_rows(board)])
        self.procs = self.sampler.workers([s.pid for s in slots if s.pid])
        frame = snapshot_document(slots, board, self.rates, self.procs, self.sampler.system(), wall,
                                  time.monotonic_ns(), self.sink(board, slots), self.stream_rows(board, slots))
        if len(self.rates.times) > 1:
            self.history.add(wall, frame["events_per_second"]["1s"])
        with self.changed:
            self.frame = frame
            self.frame_json = json.dumps(frame)
            self.frame_number += 1
            self.changed.notify_all()

    def run(self) -> None:
        next_at = self.clock()
        while not self._stop.is_set():
            self.sample()
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - self.clock()))

    def start(self) -> None:
        self.sample()
        threading.Thread(target=self.run, name="sampler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def latest(self) -> tuple[int, str]:
        with self.changed:
            return self.frame_number, self.frame_json

    def wait_frame(self, after: int) -> tuple[int, str]:
        with self.changed:
            self.changed.wait_for(lambda: self.frame_number > after, timeout=self.interval * WS_WAIT_FACTOR)
            return self.frame_number, self.frame_json

    def collector_source(self) -> tuple[list[SlotSnapshot], dict[str, Any], dict[int, ProcFigures]]:
        board = self.board.read()
        return self.slots(board), board, self.procs

    def summary(self) -> dict[str, Any]:
        board = self.board.read()
        slots = self.slots(board)
        return summary_document(slots, board, self.history, self.wallclock(), self.sink(board, slots))

    def history_points(self) -> list[tuple[float, float]]:
        return list(self.history.points)


def same_origin(origin: str, host: str, allowed: tuple[str, ...], server_port: int | None = None) -> bool:
    """A WebSocket handshake from a page of this server (or an allowed origin), or from no browser.

    ``host`` is the request's Host header; a client that leaves the port out of it is matched
    on the port this server really listens on.
    """
    if not origin:
        return True                      # curl, Prometheus, scripts: no Origin header
    if origin.rstrip("/") in allowed:
        return True
    parts = urlsplit(origin)
    if parts.netloc == host:
        return True
    return server_port is not None and ":" not in host and parts.hostname == host and parts.port == server_port


def create_app(state: WebState, token: str = "", origins: tuple[str, ...] = ()) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25}
    sock = Sock(app)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoggenCollector(state.collector_source))
    registry.register(SinkCollector(state.sink_rows))

    def error(status: int, message: str) -> Response:
        response = jsonify({"error": message, "status": status})
        response.status_code = status
        if status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="loggen"'
        return response

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        return error(err.code or 500, err.description or err.name)

    @app.errorhandler(Exception)
    def internal_error(err: Exception) -> Response:
        app.logger.error("request failed: %s: %s", type(err).__name__, err)
        return error(500, "internal error")

    @app.before_request
    def guard() -> Response | None:
        if token:
            header = request.headers.get("Authorization", "")
            given = header[7:] if header.startswith("Bearer ") else request.args.get("token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return error(401, "a valid bearer token is required")
        port = int(request.environ.get("SERVER_PORT") or 0) or None
        if request.path == "/ws" and not same_origin(request.headers.get("Origin", ""), request.host, origins, port):
            return error(403, f"origin {request.headers.get('Origin')!r} may not open the feed")
        return None

    def page(name: str, mimetype: str) -> Response:
        body = resources.files("loggend").joinpath("dashboard", name).read_bytes()
        return Response(body, mimetype=mimetype, headers={"Cache-Control": "no-cache"})

    for path, (name, mimetype) in DASHBOARD_FILES.items():
        app.add_url_rule(path, f"page:{name}", lambda n=name, m=mimetype: page(n, m), methods=["GET"])

    @app.get("/api/metrics")
    def api_metrics() -> Response:
        return Response(state.frame_json, mimetype="application/json")

    @app.get("/api/summary")
    def api_summary() -> Response:
        return jsonify(state.summary())

    @app.get("/api/history")
    def api_history() -> Response:
        return jsonify({"interval": state.interval, "points": state.history_points()})

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok", "frame": state.frame_number})

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    @sock.route("/ws")  # type: ignore[untyped-decorator]
    def ws(socket: Any) -> None:
        number, frame = state.latest()
        socket.send(frame)
        while socket.connected:
            newer, frame = state.wait_frame(number)
            if newer != number:
                number = newer
                socket.send(frame)

    return app


def serve(host: str, port: int, token: str, origins: tuple[str, ...], interval: float,
          block: CounterBlock, board: Board, log: Callable[[str], None], sink_block: CounterBlock | None = None,
          stream_block: CounterBlock | None = None) -> int:
    """Run the web process until it is killed; EXIT_LISTEN_FAILED when it cannot listen."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    state = WebState(block, board, interval, sink_block=sink_block, stream_block=stream_block)
    app = create_app(state, token, origins)
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as err:
        log(f"dashboard: cannot listen on {host}:{port}: {err.strerror or err}")
        return EXIT_LISTEN_FAILED
    state.start()
    shown = f"[{host}]" if ":" in host else host
    log(f"dashboard: http://{shown}:{server.server_port}/ (metrics at /metrics)")
    server.serve_forever()
    return 0
