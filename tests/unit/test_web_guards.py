"""The web process's guards without processes: the Host check, /metrics formats, the bounded server."""

import os
import socket
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loggend.engine.counters import Board, CounterBlock
from loggend.report.sources import Sources
from loggend.web.app import create_app
from loggend.web.hosts import HostCheck, host_name
from loggend.web.server import BUSY, BoundedServer
from loggend.web.state import WebState


@pytest.fixture
def state():
    board = Board()
    board.publish({"target": "127.0.0.1:514", "ports": [514], "rate": 10.0, "workers": 1, "slots": 1})
    s = WebState(Sources(CounterBlock(1), board), interval=1.0)
    s.sample()
    return s


# --- Host ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("header,name", [("localhost:8080", "localhost"), ("[::1]:8080", "::1"), ("::1", "::1"),
                                         ("LoadGen.Example.:80", "loadgen.example"), ("10.0.0.5", "10.0.0.5")])
def test_host_name_drops_the_port(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize("listen,allowed,header,ok", [
    ("127.0.0.1", (), "127.0.0.1:8080", True),
    ("127.0.0.1", (), "localhost:8080", True),
    ("127.0.0.1", (), "[::1]:8080", True),                 # loopback answers to loopback
    ("127.0.0.1", (), "evil.example:8080", False),         # a rebound name
    ("127.0.0.1", (), "127.0.0.1.nip.io:8080", False),
    ("127.0.0.1", (), "", True),                           # no Host: not a browser
    ("10.0.0.5", (), "10.0.0.5:8080", True),
    ("10.0.0.5", (), "localhost:8080", False),             # not listening on loopback
    ("10.0.0.5", (), "10.0.0.6:8080", False),
    ("0.0.0.0", (), "192.0.2.7:8080", True),               # every address: any address
    ("0.0.0.0", (), "localhost", True),
    ("0.0.0.0", (), "evil.example", False),
    ("::", (), "[2001:db8::1]:8080", True),
    ("10.0.0.5", ("loadgen.example",), "LOADGEN.example:8080", True),
    ("10.0.0.5", (".example",), "a.b.example", True),
    ("10.0.0.5", (".example",), "example", True),
    ("10.0.0.5", (".example",), "badexample", False),
    ("10.0.0.5", ("*",), "anything.at.all", True),
    ("10.0.0.5", (), "this-machine", True),                # the machine's own name
])
def test_host_check(listen, allowed, header, ok):
    assert HostCheck(listen, allowed, machine="this-machine").allows(header) is ok


def test_a_foreign_host_gets_403_json_on_every_endpoint(state):
    c = create_app(state).test_client()
    for path in ("/", "/api/metrics", "/metrics", "/healthz", "/ws"):
        r = c.get(path, headers={"Host": "evil.example:8080"})
        assert r.status_code == 403 and "evil.example" in r.get_json()["error"], path
        assert "dashboard_hosts" in r.get_json()["error"]
    assert c.get("/healthz", headers={"Host": "localhost:8080"}).status_code == 200
    allowed = create_app(state, listen="10.0.0.5", hosts=("loadgen.example",)).test_client()
    assert allowed.get("/healthz", headers={"Host": "loadgen.example:8080"}).status_code == 200
    assert allowed.get("/healthz", headers={"Host": "localhost:8080"}).status_code == 403


# --- /metrics -----------------------------------------------------------------------------------------------

def test_metrics_content_type_has_one_charset(state):
    r = create_app(state).test_client().get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert r.headers["Content-Type"].count("charset") == 1


def test_openmetrics_when_the_scraper_asks(state):
    # Prometheus 2.x/3.x sends a list like this one, OpenMetrics first
    accept = ("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
              "text/plain;version=0.0.4;q=0.3,*/*;q=0.1")
    r = create_app(state).test_client().get("/metrics", headers={"Accept": accept})
    assert r.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0; charset=utf-8")
    body = r.get_data(as_text=True)
    assert body.endswith("# EOF\n") and 'loggen_workers{instance_index="0",run_id=""} 1.0' in body
    plain = create_app(state).test_client().get("/metrics", headers={"Accept": "text/plain"})
    assert not plain.get_data(as_text=True).endswith("# EOF\n")


def test_process_figures_are_the_supervisors(state):
    """process_* comes from the pid it is given (the web child gives its parent, the supervisor)."""
    body = create_app(state, supervisor_pid=os.getpid()).test_client().get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(body)}
    with open(f"/proc/{os.getpid()}/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/stat") as f:
        boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
    expected = boot + start_ticks / os.sysconf("SC_CLK_TCK")
    assert families["process_start_time_seconds"].samples[0].value == pytest.approx(expected)
    assert families["process_open_fds"].samples[0].value > 0
    assert "process_cpu_seconds" in families and "process_resident_memory_bytes" in families
    assert "process_start_time_seconds" not in create_app(state).test_client().get("/metrics").get_data(as_text=True)


