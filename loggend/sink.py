"""A counting syslog receiver: recvmmsg in batches, per-stream sequence accounting.

Every message loggend sends ends in ``stream=<id> seq=<12 digits>``. Per stream the receiver
keeps the next expected number: a higher one counts the skipped numbers as lost, a lower one is
a late arrival that fills an earlier gap (lost - 1, reordered + 1), as iperf3 counts. Datagrams
without the fields are counted only.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

from loggend.engine.render import SEQ_DIGITS
from loggend.engine.syscalls import Iovec, Mmsghdr, libc_function

BATCH = 1024                  # datagrams per recvmmsg call
SLOT = 2048                   # bytes per datagram buffer (loggend messages are <= 1024 by default)
RCVBUF_BYTES = 64 << 20       # asked for with SO_RCVBUFFORCE as root, else capped at rmem_max
POLL_SECONDS = 0.2            # receive timeout: how often stop flags and reports are looked at
MSG_WAITFORONE = 0x10000
SO_RCVBUFFORCE = 33          # asm-generic/socket.h; not exported by Python 3.11
STREAM_MARK = b" stream="
SEQ_MARK = b" seq="


@dataclass
class StreamStats:
    expected: int = 0
    received: int = 0
    lost: int = 0
    reordered: int = 0


@dataclass
class Accounting:
    received: int = 0
    octets: int = 0
    unsequenced: int = 0
    streams: dict[bytes, StreamStats] = field(default_factory=dict)

    def add(self, datagram: bytes) -> None:
        self.received += 1
        self.octets += len(datagram)
        at = datagram.rfind(STREAM_MARK)
        mark = len(datagram) - SEQ_DIGITS - len(SEQ_MARK)
        if at < 0 or datagram[mark:mark + len(SEQ_MARK)] != SEQ_MARK:
            self.unsequenced += 1
            return
        try:
            seq = int(datagram[-SEQ_DIGITS:])
        except ValueError:
            self.unsequenced += 1
            return
        name = datagram[at + len(STREAM_MARK):mark]
        st = self.streams.get(name)
        if st is None:
            st = self.streams[name] = StreamStats(expected=seq)
        st.received += 1
        if seq == st.expected:
            st.expected = seq + 1
        elif seq > st.expected:
            st.lost += seq - st.expected
            st.expected = seq + 1
        else:
            st.reordered += 1
            if st.lost:
                st.lost -= 1

    @property
    def lost(self) -> int:
        return sum(s.lost for s in self.streams.values())

    @property
    def reordered(self) -> int:
        return sum(s.reordered for s in self.streams.values())


class Receiver:
    """A bound UDP socket read with recvmmsg (or recv when the C library lacks it)."""

    def __init__(self, host: str, port: int, timeout: float = POLL_SECONDS) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF_BYTES)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_BYTES)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        tv = (ctypes.c_long * 2)(int(timeout), int((timeout % 1) * 1e6))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, bytes(tv))
        self.buf = ctypes.create_string_buffer(BATCH * SLOT)
        self.view = memoryview(self.buf).cast("B")
        self.iov = (Iovec * BATCH)()
        self.hdrs = (Mmsghdr * BATCH)()
        base = ctypes.addressof(self.buf)
        for i in range(BATCH):
            self.iov[i].iov_base = base + i * SLOT
            self.iov[i].iov_len = SLOT
            self.hdrs[i].msg_hdr.msg_iov = ctypes.pointer(self.iov[i])
            self.hdrs[i].msg_hdr.msg_iovlen = 1
        self._recvmmsg = libc_function("recvmmsg")

    def receive(self) -> list[bytes]:
        """The datagrams of one batch; [] after the poll timeout."""
        if self._recvmmsg is None:
            try:
                return [self.sock.recv(SLOT)]
            except (TimeoutError, InterruptedError):
                return []
        n = self._recvmmsg(self.sock.fileno(), self.hdrs, BATCH, MSG_WAITFORONE, None)
        if n < 0:
            code = ctypes.get_errno()
            if code in (errno.EAGAIN, errno.EINTR):
                return []
            raise OSError(code, os.strerror(code))
        view, hdrs = self.view, self.hdrs
        return [bytes(view[i * SLOT:i * SLOT + hdrs[i].msg_len]) for i in range(n)]

    def close(self) -> None:
        self.sock.close()


class Sink:
    def __init__(self, host: str, port: int, duration: float = 0.0, idle_exit: float = 0.0) -> None:
        self.host, self.port = host, port
        self.duration, self.idle_exit = duration, idle_exit
        self.stopping = False
        self.stats = Accounting()

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        receiver = Receiver(self.host, self.port)
        print(f"READY listening on {self.host}:{receiver.port}", flush=True)
        start = last_packet = last_report = time.monotonic()
        reported = 0
        stats = self.stats
        while not self.stopping:
            batch = receiver.receive()
            now = time.monotonic()
            for datagram in batch:
                stats.add(datagram)
            if batch:
                last_packet = now
            if now - last_report >= 1.0:
                print(f"sink: received {(stats.received - reported) / (now - last_report):12,.0f} ev/s  "
                      f"total {stats.received:,}  lost {stats.lost:,}", flush=True)
                last_report, reported = now, stats.received
            if self.duration and now - start >= self.duration:
                break
            if self.idle_exit and stats.received and now - last_packet >= self.idle_exit:
                break
        receiver.close()
        print(f"sink summary: received {stats.received:,} datagrams ({stats.octets:,} bytes) from "
              f"{len(stats.streams)} streams; lost {stats.lost:,}; reordered {stats.reordered:,}; "
              f"without sequence {stats.unsequenced:,}", flush=True)
        sys.stdout.flush()
        return 0
