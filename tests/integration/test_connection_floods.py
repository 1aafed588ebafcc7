"""Floods of clients against the sink (TCP, TLS) and the web process, as a fault probe tried them
(issue 24): memory and the connection cap hold, trickled messages cost O(bytes), empty frames are
no events, repeated warnings are one line then a count, and the web server survives.

Every flood is bounded in count and time and goes to 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import os
import re
import resource
import selectors
import signal
import socket
import ssl
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from loggend.control.pki import make_pki
from loggend.engine.journal import THROTTLE_SECONDS
from loggend.sink.streams import MAX_CONNECTIONS
from loggend.web.server import MAX_CONNECTIONS as WEB_MAX_CONNECTIONS
from tests.support.processes import alive, children_named, free_tcp_port, msg, wait_until
from tests.support.receivers import free_port, openssl_available

pytestmark = pytest.mark.slow

# The sink process's resident memory with 2,000 idle clients (the README states the same bound):
# a socket and its bookkeeping per open connection, no buffer, and at most MAX_CONNECTIONS of them.
SINK_MEMORY_CAP_MB = 100
IDLE_CLIENTS = 2000
# The web server takes a connection and then closes the oldest parked one to make room for it (or answers
# it 503): between the two it holds one more than its cap.
IN_HAND = 1
ROUNDS = 1000                     # a byte to each of 20 connections, then wait for the sink to read them


def raise_open_files(need: int) -> None:
    """This test process's own soft limit of open files, up to its hard limit (skip if that is too low)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"needs {need} open files, the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("VmRSS:"))) / 1024


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def said(lines: list[str], needle: str) -> tuple[int, int]:
    """(lines saying ``needle`` in full, how many more the throttle's count lines add up to)."""
    full = sum(1 for line in lines if needle in line and "more like that" not in line)
    more = sum(int(m.group(1).replace(",", "")) for line in lines if needle in line
               if (m := re.search(r"([\d,]+) more like that", line)))
    return full, more


def start_sink_with_dashboard(loggend, *extra: str):
    """A one-process sink with a dashboard: (the command, its port, its dashboard URL, its sink process)."""
    port, web = free_port(udp=False), free_tcp_port()
    proc = loggend("sink", "--listen", f"127.0.0.1:{port}", "--processes", "1", "--dashboard", f"127.0.0.1:{web}",
                   "--duration", "120s", *extra)
    proc.wait_line("READY listening on")
    (child,) = wait_until(lambda: children_named(proc.pid, "loggend-sink"), what="the sink process")
    url = f"http://127.0.0.1:{web}"
    wait_until(lambda: healthz(url) == 200, what="the sink's dashboard")
    return proc, port, url, child


def healthz(url: str) -> int:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as r:
            return r.status
    except OSError:
        return 0


