"""TCP and TLS receiving for the sink: listeners, connections, RFC 6587 framing, accounting.

Every port gets a listening socket with ``SO_REUSEPORT`` (K sink processes share them; the kernel
spreads the connections). A connection's framing is found from its first byte (a digit: octet
counting, RFC 6587 3.4.1; anything else: a line feed after each message, 3.4.2), and its bytes
are read into a buffer and cut into whole messages. Accounting is per *chunk*, not per message:
a TCP connection keeps a stream in order, so when the first and the last whole message of a
chunk are one stream ``count - 1`` numbers apart and that stream's marker is followed by those
numbers in order (``accounting.numbered_run``), the chunk is one run (``Accounting.add_run``);
anything else (a relay mixing streams, foreign messages) is parsed message by message. Messages
are found with ``bytes.count`` for LF framing (C speed) and by walking the length prefixes for
octet counting (~0.25 us each). Bytes are counted as received, framing included.

TLS (RFC 5425): the handshake runs non-blocking on the connection's readiness; a client that
fails it (not TLS, no or a wrong client certificate under ``--tls-ca``) is closed and counted.
A message cut by a connection's end (the sender sends it again whole on its next connection) is
counted as ``torn``, not received. An empty frame (``0 ``, a blank line) is no event: it is counted
apart (``Accounting.empty``).

**Bounded memory and work, whatever the clients do.** Every read goes into one buffer of the
process (``READ_BYTES``); a connection keeps only the start of a message still coming (at most
``MAX_MESSAGE_BYTES``, loggen's largest message: a longer one closes the connection as not
syslog), so an idle connection costs a socket, not a buffer. The bytes of a message still coming
are looked at once: the new bytes of a read are searched for a line feed (or counted against the
frame's length) and the message is put together only when it is whole, so a message trickled in
byte by byte costs O(its bytes). At most ``MAX_CONNECTIONS`` are open per process: past it the
oldest *silent* connection (it has sent no byte yet) makes room, else the new one is refused.
A connection that sends nothing for ``SILENT_SECONDS`` after it connected (a TLS handshake never
finished included), or for ``IDLE_SECONDS`` after its last byte, is closed. Both are counted
(``dropped_cap``, ``dropped_idle``), and repeated warnings are one line, then a count
(``journal.Throttle``).
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

from loggend.engine.journal import ERR, WARNING, Log, Throttle
from loggend.sink.accounting import Accounting, numbered_run, parse_tail
from loggend.sink.receiver import BindError
from loggend.sink.sinkspec import ServerTls

READ_BYTES = 1 << 20              # one read buffer per process, shared by its connections
READ_BUDGET = 16 << 20            # bytes read from one connection per wake-up, at most
MAX_MESSAGE_BYTES = 65536         # a longer message is not syslog: the connection is closed (loggen's <= 65,507)
MAX_CONNECTIONS = 1024            # open connections per sink process (a silent one makes room, else refused)
SILENT_SECONDS = 60.0             # no byte (nor a finished TLS handshake) this long after connecting: closed
IDLE_SECONDS = 600.0              # no byte this long after the last one: closed
SWEEP_SECONDS = 1.0               # the idle connections are looked for this often
ACCEPT_BATCH = 64                 # connections accepted per wake-up, at most
ACCEPT_BACKOFF = 0.5              # out of file descriptors: try accepting again after this (or a close)
DRAIN_POLL_SECONDS = 0.05
INT = struct.Struct("@i")
BACKLOG = 1024
RCVBUF_BYTES = 16 << 20
OCTET, LF = "octet-counting", "lf"
BLANK = b"\r\n"                   # a connection may begin with blank lines (LF framing)
LENGTH_DIGITS = len(str(MAX_MESSAGE_BYTES))     # a longer octet count is not a syslog message
PENDING_BYTES = MAX_MESSAGE_BYTES + LENGTH_DIGITS + 1   # the most a connection keeps of a message still coming


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
    stream's marker and number occur exactly ``count`` times, numbered one after the other: no other
    stream's message, no message without a number, no duplicate or reordering in between
    (``accounting.numbered_run``: one scan, not a parse per message)."""
    a, b = parse_tail(first), parse_tail(last)
    if a is None or b is None or a.name != b.name or b.number - a.number != count - 1:
        return None
    if not numbered_run(data, a.before, a.number, count, used):
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
        if not digits.isdigit() or int(digits) > MAX_MESSAGE_BYTES:
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
    """One accepted connection: its (TLS) socket, its framing and the start of a message still coming."""

    def __init__(self, sock: socket.socket, handshaking: bool, now: float = 0.0) -> None:
        self.sock = sock
        self.handshaking = handshaking
        self.pending = bytearray()        # the start of a message still coming (at most PENDING_BYTES)
        self.need = 0                     # octet counting: the pending frame's whole length, once known
        self.framing = ""
        self.rejected = ""                # why it was closed for what it sent ("": it was not)
        self.since = now                  # when it connected, then when its last bytes came
        self.silent = True                # no byte received yet

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

    def read(self, acc: Accounting, scratch: bytearray) -> tuple[bool, int]:
        """Read what is there (up to READ_BUDGET, through the process's ``scratch`` buffer) and
        account whole messages. Returns (still open, torn messages at its end)."""
        budget = READ_BUDGET
        view = memoryview(scratch)
        while budget > 0:
            try:
                got = self.sock.recv_into(view)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError):
                return True, 0
            except (ssl.SSLError, OSError):
                got = 0
            if not got:
                return False, 1 if self.pending else 0
            budget -= got
            self.silent = False
            if not self.framing:
                first = scratch[0]
                if not 0x20 <= first < 0x7f and first not in BLANK:     # a TLS ClientHello (0x16), binary
                    self.rejected = "a TLS handshake to a TCP port" if first == 0x16 else \
                        "something that is not syslog framing"
                    return False, 0
                self.framing = OCTET if 0x30 <= first <= 0x39 else LF
            if not self.take(acc, scratch, got):
                return False, 0
        return True, 0

    def take(self, acc: Accounting, scratch: bytearray, got: int) -> bool:
        """The ``got`` new bytes at the start of ``scratch``: whole messages accounted, the start of the
        next one kept. Until a message can be whole the new bytes are only appended (O(bytes));
        False when the connection is to be closed for what it sent."""
        pending = self.pending
        if pending:
            if self.framing == LF:
                whole = scratch.find(b"\n", 0, got) >= 0
            else:
                whole = not self.need or len(pending) + got >= self.need
            if not whole:
                if len(pending) + got > PENDING_BYTES:
                    self.rejected = f"a message longer than {MAX_MESSAGE_BYTES:,} bytes"
                    return False
                pending += memoryview(scratch)[:got]
                return True
            data = b"".join((pending, memoryview(scratch)[:got]))
        else:
            data = bytes(memoryview(scratch)[:got])
        used = account_octets(acc, data) if self.framing == OCTET else account_lines(acc, data)
        if used < 0 or len(data) - used > PENDING_BYTES:
            self.rejected = "something that is not syslog framing" if used < 0 else \
                f"a message longer than {MAX_MESSAGE_BYTES:,} bytes"
            return False
        self.pending = bytearray(memoryview(data)[used:])
        self.need = frame_length(self.pending) if self.framing == OCTET else 0
        return True

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def frame_length(pending: bytearray) -> int:
    """The whole length of the octet-counted frame ``pending`` begins (0: its prefix is not all there)."""
    space = pending.find(b" ", 0, LENGTH_DIGITS + 1)
    return space + 1 + int(pending[:space]) if space > 0 else 0


