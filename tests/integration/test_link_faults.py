"""A TCP/TLS run through receivers that misbehave, on real processes and real loopback sockets: a slow
TLS reader with live pause/rate/resume loses nothing, a worker restarted while the receiver is down
reconnects like the others, a handshake that never completes does not make a worker hung, the time
without a connection and what was still unsent at the close are reported, and a timed run lasts its
duration whatever its rate does."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import threading
import time

import pytest

from tests.support.processes import RUN, run_loggend, start_sink, wait_until
from tests.support.receivers import free_port

pytestmark = pytest.mark.slow

SLOW_READ_BYTES = 2048            # the slow reader takes this much...
SLOW_READ_PAUSE = 0.01            # ...every this many seconds (about 200 KiB/s: a 25th of what the run sends)


def ctl(sock: str, *args: str) -> dict:
    result = run_loggend("ctl", "--socket", sock, *args, "--json", timeout=20)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["status"]


def frames(data: bytes) -> list[bytes]:
    """The messages of an octet-counted stream (a torn last one left out)."""
    out, at = [], 0
    while (space := data.find(b" ", at)) > 0:
        length = int(data[at:space])
        if space + 1 + length > len(data):
            break
        out.append(data[space + 1:space + 1 + length])
        at = space + 1 + length
    return out


class SlowTlsReader:
    """Accepts TLS connections on 127.0.0.1 and reads SLOW_READ_BYTES every SLOW_READ_PAUSE (at full
    speed once ``hurry`` is set), until the client closes; keeps every byte."""

    def __init__(self, pki) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)     # a small window: push-back soon
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port = self.listener.getsockname()[1]
        self.data: list[bytes] = []
        self.connections = 0
        self.done = threading.Event()
        self.hurry = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(60)
        while not self.done.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with self.context.wrap_socket(raw, server_side=True) as conn:
                conn.settimeout(30)
                received = bytearray()
                while True:
                    try:
                        chunk = conn.recv(SLOW_READ_BYTES)
                    except (OSError, ssl.SSLError):
                        break
                    if not chunk:
                        break
                    received += chunk
                    if not self.hurry.is_set():
                        time.sleep(SLOW_READ_PAUSE)
                self.data.append(bytes(received))

    def close(self) -> None:
        self.done.set()
        self.listener.close()


def test_a_slow_tls_reader_with_pause_rate_and_resume_loses_nothing(loggend, pki, tmp_path):
    """A TLS receiver reading 2 KiB per 10 ms: the sender waits on it, is paused, cut to 1,000 ev/s
    and resumed. Every message the run counts as sent arrives, in order, once, on one connection."""
    reader = SlowTlsReader(pki)
    sock, out = str(tmp_path / "ctl.sock"), tmp_path / "summary.json"
    try:
        run = loggend(*RUN, "--target", f"127.0.0.1:{reader.port}", "--protocol", "tls", "--tls-ca",
                      str(pki.ca_cert), "--rate", "50000", "--duration", "10s", "--control-socket", sock,
                      "--summary-json", str(out))
        wait_until(lambda: os.path.exists(sock) and ctl(sock, "status")["blocked_ns"] > 0.5e9, timeout=30,
                   what="the sender to wait on the reader")
        ctl(sock, "pause")
        time.sleep(0.5)
        ctl(sock, "rate", "1000")
        time.sleep(0.3)
        ctl(sock, "resume")
        assert run.wait(60) == 0, run.stderr
        reader.hurry.set()              # what the kernel still holds is read at full speed, as loggen has exited
        wait_until(lambda: reader.data, timeout=120, what="the slow reader to read the whole stream")
    finally:
        reader.close()
    s = json.loads(out.read_text())
    numbers = [int(m.rsplit(b" seq=", 1)[1]) for m in frames(reader.data[0])]
    assert "BAD_LENGTH" not in run.stderr and "lost (" not in run.stderr
    assert (reader.connections, s["reconnects"], s["possibly_lost"]) == (1, 0, s["unsent_at_close"])   # no drop
    assert s["sent"] > 0 and s["blocked_seconds"] > 1.0                # the reader held the sender back
    assert numbers == list(range(s["sent"]))                           # zero loss, by sequence


def received_by(sink) -> int:
    block = sink.stdout[sink.stdout.index("sink summary:"):]
    return int(block.split("received", 1)[1].split()[0].replace(",", ""))


def worker_pid(ready_file) -> int:
    return wait_until(lambda: ctl(json.loads(ready_file.read_text())["control_socket"], "status")["worker_pids"][0],
                      what="the worker's pid")


def test_a_worker_restarted_while_the_receiver_is_down_reconnects_like_the_others(loggend, tmp_path):
    """The TCP receiver goes away, then the worker is SIGKILLed: its replacement cannot connect at
    first, and keeps trying with back-off instead of stopping the run; the stream goes on once the
    receiver is back."""
    port = free_port(udp=False)
    first, _ = start_sink(loggend, port, "--protocol", "tcp")
    ready, out = tmp_path / "ready.json", tmp_path / "summary.json"
    run = loggend(*RUN, "--target", f"127.0.0.1:{port}", "--protocol", "tcp", "--rate", "5000", "--duration", "10s",
                  "--ready-file", str(ready), "--control-socket", str(tmp_path / "ctl.sock"),
                  "--summary-json", str(out))
    wait_until(ready.exists, timeout=30, what="the ready file")
    old = worker_pid(ready)
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0
    run.wait_line("reconnecting", stream="err")
    os.kill(old, signal.SIGKILL)
    run.wait_line("restarting in", stream="err")
    run.wait_line("cannot connect: Connection refused", stream="err", after=len(run.err))
    mark = len(run.err)
    second, _ = start_sink(loggend, port, "--protocol", "tcp", "--idle-exit", "3s")
    run.wait_line("connected (", stream="err", after=mark)          # the replacement's first connection
    assert run.wait(40) == 0, run.stderr
    assert "could not start sending" not in run.stderr
    assert second.wait(20) == 0, run.stderr
    s = json.loads(out.read_text())
    assert s["restarts"] == 1 and received_by(second) > 0
    assert s["workers"][0]["disconnected_seconds"] > 0.5          # the replacement's time without a connection too



def test_a_worker_added_by_a_reload_while_the_receiver_is_down_dials_like_the_others(loggend, tmp_path):
    """2 workers, the TCP receiver gone, a SIGHUP to 3: the new worker cannot connect at first and
    keeps trying; the run goes on and every worker sends once the receiver is back."""
    port = free_port(udp=False)
    first, _ = start_sink(loggend, port, "--protocol", "tcp")
    path, out = tmp_path / "loggen.yaml", tmp_path / "summary.json"
    keys = f"target: 127.0.0.1:{port}\nprotocol: tcp\nrate: 4000\nduration: 12s\ndashboard: off\n"
    path.write_text(keys + "workers: 2\n")
    run = loggend("run", "--config", str(path), "--summary-json", str(out))
    run.wait_line("(2/2 running)")
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0
    run.wait_line("reconnecting", stream="err")
    path.write_text(keys + "workers: 3\n")
    run.signal(signal.SIGHUP)
    run.wait_line("worker 2: tcp to", stream="err")                # its first attempt failed: it says so
    mark = len(run.err)
    second, _ = start_sink(loggend, port, "--protocol", "tcp", "--idle-exit", "3s")
    run.wait_line(f"worker 2: tcp to 127.0.0.1:{port} connected", stream="err", after=mark)   # once it can
    assert run.wait(40) == 0, run.stderr
    assert "could not start sending" not in run.stderr
    assert second.wait(20) == 0
    s = json.loads(out.read_text())
    assert len(s["workers"]) == 3 and all(w["sent"] > 0 for w in s["workers"])

def test_a_handshake_that_never_completes_does_not_make_the_worker_hung(loggend, pki, tmp_path):
    """With hung_timeout 1s, the TLS receiver is replaced by one that accepts and never answers the
    handshake: the worker's heartbeat goes on while it dials, it is not killed, and the run ends
    on time with the attempts counted."""
    port = free_port(udp=False)
    sink, _ = start_sink(loggend, port, "--protocol", "tls", "--tls-cert", str(pki.server_cert),
                      "--tls-key", str(pki.server_key))
    out = tmp_path / "summary.json"
    run = loggend(*RUN, "--target", f"127.0.0.1:{port}", "--protocol", "tls", "--tls-ca", str(pki.ca_cert),
                  "--rate", "2000", "--duration", "9s", "--summary-json", str(out),
                  env={"LOGGEN_HUNG_TIMEOUT": "1s"})
    run.wait_line("(1/1 running)")
    sink.signal(signal.SIGTERM)
    assert sink.wait(20) == 0
    mute = socket.socket()
    mute.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    mute.bind(("127.0.0.1", port))
    mute.listen(64)                                               # connects complete; nobody ever answers
    try:
        run.wait_line("no TLS handshake answer within 5 s", stream="err", timeout=30)
        assert run.wait(40) == 0, run.stderr
    finally:
        mute.close()
    s = json.loads(out.read_text())
    assert "is hung" not in run.stderr and s["restarts"] == 0
    assert s["errors"]["other"] > 0 and s["disconnected_seconds"] > 4


def test_a_receiver_gone_mid_run_is_said_counted_and_timed(loggend, tmp_path):
    """The TCP receiver is killed mid-run and never comes back: the live line says the connection is
    down, the refused connects cost refused events, and the time without a connection is reported."""
    port = free_port(udp=False)
    sink, _ = start_sink(loggend, port, "--protocol", "tcp")
    out = tmp_path / "summary.json"
    run = loggend(*RUN, "--target", f"127.0.0.1:{port}", "--protocol", "tcp", "--rate", "5000", "--duration", "6s",
                  "--summary-json", str(out))
    run.wait_line("(1/1 running)")
    t_kill = time.monotonic()
    sink.signal(signal.SIGKILL)
    run.wait_line("(1/1 running, 1 not connected)")
    assert run.wait(30) == 0, run.stderr
    without = time.monotonic() - t_kill
    s = json.loads(out.read_text())
    refused = s["errors"]["refused"]
    assert refused > 0 and s["planned"] == 30_000 and s["shortfall"] == 30_000 - s["sent"]
    # what fell due after the last refused connect is still due at the end (a loaded box: some tenths of a second)
    assert 0 <= s["shortfall"] - refused - s["forgiven"] < 5_000, s
    assert without - 2.5 < s["disconnected_seconds"] <= without
    assert f"{refused:,} refused by the kernel" in run.stdout and "worker 0 had no connection for" in run.stdout
    assert "connection down" in run.stdout and "cannot connect: Connection refused" in run.stderr


def test_what_sat_in_the_send_queue_at_the_close_is_reported(tmp_path):
    """A receiver that accepts and never reads: what the kernel still held when the worker closed its
    connection is counted, as the receiver's side of the connection shows."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    out = tmp_path / "summary.json"
    try:
        result = run_loggend(*RUN, "--target", f"127.0.0.1:{server.getsockname()[1]}", "--protocol", "tcp",
                             "--rate", "20000", "--duration", "3s", "--summary-json", str(out))
        conn, _ = server.accept()
        import fcntl
        import termios
        held = int.from_bytes(fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0"), "little")
        conn.close()
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    s = json.loads(out.read_text())
    size = s["bytes"] / s["sent"]
    not_taken = s["sent"] - held / size                 # sent by the run's count, not in the receiver's kernel
    assert s["unsent_at_close"] > 0 and s["possibly_lost"] >= s["unsent_at_close"]
    assert abs(s["unsent_at_close"] - not_taken) < 0.05 * not_taken + 10, (s["unsent_at_close"], not_taken)
    assert f"{s['unsent_at_close']:,} of them when it closed at the end" in result.stdout


def test_a_timed_run_lasts_its_duration_whatever_its_rate_does(loggend, tmp_path, receivers):
    """A profile of nothing, then unlimited and back to 1 ev/s: the run ends at its duration, with
    every figure adding up."""
    (rx,) = receivers(1)
    sock, out = str(tmp_path / "ctl.sock"), tmp_path / "summary.json"
    run = loggend(*RUN, "--target", f"127.0.0.1:{rx.port}", "--rate", "1000", "--duration", "7s",
                  "--control-socket", sock, "--summary-json", str(out))
    run.wait_line("(1/1 running)")
    t0 = time.monotonic()
    ctl(sock, "profile", "constant:0/5s,repeat")            # nothing due at all
    time.sleep(1.5)
    assert run.proc.poll() is None                           # not "all sent"
    ctl(sock, "rate", "0")
    time.sleep(0.3)
    ctl(sock, "rate", "1")
    assert run.wait(40) == 0, run.stderr
    assert time.monotonic() - t0 > 4.0                       # it ran to its end, about 6 s from the first change
    s = json.loads(out.read_text())
    assert s["sent"] == s["planned"] and "all sent" in run.stdout
    assert s["seconds"] > 6.5


class ClosingReceiver:
    """Accepts LF-framed TCP on 127.0.0.1, keeps every line, and closes the connection when told (as a
    receiver that drops idle connections does)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.data: list[bytes] = []
        self.connections = 0
        self.conn: socket.socket | None = None
        self.lock = threading.Lock()
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.server.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with self.lock:
                self.conn = conn
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while chunk := conn.recv(1 << 16):
            self.data.append(chunk)

    def close_current(self) -> None:
        with self.lock:
            assert self.conn is not None
            self.conn.shutdown(socket.SHUT_RDWR)
            self.conn.close()

    def seqs(self) -> list[int]:
        return [int(line.rsplit(b" seq=", 1)[1]) for line in b"".join(self.data).split(b"\n") if b" seq=" in line]


def test_a_connection_the_receiver_closed_while_paused_loses_nothing(tmp_path, loggend):
    """A receiver closes the connection while the run is paused (rsyslog and loggend's sink drop idle
    connections): the first write after the resume goes to a new connection, not into the closed one."""
    rx = ClosingReceiver()
    sock, out = str(tmp_path / "ctl.sock"), tmp_path / "summary.json"
    proc = loggend(*RUN, "--target", f"127.0.0.1:{rx.port}", "--protocol", "tcp", "--framing", "lf",
                   "--rate", "2000", "--duration", "8s", "--control-socket", sock, "--summary-json", str(out))
    try:
        wait_until(lambda: len(rx.seqs()) > 1000, timeout=20, what="a second of messages")
        ctl(sock, "pause")
        time.sleep(0.3)                                   # the last grant goes out
        sent = ctl(sock, "status")["sent"]
        # the receiver has read all of it before it closes (what it closes on unread is lost, as for any sender)
        wait_until(lambda: len(rx.seqs()) >= sent, timeout=20, what="the receiver reading what was sent")
        rx.close_current()
        time.sleep(1.5)                                   # idle longer than the sender's probe interval
        ctl(sock, "resume")
        assert proc.wait(30) == 0, proc.stderr
    finally:
        rx.stop.set()
    summary = json.loads(out.read_text())
    seqs = sorted(rx.seqs())
    assert rx.connections == 2, rx.connections
    assert seqs == list(range(summary["sent"])), (len(seqs), summary["sent"])
    assert summary["possibly_lost"] == 0 and summary["reconnects"] == 1, summary


@pytest.mark.parametrize("protocol", ["tcp", "tls"])
def test_a_receiver_that_closes_with_messages_unread_is_a_reset_said_as_such(tmp_path, loggend, pki, protocol):
    """A receiver stops reading and then closes with messages its kernel had acknowledged still unread:
    the kernel resets the connection and those messages are gone. No TCP sender can count them; the
    worker's lost line says a reset may have dropped them (over TLS, where Python reports a reset and a
    close alike as an EOF, that it may have been one), and the possibly-lost count is what was still
    unacknowledged in the sender's own kernel."""
    tls = protocol == "tls"
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(20)
    out = tmp_path / "summary.json"
    extra = ("--tls-ca", str(pki.ca_cert), "--tls-server-name", "localhost") if tls else ("--framing", "lf")
    try:
        run = loggend(*RUN, "--target", f"127.0.0.1:{server.getsockname()[1]}", "--protocol", protocol, *extra,
                      "--rate", "5000", "--duration", "6s", "--summary-json", str(out))
        conn, _ = server.accept()
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
            conn.settimeout(20)
            conn = context.wrap_socket(conn, server_side=True)
            conn.recv(1)                                  # the handshake is done; nothing more is read
        wait_until(lambda: unread(conn) > 32768, timeout=20, what="the receiver holding messages unread")
        held = unread(conn)
        conn.close()                                   # with data unread: the kernel sends a reset
        line = run.wait_line(" lost (", stream="err")
    finally:
        server.close()                                 # the reconnects are refused from now on
    assert run.wait(30) == 0, run.stderr
    s = json.loads(out.read_text())
    if tls:
        assert "without ending TLS, closed or reset: if reset, it may also have dropped" in line, line
    else:
        assert "Connection reset by peer" in line and "reset by the receiver: it may also have dropped" in line, line
    # what the count can hold is what the receiver never acknowledged: not the messages it held unread (over TLS
    # a write the socket could not take whole is not sent by the count either; a quick close may leave nothing)
    size = s["bytes"] / s["sent"]
    assert held > 0 and 0 <= s["possibly_lost"] <= s["sent"] - 0.9 * held / size, (held, s)


def unread(conn: socket.socket) -> int:
    """Bytes the receiver's kernel holds that the receiver has not read (FIONREAD)."""
    import fcntl
    import termios
    return int.from_bytes(fcntl.ioctl(conn.fileno(), termios.FIONREAD, b"\0\0\0\0"), "little")