def sink_metric(url: str, name: str, **labels: str) -> float:
    """The sum of a sample of the sink's /metrics over its sink processes."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def connect_many(port: int, count: int, wrap: ssl.SSLContext | None = None) -> list[socket.socket]:
    out: list[socket.socket] = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if wrap is not None:
            try:
                s = wrap.wrap_socket(s, server_hostname="127.0.0.1")
            except (ssl.SSLError, OSError):       # refused at the cap: closed before the handshake
                s.close()
                continue
        out.append(s)
    return out


def closed_by_peer(socks: list[socket.socket], timeout: float) -> int:
    """How many of ``socks`` the other end has closed (readable now, and at EOF or reset)."""
    closed = 0
    with selectors.DefaultSelector() as sel:
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        for key, _ in sel.select(timeout):
            sock = key.fileobj
            try:
                sock.setblocking(False)
                closed += sock.recv(1) == b""
            except (ConnectionResetError, ssl.SSLError):
                closed += 1
            except (BlockingIOError, ssl.SSLWantReadError):
                pass
    return closed


def idle_flood(loggend, protocol: str, tmp_path) -> None:
    raise_open_files(IDLE_CLIENTS + 512)
    extra: tuple[str, ...] = ()
    wrap = None
    if protocol == "tls":
        if reason := openssl_available():
            pytest.skip(reason)
        pki = make_pki(tmp_path / "pki")
        extra = ("--protocol", "tls", "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
        wrap = ssl.create_default_context(cafile=str(pki.ca_cert))
    else:
        extra = ("--protocol", "tcp")
    proc, port, url, child = start_sink_with_dashboard(loggend, *extra)
    clients = connect_many(port, IDLE_CLIENTS, wrap)
    try:
        # every client was taken: kept, or closed over the cap (a silent one makes room for a new one)
        wait_until(lambda: sink_metric(url, "loggen_sink_open_connections") + sink_metric(
            url, "loggen_sink_dropped_connections_total", reason="cap") >= IDLE_CLIENTS, timeout=60,
            what="the sink taking every connection")
        rss = rss_mb(child)
        assert rss < SINK_MEMORY_CAP_MB, f"{protocol}: the sink process holds {rss:.0f} MB"
        assert sink_metric(url, "loggen_sink_open_connections") == MAX_CONNECTIONS
        assert sink_metric(url, "loggen_sink_dropped_connections_total", reason="cap") == \
            IDLE_CLIENTS - MAX_CONNECTIONS
        assert closed_by_peer(clients, 2) >= IDLE_CLIENTS - MAX_CONNECTIONS
        assert open_files(child) <= MAX_CONNECTIONS + 64
    finally:
        for c in clients:
            c.close()
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stderr
    assert re.search(r"dropped +[\d,]+ connections at the cap", proc.stdout), proc.stdout
    assert "Traceback" not in proc.stderr
    # making room is said once, then counted
    assert said(proc.err, "to make room") == (1, IDLE_CLIENTS - MAX_CONNECTIONS - 1), proc.stderr[-2000:]


def test_two_thousand_idle_tcp_clients_keep_the_sink_under_its_memory_cap(loggend, tmp_path):
    """2,000 idle TCP sockets once took the sink from 23 MB to 2.08 GB (1 MiB of buffer each, no cap)."""
    idle_flood(loggend, "tcp", tmp_path)


def test_two_thousand_idle_tls_clients_keep_the_sink_under_its_memory_cap(loggend, tmp_path):
    """1,000 idle TLS clients once took 1.1 GB."""
    idle_flood(loggend, "tls", tmp_path)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def unread_by_server(port: int) -> int:
    """Bytes queued in the receive queues of the server side of connections to ``port`` (/proc/net/tcp)."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(int(r[4].split(":")[1], 16) for r in rows if int(r[1].split(":")[1], 16) == port and r[3] == "01")


def test_huge_frames_trickled_in_cost_the_sink_no_core(loggend):
    """20 connections sending `999999 ` + 900 KB, then a byte a millisecond, once took ~90 % of a core
    (the whole buffer copied on every read): such a frame is longer than any syslog message and the
    connection is closed; what a legal frame costs is O(bytes) (tests/unit/test_streams.py). Each
    round waits until the sink has read its bytes, so the work asked of it does not depend on how
    busy the machine is, and its CPU time is compared with what the old code took (about 1 s)."""
    proc, port, url, child = start_sink_with_dashboard(loggend, "--protocol", "tcp")
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
    for c in clients:
        c.setblocking(False)
        try:
            c.send(b"999999 " + b"x" * 900_000)
        except OSError:
            pass
    wait_until(lambda: unread_by_server(port) == 0, timeout=10, what="the sink reading the frames' heads")
    before = cpu_seconds(child)
    sending = list(clients)
    for _ in range(ROUNDS):
        for c in list(sending):
            try:
                c.send(b"x")
            except OSError:                      # closed by the sink: nothing more to send there
                sending.remove(c)
        if not sending:
            break
        wait_until(lambda: unread_by_server(port) == 0, timeout=10, interval=0.001, what="the sink reading")
    spent = cpu_seconds(child) - before
    for c in clients:
        c.close()
    assert spent < 0.3, f"the sink process spent {spent:.2f} s of CPU on {20 * ROUNDS:,} bytes"
    wait_until(lambda: sink_metric(url, "loggen_sink_rejected_connections_total") == 20, what="20 rejected")
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stderr
    assert said(proc.err, "not syslog framing; closed") == (1, 19), proc.stderr[-2000:]


def test_empty_frames_and_blank_lines_are_counted_apart_not_received(loggend):
    """100,000 `0 ` frames and blank lines were once "received 200,001 events"."""
    proc, port, url, child = start_sink_with_dashboard(loggend, "--protocol", "tcp")
    real = msg("w0", 0)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as octets:
        octets.sendall(b"0 " * 100_000 + b"%d %s" % (len(real), real))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as lines:
        lines.sendall(b"\n" * 100_000)
    wait_until(lambda: sink_metric(url, "loggen_sink_empty_frames_total") >= 200_000, timeout=30,
               what="the empty frames counted")
    assert sink_metric(url, "loggen_sink_received_total") == 1
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stderr
    assert re.search(r"received +1 events", proc.stdout), proc.stdout
    assert re.search(r"empty +200,000 empty frames", proc.stdout), proc.stdout


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith("Threads:")))