# --- the bounded server -------------------------------------------------------------------------------------

class Served:
    """A BoundedServer on a free loopback port, serving in a thread; ``gate`` holds /slow requests."""

    def __init__(self, **kw) -> None:
        self.gate = threading.Event()
        gate = self.gate

        def app(environ, start_response):
            if environ["PATH_INFO"] == "/slow":
                gate.wait(10)
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok"]

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.server = BoundedServer("127.0.0.1", self.port, app, fd=self.listener.fileno(), **kw)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def get(self, path: str = "/", sock: socket.socket | None = None) -> bytes:
        sock = sock or self.connect()
        with sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
            return data

    def close(self) -> None:
        self.gate.set()
        self.listener.close()


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def test_an_idle_connection_costs_no_thread_and_is_closed_after_idle_seconds():
    s = Served(idle_seconds=0.5)
    try:
        threads = threading.active_count()
        idle = [s.connect() for _ in range(20)]
        time.sleep(0.2)
        assert threading.active_count() == threads                  # parked: no thread each
        assert s.get("/").endswith(b"ok")                           # a real client is served meanwhile
        assert all(closed_by_server(c, 3) for c in idle)
        assert s.server.timed_out == 20 and s.server.open == 0
    finally:
        s.close()


def test_at_the_cap_the_oldest_idle_connection_makes_room():
    s = Served(max_connections=8, idle_seconds=30)
    try:
        idle = [s.connect() for _ in range(8)]
        time.sleep(0.2)
        assert s.get("/").endswith(b"ok")                           # took the place of the oldest
        assert closed_by_server(idle[0], 3)
        assert not closed_by_server(idle[-1], 0.2)
        assert s.server.evicted >= 1 and s.server.open <= 8
    finally:
        s.close()


def test_when_every_connection_is_busy_a_new_one_gets_503_without_a_thread():
    s = Served(max_connections=2, idle_seconds=30)
    try:
        busy = [s.connect() for _ in range(2)]
        for b in busy:
            b.sendall(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        deadline = time.monotonic() + 5          # both accepted and handed to their threads
        while (s.server.open < 2 or s.server.parked) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert s.get("/") == BUSY
        assert s.server.refused == 1
        s.gate.set()
        for b in busy:
            assert b.recv(4096).startswith(b"HTTP/1.1 200")
            b.close()                               # (kept alive until then: they counted till now)
        deadline = time.monotonic() + 5
        while s.server.open and time.monotonic() < deadline:
            time.sleep(0.01)
        assert s.get("/").endswith(b"ok")
    finally:
        s.close()


def ended(sock: socket.socket) -> bool:
    """The server ended this connection (a close, a reset, or werkzeug's 400 for the one byte it got)."""
    sock.settimeout(0.5)
    try:
        data = sock.recv(4096)
        return data == b"" or data.startswith(b"HTTP/1")
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_at_the_cap_a_half_sent_request_gives_way_to_a_real_client():
    """Connections that each sent one byte held every thread: /healthz got 503 for as long as they waited."""
    s = Served(max_connections=4, idle_seconds=30)
    try:
        slow = [s.connect() for _ in range(4)]
        for c in slow:
            c.sendall(b"G")                          # handed to a thread, which waits for the rest
        deadline = time.monotonic() + 5
        while (len(s.server.heads) < 4 or s.server.parked) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert s.get("/") == BUSY                    # younger than SLOW_REQUEST_SECONDS: nobody gives way yet
        deadline = time.monotonic() + 5              # a second on, the loop's next turn cuts the oldest
        while s.server.open > 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert s.get("/").endswith(b"ok")            # a place was free for it
        assert s.server.evicted >= 1 and sum(map(ended, slow)) == s.server.evicted and s.server.open <= 4
    finally:
        s.close()
