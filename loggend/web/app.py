"""The Flask app of the web process: dashboard, REST, WebSocket feed and Prometheus ``/metrics``.

``/api/metrics`` returns the sampler's latest frame, every ``/ws`` client is sent each new one
from its own thread, ``/metrics`` is built from the counters at scrape time, in the Prometheus
text format or OpenMetrics when the scraper's ``Accept`` asks for it, with the supervisor's
``process_*`` figures beside loggen's own. Endpoints are GET only; a request whose ``Host`` is
not one of the dashboard's (``loggend.web.hosts``: DNS rebinding) gets 403; with a token set,
every one wants ``Authorization: Bearer TOKEN`` (or ``?token=`` where a browser cannot set
headers).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, request
from flask_sock import Sock
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import choose_encoder
from werkzeug.exceptions import HTTPException

from loggend.web.hosts import HostCheck
from loggend.web.metrics import LoggenCollector, SinkCollector
from loggend.web.server import WS_SEND_SECONDS
from loggend.web.state import WebState

DASHBOARD_FILES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
                   "/style.css": ("style.css", "text/css")}


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


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: Bearer TOKEN`` header ("" for none or another scheme); the
    scheme is case-insensitive and may be followed by several spaces (RFC 9110 11.1, 11.4)."""
    scheme, _, credentials = header.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


MAX_BODY = 64 * 1024             # bytes of a request body (a detection is a few dozen)


def create_app(state: WebState, token: str = "", origins: tuple[str, ...] = (), listen: str = "127.0.0.1",
               hosts: tuple[str, ...] = (), supervisor_pid: int | None = None,
               detections: Callable[[str], dict[str, Any]] | None = None) -> Flask:
    """The app; ``listen`` is the address the dashboard is bound to (for the Host check), ``hosts`` the
    names allowed besides, ``supervisor_pid`` the process whose ``process_*`` figures /metrics shows,
    ``detections`` where ``POST /api/detections`` hands a detection on (to the supervisor)."""
    app = Flask(__name__, static_folder=None)
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25}
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY          # a request body larger than any answer is refused (413)
    sock = Sock(app)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoggenCollector(state.collector_source))
    registry.register(SinkCollector(state.sink_source, state.named_streams))
    if supervisor_pid is not None:
        ProcessCollector(pid=lambda: supervisor_pid, registry=registry)
    host_check = HostCheck(listen, hosts)

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
        header = request.headers.get("Host", "")
        if not host_check.allows(header):
            return error(403, f"host {header!r} is not one of this dashboard's; add it to dashboard_hosts "
                         "to allow it")
        if token:
            given = bearer_token(request.headers.get("Authorization", "")) or request.args.get("token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return error(401, "a valid bearer token is required")
        port = int(request.environ.get("SERVER_PORT") or 0) or None
        if request.path == "/ws" and not same_origin(request.headers.get("Origin", ""), request.host, origins, port):
            return error(403, f"origin {request.headers.get('Origin')!r} may not open the feed")
        origin = request.headers.get("Origin", "")
        if request.method == "POST" and origin and not same_origin(origin, request.host, origins, port):
            return error(403, f"origin {origin!r} may not write")       # a page elsewhere posting through a browser
        return None

    def page(name: str, mimetype: str) -> Response:
        body = resources.files("loggend.web").joinpath("dashboard", name).read_bytes()
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

    add_detections(app, detections, error)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok", "frame": state.frame_number})

    @app.get("/metrics")
    def metrics() -> Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encoder(registry), content_type=content_type)

    @sock.route("/ws")  # type: ignore[untyped-decorator]
    def ws(socket: Any) -> None:
        socket.sock.settimeout(WS_SEND_SECONDS)     # a client that takes no frame this long is dropped
        number, frame = state.latest()
        try:
            socket.send(frame)
            while socket.connected:
                newer, frame = state.wait_frame(number)
                if newer != number:
                    number = newer
                    socket.send(frame)
        except OSError:
            socket.connected = False

    return app


def add_detections(app: Flask, detections: Callable[[str], dict[str, Any]] | None,
                   error: Callable[[int, str], Response]) -> None:
    """``POST /api/detections``: the SIEM's word, handed to the supervisor (through ``detections``)."""
    @app.post("/api/detections")
    def api_detections() -> Response:
        """The SIEM's word: ``{"scenario": ID, "detected_at": TIME}`` (unix seconds or ISO 8601; now when
        left out), handed to the supervisor, which notes it for the instance's detection latency."""
        doc = request.get_json(silent=True, force=True)      # whatever Content-Type the SIEM's client sends
        if not isinstance(doc, dict) or not isinstance(doc.get("scenario"), str) or not doc["scenario"].strip():
            return error(400, 'expected JSON {"scenario": ID, "detected_at": TIME}')
        at = doc.get("detected_at")
        if at is not None and (isinstance(at, bool) or not isinstance(at, (int, float, str))):
            return error(400, "detected_at: expected unix seconds or an ISO 8601 time with a zone")
        if detections is None:
            return error(503, "this run takes no detections by the web (it needs --scenario, --detect webhook and a "
                              "control socket)")
        words = [doc["scenario"].strip(), *([] if at is None else [str(at).strip()])]
        if any(not w or any(c.isspace() for c in w) for w in words):
            return error(400, "scenario and detected_at may not contain spaces")
        reply = detections(" ".join(words))
        if reply.get("unavailable"):
            return error(503, str(reply.get("message", "the supervisor did not answer")))
        if not reply.get("ok"):
            return error(400 if reply.get("usage") else 409, str(reply.get("message", "refused")))
        return jsonify({"ok": True, "message": reply.get("message", "")})
