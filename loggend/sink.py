"""The dummy SIEM's receiving side: batched UDP receive, per-stream accounting, shared counters.

A ``SinkWorker`` binds every port of the range with ``SO_REUSEPORT`` (so K processes share
them, the kernel keeping each flow, hence each stream, on one of them), turns on ``UDP_GRO``
(a train of same-size datagrams of one flow arrives as one buffer with its segment size) and
reads with ``recvmmsg`` through ctypes. A GRO train whose first and last messages are the same
stream with consecutive numbers is accounted as one run; anything else message by message.

Counters go to one slot of a shared ``CounterBlock`` per sink process (layout below); the
kernel's own drop counters for our sockets (``/proc/net/udp``) are published beside them, so a
report tells loss in our receive queues from loss before them.

Imports: the standard library and ``loggend`` modules that use nothing else.
"""

from __future__ import annotations

import ctypes
import errno
import gc
import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from loggend.accounting import Accounting, parse
from loggend.engine.counters import CounterBlock
from loggend.engine.render import SEQ_DIGITS
from loggend.engine.syscalls import Iovec, Mmsghdr, Msghdr, libc_function
from loggend.engine.worker import set_parent_death_signal

BATCH = 64                    # buffers per recvmmsg call
SLOT = 65536                  # bytes per buffer: a whole GRO train (<= 64 KiB)
CONTROL = 64                  # control bytes per buffer: room for the UDP_GRO cmsg
RCVBUF_BYTES = 256 << 20      # asked for with SO_RCVBUFFORCE as root, else capped at rmem_max
POLL_SECONDS = 0.05           # epoll timeout: how often stop flags, heartbeat and drops are looked at
PUBLISH_SECONDS = 0.05        # counters and heartbeat are published this often (like a worker's tick)
DROPS_SECONDS = 1.0           # /proc/net/udp is read this often
MSG_DONTWAIT = 0x40
SO_RCVBUFFORCE = 33           # asm-generic/socket.h; not exported by Python 3.11
SOL_UDP = 17
UDP_GRO = 104                 # linux/udp.h
CMSG_HEADER = struct.Struct("@QiI")     # cmsg_len (size_t), cmsg_level, cmsg_type; data follows
GRO_SIZE = struct.Struct("@i")          # udp_cmsg_recv() puts gso_size as an int
PROC_NET_UDP = ("/proc/net/udp", "/proc/net/udp6")
MSG_LEN_OFFSET = Mmsghdr.msg_len.offset
CONTROLLEN_OFFSET = Msghdr.msg_controllen.offset
EXIT_BIND_FAILED = 3

# Fields of a per-stream slot (stream "<prefix><i>" -> slot i; one writer: the sink process
# that receives the stream, which SO_REUSEPORT keeps on one process).
S_RECEIVED, S_LOST, S_DUPLICATES, S_LATE = range(4)

# Fields of a sink slot (one writer: the sink process).
RECEIVED, BYTES, LOST, LATE, DUPLICATES, UNSEQUENCED, KERNEL_DROPS, STREAMS, HEARTBEAT_NS, PID, STATE, \
    CALLS = range(12)
STATE_STARTING, STATE_RUNNING, STATE_STOPPED, STATE_FAILED = 1, 2, 3, 4


@dataclass(frozen=True)
class SinkTotals:
    received: int = 0
    bytes: int = 0
    lost: int = 0            # sequence numbers never seen (gaps minus late fills)
    gaps: int = 0            # numbers that were missing when a later one arrived
    late: int = 0            # of those, arrived after all (reordered)
    duplicates: int = 0
    unsequenced: int = 0
    kernel_drops: int = 0
    streams: int = 0
    processes: int = 0
    running: int = 0

    @classmethod
    def of(cls, block: CounterBlock, count: int) -> SinkTotals:
        rows = [block.values(i) for i in range(count)]
        s = [sum(r[f] for r in rows) for f in range(CALLS + 1)]
        return cls(received=s[RECEIVED], bytes=s[BYTES], lost=s[LOST] - s[LATE], gaps=s[LOST], late=s[LATE],
                   duplicates=s[DUPLICATES], unsequenced=s[UNSEQUENCED], kernel_drops=s[KERNEL_DROPS],
                   streams=s[STREAMS], processes=count, running=sum(1 for r in rows if r[STATE] == STATE_RUNNING))

    def document(self) -> dict[str, float | int]:
        sequenced = self.received - self.unsequenced - self.duplicates
        expected = sequenced + self.lost
        return {"received": self.received, "bytes": self.bytes, "lost": self.lost, "late": self.late,
                "reordered": self.late, "duplicates": self.duplicates, "unsequenced": self.unsequenced,
                "kernel_drops": self.kernel_drops, "streams": self.streams, "processes": self.processes,
                "running": self.running, "loss_percent": 100.0 * self.lost / expected if expected else 0.0}


class BindError(Exception):
    pass


