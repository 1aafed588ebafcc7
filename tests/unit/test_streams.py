"""The stream receiver's accounting: every format and framing, cut anywhere, fast path or walked."""

import random
import select
import socket

import pytest

from loggend.engine.formats import FORMATS
from loggend.engine.render import build_pool
from loggend.engine.spec import MessageSpec
from loggend.sink import streams
from loggend.sink.accounting import Accounting
from loggend.sink.streams import MAX_MESSAGE_BYTES, READ_BYTES, Connection, StreamServer, account_lines, account_octets
from tests.support.processes import msg

FRAMINGS = ("octet-counting", "lf")


def wire(fmt: str, framing: str, stream: str = "w3", passes: int = 2) -> bytes:
    """What a worker sends for ``passes`` passes over a 1000-message pool."""
    p = build_pool(MessageSpec(pool_size=1000, format=fmt, framing=framing, timezone="utc"), 3, stream, 1.8e9)
    out = []
    for k in range(passes):
        p.set_cycle(k)
        out.append(bytes(p.buf))
    return b"".join(out)


def feed(data: bytes, framing: str, cuts: list[int], acc: Accounting) -> int:
    """Deliver ``data`` in pieces ending at ``cuts`` the way a connection buffers them; bytes left over."""
    account = account_octets if framing == "octet-counting" else account_lines
    buf = b""
    last = 0
    for cut in [*cuts, len(data)]:
        buf += data[last:cut]
        last = cut
        used = account(acc, buf)
        assert used >= 0
        buf = buf[used:]
    return len(buf)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_and_framing_is_counted_exactly_wherever_the_reads_cut(fmt, framing):
    data = wire(fmt, framing)
    rng = random.Random(7)
    cuts = sorted(rng.sample(range(1, len(data)), 60))
    acc = Accounting()
    assert feed(data, framing, cuts, acc) == 0
    st = acc.streams[b"w3"]
    assert (acc.received, st.received, acc.lost, acc.duplicates, acc.unsequenced) == (2000, 2000, 0, 0, 0)
    assert st.expected == 2000
    assert acc.octets == len(data)                                   # bytes as received, framing included


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_whole_chunk_of_one_stream_is_one_run_not_a_parse_per_message(fmt, framing, monkeypatch):
    data = wire(fmt, framing, passes=1)
    account = account_octets if framing == "octet-counting" else account_lines
    acc = Accounting()
    monkeypatch.setattr(Accounting, "add", lambda self, m: pytest.fail("parsed one by one"))
    assert account(acc, data + data[:50]) == len(data)            # a partial message after: left for later
    assert acc.received == 1000 and acc.streams[b"w3"].expected == 1000


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_relay_mixing_streams_and_foreign_lines_is_walked_message_by_message(framing):
    a = wire("rfc3164", framing, "w0", passes=1)
    b = wire("cef", framing, "w1", passes=1)
    frame = (lambda m: b"%d %s" % (len(m), m)) if framing == "octet-counting" else (lambda m: m + b"\n")
    foreign = frame(b"<13>Nov 29 08:49:12 host app: a line from someone else")
    pieces = split(a, framing)
    other = split(b, framing)
    mixed = b"".join(x + y + (foreign if i % 100 == 0 else b"") for i, (x, y) in enumerate(zip(pieces, other)))
    acc = Accounting()
    assert feed(mixed, framing, [len(mixed) // 3], acc) == 0
    assert acc.streams[b"w0"].received == 1000 and acc.streams[b"w1"].received == 1000
    assert acc.unsequenced == 10 and acc.received == 2010 and acc.lost == 0


def test_a_gap_inside_a_connection_is_seen_even_when_first_and_last_would_match():
    data = split(wire("rfc3164", "lf", passes=1), "lf")
    kept = data[:10] + data[11:]                      # number 10 never sent
    acc = Accounting()
    feed(b"".join(kept), "lf", [], acc)
    assert acc.received == 999 and acc.lost == 1


def test_not_syslog_framing_is_refused():
    acc = Accounting()
    assert account_octets(acc, b"12x <13>hello") == -1
    assert account_octets(acc, b"123") == 0                          # a length still coming
    assert account_octets(acc, b"%d <13>" % (MAX_MESSAGE_BYTES + 1)) == -1     # longer than any syslog message
    assert account_octets(acc, b"999999 <13>") == -1


def connection() -> tuple[Connection, socket.socket]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    return Connection(ours, handshaking=False), theirs


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_message_trickled_byte_by_byte_is_scanned_once(framing, monkeypatch):
    """A frame sent one byte per read was copied and scanned whole on every read (O(n^2): 20 such
    connections took a core); the new bytes are now looked at once, and the frame put together when whole."""
    body = msg("w0", 0, "x" * 20_000)
    frame = b"%d %s" % (len(body), body) if framing == "octet-counting" else body + b"\n"
    scanned = []
    for name in ("account_octets", "account_lines"):
        real = getattr(streams, name)
        monkeypatch.setattr(streams, name, lambda acc, data, real=real: scanned.append(len(data)) or real(acc, data))
    conn, peer = connection()
    acc, scratch = Accounting(), bytearray(READ_BYTES)
    for i in range(len(frame)):
        peer.send(frame[i:i + 1])
        assert conn.read(acc, scratch) == (True, 0)
    assert acc.received == 1 and acc.streams[b"w0"].expected == 1
    assert sum(scanned) <= 2 * len(frame) + 16, sum(scanned)        # not len(frame) ** 2 / 2
    assert not conn.pending


@pytest.mark.parametrize("framing", FRAMINGS)
def test_a_message_longer_than_any_syslog_message_closes_the_connection(framing):
    conn, peer = connection()
    start = b"%d " % (MAX_MESSAGE_BYTES + 1) if framing == "octet-counting" else b"<13>"
    peer.sendall(start + b"x" * (MAX_MESSAGE_BYTES + 64))
    acc, scratch = Accounting(), bytearray(READ_BYTES)
    assert conn.read(acc, scratch) == (False, 0)
    why = "not syslog framing" if framing == "octet-counting" else f"longer than {MAX_MESSAGE_BYTES:,} bytes"
    assert why in conn.rejected
    assert len(conn.pending) <= MAX_MESSAGE_BYTES + 8


@pytest.mark.parametrize("framing", FRAMINGS)
def test_empty_frames_and_blank_lines_are_no_events(framing):
    """100,000 `0 ` frames and blank lines were counted as 200,001 events received."""
    real = msg("w0", 0)
    if framing == "octet-counting":
        data = b"0 " * 1000 + b"%d %s" % (len(real), real) + b"1  2 \r\n"
    else:
        data = b"\n" * 1000 + real + b"\n" + b" \n\r\n"
    acc = Accounting()
    assert feed(data, framing, [7, 500], acc) == 0
    assert (acc.received, acc.empty, acc.unsequenced) == (1, 1002, 0)
    assert acc.octets == len(data)


def split(data: bytes, framing: str) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        if framing == "lf":
            end = data.index(b"\n", at) + 1
        else:
            space = data.index(b" ", at)
            end = space + 1 + int(data[at:space])
        out.append(data[at:end])
        at = end
    return out


class Served:
    """A StreamServer on a free loopback port with a clock the test moves; ``pump`` handles what is ready."""

    def __init__(self, **kw) -> None:
        self.now = 0.0
        self.lines: list[str] = []
        self.server = StreamServer("127.0.0.1", (0,), None, lambda line, level=0: self.lines.append(line),
                                   clock=lambda: self.now, **kw)
        self.poller = select.epoll()
        self.server.register(self.poller)
        self.port = next(iter(self.server.listeners.values())).getsockname()[1]
        self.acc = Accounting()

    def pump(self) -> None:
        for _ in range(5):
            for fd, _ in self.poller.poll(0.05):
                self.server.handle(fd, self.acc)

    def connect(self) -> socket.socket:
        client = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.pump()
        return client

    def close(self) -> None:
        self.server.close()
        self.poller.close()


def closed(sock: socket.socket) -> bool:
    sock.settimeout(1)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_at_the_cap_a_silent_connection_makes_room_else_the_new_one_is_refused():
    s = Served(max_connections=3, silent_seconds=60, idle_seconds=600)
    try:
        sender = s.connect()
        sender.sendall(b"%s\n" % msg("w0", 0))
        silent = [s.connect(), s.connect()]
        newer = s.connect()                                   # at the cap: the oldest silent one goes
        assert closed(silent[0]) and s.server.open == 3 and s.server.dropped_cap == 1
        for c in (silent[1], newer):
            c.sendall(b"%s\n" % msg("w1", 0))
        s.pump()
        refused = s.connect()                                 # nobody silent: the new one is refused
        assert closed(refused) and s.server.dropped_cap == 2 and s.server.open == 3
        assert not closed(sender) and s.acc.received == 3
    finally:
        s.close()


def test_silent_and_idle_connections_are_closed_after_their_timeouts():
    s = Served(max_connections=8, silent_seconds=60, idle_seconds=600)
    try:
        sender, silent = s.connect(), s.connect()
        sender.sendall(b"%s\n" % msg("w0", 0))
        s.pump()
        s.now = 59.0
        s.server.expire(s.now)
        assert s.server.open == 2
        s.now = 61.0
        s.server.expire(s.now)
        assert closed(silent) and s.server.dropped_idle == 1 and s.server.open == 1
        s.now = 100.0
        sender.sendall(b"%s\n" % msg("w0", 1))
        s.pump()
        s.now = 699.0                                         # 599 s after its last bytes
        s.server.expire(s.now)
        assert s.server.open == 1
        s.now = 701.0
        s.server.expire(s.now)
        assert closed(sender) and s.server.dropped_idle == 2 and s.server.open == 0
        assert s.acc.received == 2 and s.server.torn == 0
    finally:
        s.close()