def served_connections(pid: int, port: int) -> int:
    """Connections to ``port`` that process ``pid`` holds open (its socket descriptors in /proc/net/tcp).

    Read with the process stopped: a server still working through a flood closes one descriptor and
    accepts into the same number while the descriptors are read, and a reading taken across that
    counted one more than it ever held (257 under a loaded suite)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: stopped(pid), timeout=5, what=f"process {pid} stopped")
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
    finally:
        os.kill(pid, signal.SIGCONT)
    return sum(1 for r in rows if int(r[1].split(":")[1], 16) == port and r[3] != "0A" and r[9] in inodes)


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def websocket_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()


def flood(port: int, count: int, first_bytes: bytes | None) -> list[socket.socket]:
    """``count`` connections to the dashboard, each sending ``first_bytes`` (or a WebSocket upgrade)."""
    out = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            s.send(first_bytes if first_bytes is not None else websocket_request(port))
        except OSError:                     # refused (503) or made room for a newer one already
            pass
        out.append(s)
    return out


def test_the_dashboard_survives_one_byte_and_websocket_floods_and_its_cap_holds(loggend):
    """300 sockets sending one byte each crashed the web process 3 times of 3 (`ValueError: Invalid file
    descriptor: -1`: a connection evicted to make room was then handed over), and so did 1,000 WebSockets."""
    raise_open_files(1000 + 512)
    proc, port, url, child = start_sink_with_dashboard(loggend)
    (web,) = children_named(proc.pid, "loggend-web")
    web_port = int(url.rsplit(":", 1)[1])
    for _ in range(3):
        clients = flood(web_port, 300, b"G")
        try:
            time.sleep(0.5)                                  # the server takes them all (or has crashed)
            assert alive(web) and children_named(proc.pid, "loggend-web") == [web], "the web process died"
            assert served_connections(web, web_port) <= WEB_MAX_CONNECTIONS + IN_HAND
            # the half-sent requests give way: a probe is answered while they are still held (they held 10 s)
            wait_until(lambda: healthz(url) == 200, timeout=5, what="/healthz beside 300 half-sent requests")
        finally:
            for c in clients:
                c.close()
    clients = flood(web_port, 1000, None)
    try:
        time.sleep(1.0)
        assert alive(web) and children_named(proc.pid, "loggend-web") == [web], "the web process died"
        assert served_connections(web, web_port) <= WEB_MAX_CONNECTIONS + IN_HAND
        assert threads_of(web) <= 2 * WEB_MAX_CONNECTIONS + 16      # a WebSocket: its handler and its reader
    finally:
        for c in clients:
            c.close()
    wait_until(lambda: healthz(url) == 200, timeout=30, what="the dashboard answering again")
    assert children_named(proc.pid, "loggend-web") == [web]
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Invalid file descriptor" not in proc.stderr, proc.stderr[-3000:]


def test_garbage_handshakes_and_bad_requests_are_one_line_then_a_count(loggend, tmp_path):
    """3,000 garbage TLS handshakes and bad HTTP requests once wrote 4,001 log lines."""
    if reason := openssl_available():
        pytest.skip(reason)
    pki = make_pki(tmp_path / "pki")
    proc, port, url, child = start_sink_with_dashboard(loggend, "--protocol", "tls", "--tls-cert", str(pki.server_cert),
                                        "--tls-key", str(pki.server_key))
    web_port = int(url.rsplit(":", 1)[1])
    for _ in range(2000):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x00\x05garbage, not a ClientHello\r\n")
            s.settimeout(10)
            try:
                s.recv(100)                              # the sink's alert, or its close
            except OSError:
                pass
    for _ in range(1000):
        with socket.create_connection(("127.0.0.1", web_port), timeout=10) as s:
            s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            s.settimeout(10)
            while s.recv(4096):                          # the 400, then the close
                pass
    wait_until(lambda: sink_metric(url, "loggen_sink_tls_failures_total") >= 2000, timeout=30,
               what="every failed handshake counted")
    # the web process says its count when its period (THROTTLE_SECONDS) is over
    wait_until(lambda: said(proc.err, "code 400")[1], timeout=THROTTLE_SECONDS + 10, what="the count of bad requests")
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stderr
    assert said(proc.err, "TLS handshake with") == (1, 1999), proc.stderr[-3000:]
    assert said(proc.err, "code 400") == (1, 999), proc.stderr[-3000:]
    assert len(proc.err) <= 6, proc.stderr[-3000:]
