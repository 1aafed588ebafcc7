"""The dummy SIEM's receiving side: UDP sockets, batched receive and the hand-over to accounting.

``open_sockets`` binds every port of the range with ``SO_REUSEPORT`` (so K sink processes share
them, the kernel keeping each flow, hence each stream, on one of them) and turns on ``UDP_GRO``
(a train of same-size datagrams of one flow arrives as one buffer with its segment size).
``Receiver`` reads with ``recvmmsg`` through ctypes. A GRO train whose first and last messages
are the same stream with consecutive numbers is accounted as one run; single datagrams are
checked against the expected next tail (``Run``) and parsed only when it does not match.

Work per wake-up is bounded: ``drain`` makes at most ``DRAIN_CALLS`` receive calls per socket
and says whether it stopped with datagrams still queued, so a sink that is behind still comes
back to its loop (counters, heartbeat, signals) many times a second. ``count`` reads without
accounting (lengths only, for the end of a run that could not be accounted in time).
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from collections.abc import Callable

from loggend.engine.formats import SEQ_DIGITS
from loggend.engine.syscalls import (
    MSG_DONTWAIT,
    MSG_TRUNC,
    SO_RCVBUFFORCE,
    SOL_UDP,
    UDP_GRO,
    Iovec,
    Mmsghdr,
    Msghdr,
    libc_function,
)
from loggend.sink.accounting import Accounting, numbered_run, parse, parse_tail

BATCH = 64                    # buffers per recvmmsg call
DRAIN_CALLS = 8               # recvmmsg calls per socket per wake-up (up to 512 buffers), then back to the loop
SLOT = 65536                  # bytes per buffer: a whole GRO train (<= 64 KiB)
CONTROL = 64                  # control bytes per buffer: room for the UDP_GRO cmsg
COUNT_BYTES = 16              # bytes copied per buffer when only counting
RCVBUF_BYTES = 256 << 20      # asked for with SO_RCVBUFFORCE as root, else capped at rmem_max
CMSG_HEADER = struct.Struct("@QiI")     # cmsg_len (size_t), cmsg_level, cmsg_type; data follows
GRO_SIZE = struct.Struct("@i")          # udp_cmsg_recv() puts gso_size as an int
MSG_LEN_OFFSET = Mmsghdr.msg_len.offset
CONTROLLEN_OFFSET = Msghdr.msg_controllen.offset


class BindError(Exception):
    """A port cannot be bound (taken without SO_REUSEPORT, privileged, bad address)."""


def open_sockets(host: str, ports: tuple[int, ...], reuseport: bool = True, gro: bool = True) -> list[socket.socket]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    for port in ports:
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as err:               # EMFILE: more ports than file descriptors
            for s in socks:
                s.close()
            raise BindError(f"cannot open a socket for {host}:{port}: {err.strerror} "
                            f"({len(ports):,} ports need {len(ports):,} file descriptors)") from None
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


class Receiver:
    """recvmmsg over a set of non-blocking sockets; each buffer may hold a GRO train."""

    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(BATCH * SLOT)
        self.view = memoryview(self.buf).cast("B")
        self.control = ctypes.create_string_buffer(BATCH * CONTROL)
        self.control_view = memoryview(self.control).cast("B")
        self.iov = (Iovec * BATCH)()
        self.count_iov = (Iovec * BATCH)()      # the same buffers, too short to copy much into (count())
        self.hdrs = (Mmsghdr * BATCH)()
        base, cbase = ctypes.addressof(self.buf), ctypes.addressof(self.control)
        for i in range(BATCH):
            self.iov[i].iov_base = self.count_iov[i].iov_base = base + i * SLOT
            self.iov[i].iov_len, self.count_iov[i].iov_len = SLOT, COUNT_BYTES
            h = self.hdrs[i].msg_hdr
            h.msg_iov = ctypes.pointer(self.count_iov[i])
            h.msg_iovlen = 1
            h.msg_control = cbase + i * CONTROL
            h.msg_controllen = CONTROL
        self.count_template = bytes(self.hdrs)   # the kernel rewrites lengths: restore them per call
        for i in range(BATCH):
            self.hdrs[i].msg_hdr.msg_iov = ctypes.pointer(self.iov[i])
        self.template = bytes(self.hdrs)
        raw = memoryview(self.hdrs).cast("B")
        self.lengths = raw.cast("I")[MSG_LEN_OFFSET // 4::ctypes.sizeof(Mmsghdr) // 4]      # msg_len of each
        self.controls = raw.cast("Q")[CONTROLLEN_OFFSET // 8::ctypes.sizeof(Mmsghdr) // 8]  # msg_controllen
        recvmmsg = libc_function("recvmmsg")
        if recvmmsg is None:
            raise OSError(errno.ENOSYS, "recvmmsg is not available in this C library")
        self.recvmmsg: Callable[..., int] = recvmmsg
        self.calls = 0

    def drain(self, fd: int, accounting: Accounting, calls: int = DRAIN_CALLS) -> bool:
        """Receive what is queued on ``fd`` into ``accounting``, in at most ``calls`` receive calls;
        True when it stopped on that bound (more may be queued)."""
        hdrs, view, cview = self.hdrs, self.view, self.control_view
        lengths, controls = self.lengths, self.controls
        for _ in range(calls):
            ctypes.memmove(hdrs, self.template, len(self.template))
            n = self.recvmmsg(fd, hdrs, BATCH, MSG_DONTWAIT, None)
            self.calls += 1
            if n <= 0:
                return False
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
                            account(accounting, view, at, length, size)
                            continue
                run.add(view, at, length)
            run.flush()
            if n < BATCH:
                return False
        return True

    def count(self, fd: int, calls: int = DRAIN_CALLS) -> tuple[int, bool]:
        """Read up to ``calls`` batches from ``fd`` without accounting them (``MSG_TRUNC``: the kernel
        copies little and reports the real length); (datagrams read, True when more may be queued)."""
        hdrs, cview, lengths, controls = self.hdrs, self.control_view, self.lengths, self.controls
        got = 0
        for _ in range(calls):
            ctypes.memmove(hdrs, self.count_template, len(self.count_template))
            n = self.recvmmsg(fd, hdrs, BATCH, MSG_DONTWAIT | MSG_TRUNC, None)
            if n <= 0:
                return got, False
            lens, ctls = lengths[:n].tolist(), controls[:n].tolist()
            for i in range(n):
                size = 0
                if ctls[i] >= CMSG_HEADER.size + GRO_SIZE.size:
                    _, level, kind = CMSG_HEADER.unpack_from(cview, i * CONTROL)
                    if level == SOL_UDP and kind == UDP_GRO:
                        size = GRO_SIZE.unpack_from(cview, i * CONTROL + CMSG_HEADER.size)[0]
                got += -(-lens[i] // size) if 0 < size < lens[i] else 1
            if n < BATCH:
                return got, False
        return got, True


class Run:
    """Consecutive messages of one stream, checked against the expected tail of the next one.

    Per message this compares the last bytes with the stream's tail pattern carrying the next
    number (``" stream=ID seq=NNNNNNNNNNNN"`` in RFC 3164; see ``accounting.parse_tail``); only a
    message that does not match is parsed, after the run so far is accounted. RFC 5424 messages
    have no tail pattern and are parsed one by one.
    """

    def __init__(self, accounting: Accounting) -> None:
        self.accounting = accounting
        self.name = b""
        self.first = self.count = self.octets = 0
        self.before = self.after = b""             # the tail pattern around the digits
        self.tail_len = 0                          # 0: no pattern

    def add(self, view: memoryview, at: int, length: int) -> None:
        end = at + length
        if self.count and self.tail_len and view[end - self.tail_len:end] == b"%s%012d%s" % (
                self.before, self.first + self.count, self.after):
            self.count += 1
            self.octets += length
            return
        self.flush()
        message = bytes(view[at:end])
        parsed = parse_tail(message)
        if parsed is None:
            if not message or message.isspace():
                self.accounting.add_empty(length)      # no event
            else:
                self.accounting.add_unsequenced(1, length)
            return
        self.name, self.first, self.before, self.after = parsed.name, parsed.number, parsed.before, parsed.after
        self.tail_len = len(self.before) + SEQ_DIGITS + len(self.after) if parsed.at_end else 0
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
        data = bytes(view[at:at + length])
        first = parse_tail(data[:size])
        last = parse(data[length - size:])
        if first and last and first.name == last[0] and last[1] - first.number == count - 1 and \
                numbered_run(data, first.before, first.number, count, length,
                             size if first.at_end else 0, size - len(first.after) - SEQ_DIGITS):
            accounting.received += count
            accounting.octets += length
            accounting.add_run(first.name, first.number, count)
            return count
    for k in range(count):
        start = at + k * size
        accounting.add(bytes(view[start:min(start + size, at + length)]))
    return count