class StreamServer:
    """Listening sockets and accepted connections of one sink process, on one epoll.

    ``handle(fd, acc)`` does what an event asks (accept, handshake, read), ``expire()`` closes idle
    connections; the counters are ``accepted``, ``open``, ``torn`` (messages cut by a connection's
    end), ``tls_failures``, ``rejected`` (connections closed for sending something that is not
    syslog framing), ``dropped_cap`` (refused, or silent ones closed, at ``max_connections``) and
    ``dropped_idle`` (closed after ``silent_seconds`` / ``idle_seconds`` without a byte)."""

    def __init__(self, host: str, ports: tuple[int, ...], tls: ServerTls | None, log: Log,
                 max_connections: int = MAX_CONNECTIONS, silent_seconds: float = SILENT_SECONDS,
                 idle_seconds: float = IDLE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.context = server_context(tls) if tls is not None else None
        self.listeners = {s.fileno(): s for s in listen(host, ports)}
        self.connections: dict[int, Connection] = {}
        self.silent: dict[int, Connection] = {}     # connections that sent no byte yet, oldest first
        self.log = log
        self.warn = Throttle(log, clock=clock)
        self.max_connections, self.silent_seconds, self.idle_seconds = max_connections, silent_seconds, idle_seconds
        self.clock = clock
        self.scratch = bytearray(READ_BYTES)
        self.accepted = self.torn = self.tls_failures = self.rejected = 0
        self.dropped_cap = self.dropped_idle = 0
        self.poller: select.epoll | None = None
        self.accept_paused_until = 0.0          # out of file descriptors: not accepting until then
        self.accept_failures = 0
        self.accept_failing = False             # said once per spell of failures
        self.next_sweep = 0.0

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
                self.warn("accepting", f"sink: accepting connections again ({self.accept_failures:,} refused by the "
                          "system so far)", WARNING)
            if len(self.connections) >= self.max_connections and not self._make_room():
                self.dropped_cap += 1
                self.warn("cap", f"sink: {len(self.connections):,} connections open, the most a sink process keeps, "
                          "and none of them silent: a new one was refused", WARNING)
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            conn = Connection(sock, handshaking=self.context is not None, now=self.clock())
            self.connections[conn.fileno()] = self.silent[conn.fileno()] = conn
            self.poller.register(conn.fileno(), select.EPOLLIN)
            self.accepted += 1
            self._serve(conn, acc)

    def _make_room(self) -> bool:
        """At the cap: close the oldest connection that has sent nothing yet (it loses nothing); False
        when every open connection has sent something."""
        if not self.silent:
            return False
        conn = next(iter(self.silent.values()))
        self.dropped_cap += 1
        self.warn("evicted", f"sink: {len(self.connections):,} connections open, the most a sink process keeps: "
                  f"closed {conn.peer()}, silent since it connected, to make room", WARNING)
        self._close(conn)
        return True

    def expire(self, now: float) -> None:
        """Close connections silent for ``silent_seconds`` since they connected, or idle for
        ``idle_seconds`` since their last bytes (looked for every ``SWEEP_SECONDS``)."""
        self.warn.tick()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_SECONDS
        for conn in list(self.connections.values()):
            limit = self.silent_seconds if conn.silent else self.idle_seconds
            if now - conn.since < limit:
                continue
            self.dropped_idle += 1
            self.torn += 1 if conn.pending else 0
            what = "connected and sent nothing" if conn.silent else "sent nothing more"
            self.warn("idle", f"sink: closed {conn.peer()}: it {what} for {limit:g} s", WARNING)
            self._close(conn)

    def _pause_accepting(self, err: OSError) -> None:
        """The listeners leave the poller for ``ACCEPT_BACKOFF`` s (or until a connection closes): a
        listener that stays ready while accept fails would spin the loop and flood the log."""
        assert self.poller is not None
        self.accept_failures += 1
        if not self.accept_failing:
            self.accept_failing = True
            self.warn("cannot accept", f"sink: cannot accept connections: {err.strerror}; {len(self.connections):,} "
                      f"open, waiting ones stay queued in the kernel; trying again every {ACCEPT_BACKOFF:g} s", ERR)
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
                self.warn("tls", f"sink: TLS handshake with {conn.peer()} failed: {why}", WARNING)
                self._close(conn)
                return
            if wait:
                self.poller.modify(conn.fileno(), wait)
                return
            self.poller.modify(conn.fileno(), select.EPOLLIN)
        still_open, torn = conn.read(acc, self.scratch)
        self.torn += torn
        if not conn.silent:
            self.silent.pop(conn.fileno(), None)
            conn.since = self.clock()
        if conn.rejected:
            self.rejected += 1
            self.warn("rejected", f"sink: {conn.peer()} sent {conn.rejected}; closed", WARNING)
        if not still_open:
            self._close(conn)

    def _close(self, conn: Connection) -> None:
        assert self.poller is not None
        fd = conn.fileno()
        self.connections.pop(fd, None)
        self.silent.pop(fd, None)
        try:
            self.poller.unregister(fd)
        except (OSError, ValueError):
            pass
        conn.close()
        self.resume_accepting(time.monotonic(), closed=True)

    def backlog(self) -> int:
        """Bytes received by the kernel or buffered here and not yet accounted, over every connection."""
        return sum(unread_bytes(conn.sock) + len(conn.pending) for conn in self.connections.values())

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
        self.warn.tick(final=True)
        for conn in list(self.connections.values()):
            conn.close()
        self.connections.clear()
        for sock in self.listeners.values():
            sock.close()
