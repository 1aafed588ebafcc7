"""TCP and TLS receiving for the sink: listeners, connections, RFC 6587 framing, accounting.

Every port gets a listening socket with ``SO_REUSEPORT`` (K sink processes share them; the kernel
spreads the connections). A connection's framing is found from its first byte (a digit: octet
counting, RFC 6587 3.4.1; anything else: a line feed after each message, 3.4.2), and its bytes
are read into a buffer and cut into whole messages. Accounting is per *chunk*, not per message:
a TCP connection keeps a stream in order, so when the first and the last whole message of a
chunk are one stream ``count - 1`` numbers apart and that stream's marker occurs ``count``
times, the chunk is one run (``Accounting.add_run``); anything else (a relay mixing streams,
foreign messages) is parsed message by message. Messages are found with ``bytes.count`` for LF
framing (C speed) and by walking the length prefixes for octet counting (~0.25 us each). Bytes
are counted as received, framing included.

TLS (RFC 5425): the handshake runs non-blocking on the connection's readiness; a client that
fails it (not TLS, no or a wrong client certificate under ``--tls-ca``) is closed and counted.
A message cut by a connection's end (the sender sends it again whole on its next connection) is
counted as ``torn``, not received.
"""

from __future__ import annotations

import errno
import fcntl
import math
import select
import socket
import ssl
import struct
import termios
import time
from collections.abc import Callable

from loggend.engine.journal import ERR, WARNING, Log
from loggend.sink.accounting import Accounting, parse_tail
from loggend.sink.receiver import BindError
from loggend.sink.spec import ServerTls

BUFFER_BYTES = 1 << 20            # per connection: room for many messages (each at most 64 KiB)
READ_BUDGET = 16 << 20            # bytes read from one connection per wake-up, at most
ACCEPT_BATCH = 64                 # connections accepted per wake-up, at most
ACCEPT_BACKOFF = 0.5              # out of file descriptors: try accepting again after this (or a close)
DRAIN_POLL_SECONDS = 0.05
INT = struct.Struct("@i")
BACKLOG = 1024
RCVBUF_BYTES = 16 << 20
OCTET, LF = "octet-counting", "lf"
LENGTH_DIGITS = 6                 # an octet count of more than 6 digits is not a syslog message