def open_sockets(host: str, ports: tuple[int, ...], reuseport: bool = True, gro: bool = True) -> list[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    for port in ports:
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        if gro:
            try:
                sock.setsockopt(SOL_UDP, UDP_GRO, 1)
            except OSError:
                pass                               # an old kernel: datagrams arrive one by one
        try:
            sock.bind((host, port))
        except OSError as err:
            sock.close()
            for s in socks:
                s.close()
            hint = "; ports below 1024 need root or CAP_NET_BIND_SERVICE" if err.errno == errno.EACCES else ""
            raise BindError(f"cannot listen on {host}:{port}: {err.strerror}{hint}") from None
        sock.setblocking(False)
        socks.append(sock)
    return socks


def kernel_drops(inodes: set[int], files: tuple[str, ...] = PROC_NET_UDP) -> int:
    """Datagrams the kernel dropped for these sockets (full receive queue and the like)."""
    total = 0
    for path in files:
        try:
            with open(path, encoding="ascii") as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if len(cols) >= 13 and int(cols[9]) in inodes:
                        total += int(cols[12])
        except (OSError, ValueError, StopIteration):
            continue
    return total


class Receiver:
    """recvmmsg over a set of non-blocking sockets; each buffer may hold a GRO train."""

    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(BATCH * SLOT)
        self.view = memoryview(self.buf).cast("B")
        self.control = ctypes.create_string_buffer(BATCH * CONTROL)
        self.control_view = memoryview(self.control).cast("B")
        self.iov = (Iovec * BATCH)()
        self.hdrs = (Mmsghdr * BATCH)()
        base, cbase = ctypes.addressof(self.buf), ctypes.addressof(self.control)
        for i in range(BATCH):
            self.iov[i].iov_base = base + i * SLOT
            self.iov[i].iov_len = SLOT
            h = self.hdrs[i].msg_hdr
            h.msg_iov = ctypes.pointer(self.iov[i])
            h.msg_iovlen = 1
            h.msg_control = cbase + i * CONTROL
            h.msg_controllen = CONTROL
        self.template = bytes(self.hdrs)         # the kernel rewrites lengths: restore them per call
        raw = memoryview(self.hdrs).cast("B")
        self.lengths = raw.cast("I")[MSG_LEN_OFFSET // 4::ctypes.sizeof(Mmsghdr) // 4]      # msg_len of each
        self.controls = raw.cast("Q")[CONTROLLEN_OFFSET // 8::ctypes.sizeof(Mmsghdr) // 8]  # msg_controllen
        recvmmsg = libc_function("recvmmsg")
        if recvmmsg is None:
            raise OSError(errno.ENOSYS, "recvmmsg is not available in this C library")
        self.recvmmsg: Callable[..., int] = recvmmsg
        self.calls = 0

    def drain(self, fd: int, accounting: Accounting) -> int:
        """Receive everything queued on ``fd`` into ``accounting``; the datagrams received."""
        hdrs, view, cview = self.hdrs, self.view, self.control_view
        lengths, controls = self.lengths, self.controls
        got = 0
        while True:
            ctypes.memmove(hdrs, self.template, len(self.template))
            n = self.recvmmsg(fd, hdrs, BATCH, MSG_DONTWAIT, None)
            self.calls += 1
            if n <= 0:
                return got
            lens = lengths[:n].tolist()
            ctls = controls[:n].tolist()
            run = Run(accounting)
            for i in range(n):
                length, at = lens[i], i * SLOT
                if ctls[i] >= CMSG_HEADER.size + GRO_SIZE.size:
                    _, level, kind = CMSG_HEADER.unpack_from(cview, i * CONTROL)
                    if level == SOL_UDP and kind == UDP_GRO:
                        size = GRO_SIZE.unpack_from(cview, i * CONTROL + CMSG_HEADER.size)[0] or length
                        if size < length:
                            run.flush()
                            got += account(accounting, view, at, length, size)
                            continue
                run.add(view, at, length)
                got += 1
            run.flush()
            if n < BATCH:
                return got


class Run:
    """Consecutive single datagrams of one stream, checked against the expected next tail.

    Per datagram this compares the last bytes with ``" stream=ID seq=NNNNNNNNNNNN"`` of the next
    number; only a datagram that does not match is parsed, after the run so far is accounted.
    """

    def __init__(self, accounting: Accounting) -> None:
        self.accounting = accounting
        self.name = b""
        self.first = self.count = self.octets = 0
        self.head = b""                   # b" stream=ID seq="

    def add(self, view: memoryview, at: int, length: int) -> None:
        end = at + length
        if self.count and view[end - SEQ_DIGITS - len(self.head):end] == b"%s%012d" % (
                self.head, self.first + self.count):
            self.count += 1
            self.octets += length
            return
        self.flush()
        message = bytes(view[at:end])
        parsed = parse(message)
        if parsed is None:
            self.accounting.add_unsequenced(1, length)
            return
        self.name, self.first = parsed
        self.head = b" stream=%s seq=" % self.name
        self.count, self.octets = 1, length

    def flush(self) -> None:
        if self.count:
            acc = self.accounting
            acc.received += self.count
            acc.octets += self.octets
            acc.add_run(self.name, self.first, self.count)
            self.count = 0


def account(accounting: Accounting, view: memoryview, at: int, length: int, size: int) -> int:
    """A buffer of ``length`` bytes holding messages of ``size`` bytes (the last may be shorter)."""
    count = -(-length // size)
    if count > 1 and length == count * size:
        first = parse(bytes(view[at:at + size]))
        last = parse(bytes(view[at + length - size:at + length]))
        if first and last and first[0] == last[0] and last[1] - first[1] == count - 1:
            accounting.received += count
            accounting.octets += length
            accounting.add_run(first[0], first[1], count)
            return count
    for k in range(count):
        start = at + k * size
        accounting.add(bytes(view[start:min(start + size, at + length)]))
    return count


class SinkWorker:
    """One receiving process: its sockets, its accounting, its counter slot."""

    def __init__(self, host: str, ports: tuple[int, ...], slot: memoryview, cpu: int | None = None,
                 log: Callable[[str], None] = print, gro: bool = True, streams: CounterBlock | None = None) -> None:
        self.host, self.ports, self.slot, self.cpu, self.log, self.gro = host, ports, slot, cpu, log, gro
        self.streams = streams
        self.stream_slots: dict[bytes, memoryview | None] = {}
        self.stream_base: dict[bytes, list[int]] = {}
        self.alive = True
        self.accounting = Accounting()
        self.base = [0] * (CALLS + 1)

    def _stop(self, signum: int, frame: object) -> None:
        self.alive = False

    def init_process(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if self.cpu is not None:
            os.sched_setaffinity(0, {self.cpu})
        set_parent_death_signal()

    def run(self) -> int:
        slot = self.slot
        slot[STATE], slot[PID] = STATE_STARTING, os.getpid()
        try:
            socks = open_sockets(self.host, self.ports, gro=self.gro)
        except BindError as err:
            self.log(f"sink: {err}")
            slot[STATE] = STATE_FAILED
            return EXIT_BIND_FAILED
        inodes = {os.fstat(s.fileno()).st_ino for s in socks}
        base_drops = kernel_drops(inodes)
        receiver = Receiver()
        poller = select.epoll()
        fds = {s.fileno(): s for s in socks}
        for fd in fds:
            poller.register(fd, select.EPOLLIN)
        acc = self.accounting
        self.base = slot.tolist()                  # a restarted sink process carries its slot's counts on
        gc.disable()
        slot[STATE] = STATE_RUNNING
        next_publish = next_drops = 0.0
        try:
            while self.alive:
                for fd, _ in poller.poll(POLL_SECONDS):
                    receiver.drain(fd, acc)
                now = time.monotonic()
                if now >= next_publish:            # on a timer: a busy sink wakes up thousands of times a second
                    self.publish(receiver.calls)
                    next_publish = now + PUBLISH_SECONDS
                if now >= next_drops:
                    self.publish_drops(inodes, base_drops)
                    next_drops = now + DROPS_SECONDS
            for fd in fds:                         # what is still queued counts too
                receiver.drain(fd, acc)
            self.publish(receiver.calls)
            self.publish_drops(inodes, base_drops)
        finally:
            slot[STATE] = STATE_STOPPED
            poller.close()
            for s in socks:
                s.close()
        return 0

    def publish_drops(self, inodes: set[int], base: int) -> None:
        self.slot[KERNEL_DROPS] = self.base[KERNEL_DROPS] + max(0, kernel_drops(inodes) - base)

    def publish(self, calls: int) -> None:
        acc, slot, b = self.accounting, self.slot, self.base
        slot[RECEIVED], slot[BYTES] = b[RECEIVED] + acc.received, b[BYTES] + acc.octets
        slot[UNSEQUENCED] = b[UNSEQUENCED] + acc.unsequenced
        slot[LOST], slot[LATE] = b[LOST] + acc.gaps_total, b[LATE] + acc.filled_total
        slot[DUPLICATES] = b[DUPLICATES] + acc.duplicates
        slot[STREAMS], slot[CALLS] = max(b[STREAMS], len(acc.streams)), b[CALLS] + calls
        slot[HEARTBEAT_NS] = time.monotonic_ns()
        if self.streams is not None:
            self.publish_streams()

    def publish_streams(self) -> None:
        """Per-stream figures into the slot of the worker whose index ends the stream's name."""
        assert self.streams is not None
        for name, st in self.accounting.streams.items():
            if name not in self.stream_slots:
                digits = len(name) - len(name.rstrip(b"0123456789"))
                index = int(name[-digits:]) if digits else -1
                self.stream_slots[name] = self.streams.slot(index) if 0 <= index < self.streams.slots else None
                if self.stream_slots[name] is not None:
                    self.stream_base[name] = self.streams.values(index)     # counts of a previous sink process
            target = self.stream_slots[name]
            if target is not None:
                base = self.stream_base[name]
                target[S_RECEIVED] = base[S_RECEIVED] + st.received
                target[S_LOST] = base[S_LOST] + st.lost
                target[S_LATE] = base[S_LATE] + st.filled
                target[S_DUPLICATES] = base[S_DUPLICATES] + st.duplicates