def server_context(tls: ServerTls) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls.cert, tls.key)
    if tls.ca:
        ctx.load_verify_locations(cafile=tls.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def listen(host: str, ports: tuple[int, ...], reuseport: bool = True) -> list[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    for port in ports:
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as err:               # EMFILE: more ports than file descriptors
            for s in socks:
                s.close()
            raise BindError(f"cannot open a socket for {host}:{port} (tcp): {err.strerror} "
                            f"({len(ports):,} ports need {len(ports):,} file descriptors)") from None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
            sock.listen(BACKLOG)
        except OSError as err:
            sock.close()
            for s in socks:
                s.close()
            hint = "; ports below 1024 need root or CAP_NET_BIND_SERVICE" if err.errno == errno.EACCES else ""
            raise BindError(f"cannot listen on {host}:{port} (tcp): {err.strerror}{hint}") from None
        sock.setblocking(False)
        socks.append(sock)
    return socks


def unread_bytes(sock: socket.socket) -> int:
    """Bytes waiting in a connection's receive queue (SIOCINQ); 0 when it cannot be asked."""
    try:
        return int(INT.unpack(fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * INT.size))[0])
    except OSError:
        return 0


def _one_run(data: bytes, used: int, count: int, first: bytes, last: bytes) -> tuple[bytes, int] | None:
    """(stream, first number) when the ``count`` whole messages in ``data[:used]`` are one run.

    They are when the first and the last are the same stream ``count - 1`` numbers apart and the
    stream's marker occurs exactly ``count`` times: no other stream's message and no message
    without a number in between (one ``bytes.count``, not a parse per message)."""
    a, b = parse_tail(first), parse_tail(last)
    if a is None or b is None or a.name != b.name or b.number - a.number != count - 1:
        return None
    if data.count(a.before, 0, used) != count:
        return None
    return a.name, a.number


def account_lines(acc: Accounting, data: bytes) -> int:
    """Whole LF-framed messages of ``data`` into ``acc``; the bytes used."""
    last = data.rfind(b"\n")
    if last < 0:
        return 0
    count = data.count(b"\n", 0, last + 1)
    run = None
    if count > 1:
        run = _one_run(data, last + 1, count, data[:data.find(b"\n")], data[data.rfind(b"\n", 0, last) + 1:last])
    if run is not None:
        acc.received += count
        acc.octets += last + 1
        acc.add_run(run[0], run[1], count)
        return last + 1
    lines = data[:last].split(b"\n")
    for line in lines:
        acc.add(line)
    acc.octets += len(lines)                         # the line feeds: bytes as received
    return last + 1


def account_octets(acc: Accounting, data: bytes) -> int:
    """Whole octet-counted messages of ``data`` into ``acc``; the bytes used (-1: not a frame).

    The length prefixes are walked to find the messages (about 0.25 us each); the messages
    themselves are parsed only when the chunk is not one run of one stream."""
    at = count = 0
    n = len(data)
    find = data.find
    first = final = (0, 0)                           # where the first and the last message's body lie
    while at < n:
        space = find(b" ", at, at + LENGTH_DIGITS + 1)
        if space <= at:
            if space < 0 and n - at <= LENGTH_DIGITS and data[at:].isdigit():
                break                                # the length prefix is still coming
            return -1
        digits = data[at:space]
        if not digits.isdigit():
            return -1
        end = space + 1 + int(digits)
        if end > n:
            break
        final = (space + 1, end)
        if not count:
            first = final
        count += 1
        at = end
    if not count:
        return 0
    run = _one_run(data, at, count, data[first[0]:first[1]], data[final[0]:final[1]]) if count > 1 else None
    if run is not None:
        acc.received += count
        acc.octets += at
        acc.add_run(run[0], run[1], count)
        return at
    pos = 0
    while pos < at:                                  # message by message
        space = find(b" ", pos)
        end = space + 1 + int(data[pos:space])
        acc.add(data[space + 1:end])
        acc.octets += space + 1 - pos                # the prefix too: bytes as received
        pos = end
    return at


class Connection:
    """One accepted connection: its (TLS) socket, its buffer and framing."""

    def __init__(self, sock: socket.socket, handshaking: bool) -> None:
        self.sock = sock
        self.handshaking = handshaking
        self.buf = bytearray(BUFFER_BYTES)
        self.view = memoryview(self.buf)
        self.fill = 0
        self.framing = ""
        self.rejected = False             # it sent something that is not syslog framing (and was closed)

    def fileno(self) -> int:
        return self.sock.fileno()

    def peer(self) -> str:
        try:
            host, port = self.sock.getpeername()[:2]
        except OSError:
            return "a client"
        return f"{host}:{port}"

    def handshake(self) -> int:
        """TLS: the epoll events to wait for next (0: done); raises ssl.SSLError/OSError when it failed."""
        assert isinstance(self.sock, ssl.SSLSocket)
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            return select.EPOLLIN
        except ssl.SSLWantWriteError:
            return select.EPOLLOUT
        self.handshaking = False
        return 0

    def read(self, acc: Accounting) -> tuple[bool, int]:
        """Read what is there (up to READ_BUDGET) and account whole messages.

        Returns (still open, torn messages at its end)."""
        budget = READ_BUDGET
        while budget > 0:
            try:
                got = self.sock.recv_into(self.view[self.fill:])
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError):
                return True, 0
            except (ssl.SSLError, OSError):
                got = 0
            if not got:
                return False, 1 if self.fill else 0
            self.fill += got
            budget -= got
            if not self.framing:
                first = self.buf[0]
                if not 0x20 <= first < 0x7f:           # a TLS ClientHello (0x16) or binary: not syslog
                    self.rejected = True
                    return False, 0
                self.framing = OCTET if 0x30 <= first <= 0x39 else LF
            data = bytes(self.view[:self.fill])
            used = account_octets(acc, data) if self.framing == OCTET else account_lines(acc, data)
            if used < 0 or (used == 0 and self.fill == len(self.buf)):
                self.rejected = True                          # not syslog framing: drop the connection
                return False, 0
            if used:
                self.buf[:self.fill - used] = self.buf[used:self.fill]
                self.fill -= used
        return True, 0

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class StreamServer:
    """Listening sockets and accepted connections of one sink process, on one epoll.

    ``handle(fd, acc)`` does what an event asks (accept, handshake, read); the counters are
    ``accepted``, ``open``, ``torn`` (messages cut by a connection's end), ``tls_failures`` and
    ``rejected`` (connections closed for sending something that is not syslog framing)."""

    def __init__(self, host: str, ports: tuple[int, ...], tls: ServerTls | None, log: Log) -> None:
        self.context = server_context(tls) if tls is not None else None
        self.listeners = {s.fileno(): s for s in listen(host, ports)}
        self.connections: dict[int, Connection] = {}
        self.log = log
        self.accepted = self.torn = self.tls_failures = self.rejected = 0
        self.poller: select.epoll | None = None
        self.accept_paused_until = 0.0          # out of file descriptors: not accepting until then
        self.accept_failures = 0
        self.accept_failing = False             # said once per spell of failures

    @property
    def open(self) -> int:
        return len(self.connections)

    def register(self, poller: select.epoll) -> None:
        self.poller = poller
        for fd in self.listeners:
            poller.register(fd, select.EPOLLIN)

    def handle(self, fd: int, acc: Accounting) -> None:
        listener = self.listeners.get(fd)
        if listener is not None:
            self._accept(listener, acc)
            return
        conn = self.connections.get(fd)
        if conn is not None:
            self._serve(conn, acc)

    def _accept(self, listener: socket.socket, acc: Accounting) -> None:
        assert self.poller is not None
        for _ in range(ACCEPT_BATCH):           # bounded: a flood of connections cannot hold the loop
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:                       # EMFILE and the like: say so once, back off, keep serving
                self._pause_accepting(err)
                return
            if self.accept_failing:
                self.accept_failing = False
                self.log(f"sink: accepting connections again ({self.accept_failures:,} refused by the system so far)",
                         WARNING)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            conn = Connection(sock, handshaking=self.context is not None)
            self.connections[conn.fileno()] = conn
            self.poller.register(conn.fileno(), select.EPOLLIN)
            self.accepted += 1
            self._serve(conn, acc)

    def _pause_accepting(self, err: OSError) -> None:
        """The listeners leave the poller for ``ACCEPT_BACKOFF`` s (or until a connection closes): a
        listener that stays ready while accept fails would spin the loop and flood the log."""
        assert self.poller is not None
        self.accept_failures += 1
        if not self.accept_failing:
            self.accept_failing = True
            self.log(f"sink: cannot accept connections: {err.strerror}; {len(self.connections):,} open, waiting "
                     f"ones stay queued in the kernel; trying again every {ACCEPT_BACKOFF:g} s", ERR)
        for fd in self.listeners:
            try:
                self.poller.unregister(fd)
            except (OSError, ValueError):
                pass
        self.accept_paused_until = time.monotonic() + ACCEPT_BACKOFF

    def resume_accepting(self, now: float, closed: bool = False) -> None:
        """Listen again once the back-off has passed or a connection has closed (a descriptor is free)."""
        if not self.accept_paused_until or math.isinf(self.accept_paused_until) or \
                (now < self.accept_paused_until and not closed):
            return
        assert self.poller is not None
        self.accept_paused_until = 0.0
        for fd in self.listeners:
            try:
                self.poller.register(fd, select.EPOLLIN)
            except (OSError, ValueError):
                pass

    def _serve(self, conn: Connection, acc: Accounting) -> None:
        assert self.poller is not None
        if conn.handshaking:
            try:
                wait = conn.handshake()
            except (ssl.SSLError, OSError) as err:
                self.tls_failures += 1
                why = getattr(err, "reason", None) or err
                self.log(f"sink: TLS handshake with {conn.peer()} failed: {why}", WARNING)
                self._close(conn)
                return
            if wait:
                self.poller.modify(conn.fileno(), wait)
                return
            self.poller.modify(conn.fileno(), select.EPOLLIN)
        still_open, torn = conn.read(acc)
        self.torn += torn
        if conn.rejected:
            self.rejected += 1
            peer = conn.peer()
            what = "a TLS handshake to a TCP port" if conn.buf[0] == 0x16 else "something that is not syslog framing"
            self.log(f"sink: {peer} sent {what}; closed", WARNING)
        if not still_open:
            self._close(conn)

    def _close(self, conn: Connection) -> None:
        assert self.poller is not None
        fd = conn.fileno()
        self.connections.pop(fd, None)
        try:
            self.poller.unregister(fd)
        except (OSError, ValueError):
            pass
        conn.close()
        self.resume_accepting(time.monotonic(), closed=True)

    def backlog(self) -> int:
        """Bytes received by the kernel or buffered here and not yet accounted, over every connection."""
        return sum(unread_bytes(conn.sock) + conn.fill for conn in self.connections.values())

    def drain(self, acc: Accounting, deadline: float, clock: Callable[[], float] = time.monotonic) -> int:
        """At the end: read every connection until its sender closes it, or until ``deadline`` (no
        more accepting); the bytes left unread then."""
        assert self.poller is not None
        self.accept_paused_until = math.inf            # no more accepting, whatever closes
        for fd in self.listeners:
            try:
                self.poller.unregister(fd)
            except (OSError, ValueError):
                pass
        for conn in list(self.connections.values()):
            if not conn.handshaking:
                self._serve(conn, acc)
        while self.connections and clock() < deadline:
            for fd, _ in self.poller.poll(max(0.0, min(DRAIN_POLL_SECONDS, deadline - clock()))):
                ready = self.connections.get(fd)
                if ready is not None:
                    self._serve(ready, acc)
        return self.backlog()

    def close(self) -> None:
        for conn in list(self.connections.values()):
            conn.close()
        self.connections.clear()
        for sock in self.listeners.values():
            sock.close()
