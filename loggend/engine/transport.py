"""UDP senders over a pre-rendered pool: GSO (UDP_SEGMENT), sendmmsg (ctypes), sendto.

Every sender walks the pool in order, wrapping to the start (and advancing the pool's pass
number, which is the high part of the sequence numbers) at the end. ``send(budget)`` sends up to
``budget`` messages from the current position and returns how many the kernel accepted; the
position only moves past accepted messages, so a refused message is sent again later under the
same sequence number and the stream on the wire stays contiguous.

One error path for every sender and system call:

* ``EINTR``: tried again.
* A full queue (``EAGAIN``, ``ENOBUFS``): back-pressure. The sender waits until the socket is
  writable (``poll``), at most ``BLOCK_TIMEOUT`` per ``send`` call, and tries again; the time
  it waited is ``blocked_ns``. Past the bound, the rest of the grant counts as ``queue_full``.
* Anything else (nobody listening, no route...): the rest of the grant is refused once, counted
  in ``errors[kind]`` (messages, by kind) and in ``refused`` so the pacer can charge it.
* ``sendmmsg`` that stops early (it returns how many messages went, and the kernel drops the
  error of the next one, e.g. the ECONNREFUSED an ICMP port-unreachable left on the socket):
  the next frame goes out alone with ``sendmsg``, which reports its error if it has one.

The socket is connected (so ICMP port-unreachable comes back as ECONNREFUSED) and non-blocking.

With ``track(counter)`` (a one-element view of the worker slot's SENT), the total is stored after
every system call that sent something, not once per grant: a worker killed between two calls of
one grant leaves a count that matches the wire, and its replacement resends nothing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import struct
import time
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from typing import Protocol

from loggend.engine.render import Pool
from loggend.engine.syscalls import SOL_UDP, UDP_SEGMENT, Iovec, Mmsghdr, libc_function

BLOCK_TIMEOUT = 0.1                # seconds one send() may wait for queue space before it refuses the rest
NOBUFS_PAUSE = 0.0002              # ENOBUFS is a device queue: poll says writable at once, so pause
SNDBUF_BYTES = 8 << 20             # asked for; the kernel caps it at net.core.wmem_max
MMSG_BATCH = 1024                  # messages per sendmmsg call (UIO_MAXIOV)
GSO_FRAMES_PER_CALL = 64           # GSO frames (each up to 64 messages) per sendmmsg call
GSO_MMSG_MIN = 128                 # a grant of up to this many messages goes frame by frame (sendmsg):
                                   # setting up the ctypes call costs more than the call it saves
CMSG_LEN_U16 = 18                  # CMSG_LEN(sizeof(uint16_t)) on 64-bit Linux
CMSG_SPACE_U16 = 24                # CMSG_SPACE(sizeof(uint16_t))
FULL_QUEUE = frozenset({errno.EAGAIN, errno.ENOBUFS})

# Error kinds: positions in ``Sender.errors``, in the order of ``counters.ERROR_KINDS``.
KIND_REFUSED, KIND_QUEUE_FULL, KIND_UNREACHABLE, KIND_OTHER = range(4)
_KIND_OF_ERRNO = {
    errno.ECONNREFUSED: KIND_REFUSED,
    errno.EAGAIN: KIND_QUEUE_FULL,
    errno.ENOBUFS: KIND_QUEUE_FULL,
    errno.ENETUNREACH: KIND_UNREACHABLE,
    errno.EHOSTUNREACH: KIND_UNREACHABLE,
    errno.ENETDOWN: KIND_UNREACHABLE,
}
# What a kernel or device without UDP segmentation offload answers (udp(7), UDP_SEGMENT).
GSO_UNSUPPORTED = frozenset({errno.EIO, errno.EINVAL, errno.ENOPROTOOPT, errno.EOPNOTSUPP})


class TransportError(Exception):
    """The asked-for transport cannot run here (a boot failure, not a send error)."""


class Sending(Protocol):
    """What the worker needs of a sender (these UDP ones, and ``engine.stream``'s TCP/TLS one)."""

    mode: str
    pool: Pool
    bytes: int
    calls: int
    errors: list[int]
    refused: int
    last_error: OSError | None
    blocked_ns: int

    def send(self, budget: int) -> int: ...
    def seek(self, sent: int) -> None: ...
    def track(self, counter: memoryview) -> None: ...
    def close(self) -> None: ...


def error_kind(err: OSError | int) -> int:
    code = err if isinstance(err, int) else (err.errno or 0)
    return _KIND_OF_ERRNO.get(code, KIND_OTHER)


def open_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF_BYTES)
    sock.connect((host, port))
    sock.setblocking(False)
    return sock


def _libc_sendmmsg() -> Callable[..., int] | None:
    fn = libc_function("sendmmsg")
    if fn is None:
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    fn.restype = ctypes.c_int
    send: Callable[..., int] = fn
    return send


class Sender:
    """Shared state of the three senders: position in the pool, counts, errors, back-pressure."""

    mode = ""

    def __init__(self, sock: socket.socket, pool: Pool) -> None:
        self.sock = sock
        self.pool = pool
        self.frame = 0          # current frame
        self.offset = 0         # messages of the current frame already sent
        self.bytes = 0          # payload bytes accepted by the kernel
        self.calls = 0          # system calls made
        self.errors = [0, 0, 0, 0]
        self.refused = 0        # messages the last send() had refused
        self.last_error: OSError | None = None
        self.blocked_ns = 0     # time spent waiting for queue space (push-back)
        self.sent = memoryview(bytearray(8)).cast("Q")     # total sent, stored after every call (see track)
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLOUT)
        self._deadline = 0.0    # of the current send() call's waiting, once it started to wait

    def send(self, budget: int) -> int:
        raise NotImplementedError

    def track(self, counter: memoryview) -> None:
        """Store the running total of messages sent in ``counter[0]`` after every system call."""
        self.sent = counter

    def _buffer_address(self) -> int:
        """Address of the pool's bytes for ctypes headers (the export pins the buffer's size)."""
        self._raw = (ctypes.c_char * len(self.pool.buf)).from_buffer(self.pool.buf)
        return ctypes.addressof(self._raw)

    def _bind(self, pool: Pool) -> None:
        """Point at ``pool`` (its buffer, frames and offsets); senders add their own structures."""
        self.pool = pool

    def seek(self, sent: int) -> None:
        """Continue a stream that has already sent ``sent`` messages (a restarted worker)."""
        position = sent % self.pool.size
        pool = self.pool.for_pass(sent // self.pool.size)
        if pool is not self.pool:
            self._bind(pool)
        self.frame = bisect_right(pool.first, position) - 1
        self.offset = position - pool.first[self.frame]

    def _wrap(self) -> bool:
        """A pass is over: the next one. True when that is a new pool (a replay's next lines), now
        bound: the caller's cached locals are stale and it returns what it sent so far."""
        self.frame = 0
        pool = self.pool.next_pool()
        if pool is None:
            self.pool.set_cycle(self.pool.cycle + 1)
            return False
        self._bind(pool)
        return True

    def _again(self, code: int) -> bool:
        """After a failed call: True to try it again (EINTR, or a full queue that drained in time)."""
        if code == errno.EINTR:
            return True
        if code not in FULL_QUEUE:
            return False
        start = time.monotonic()
        if not self._deadline:
            self._deadline = start + BLOCK_TIMEOUT
        left = self._deadline - start
        if left <= 0:
            return False
        self._poll.poll(max(1, int(left * 1000)))
        if code == errno.ENOBUFS:
            time.sleep(NOBUFS_PAUSE)
        self.blocked_ns += int((time.monotonic() - start) * 1e9)
        return True

    def _refuse(self, code: int, messages: int) -> None:
        err = OSError(code, os.strerror(code))
        self.errors[error_kind(code)] += messages
        self.refused = messages
        self.last_error = err

    def _begin(self) -> None:
        self.refused = 0
        self._deadline = 0.0

    def close(self) -> None:
        self.sock.close()


class GsoSender(Sender):
    """Frames sent with a ``UDP_SEGMENT`` control message: the kernel splits each into datagrams.

    A grant goes out in one ``sendmmsg`` of up to ``GSO_FRAMES_PER_CALL`` frames (one header per
    frame, each with its own segment size), so the Python and system-call cost is shared by
    hundreds of messages; where the grant starts or ends inside a frame, that header is trimmed
    for the call. ``sendmsg`` of one frame is the path after a call that stopped early, and for
    grants of up to ``GSO_MMSG_MIN`` messages (a slow worker's 20 ms), where the ctypes set-up costs more.
    """

    mode = "gso"

    def __init__(self, sock: socket.socket, pool: Pool) -> None:
        super().__init__(sock, pool)
        self._sendmmsg = _libc_sendmmsg()
        self._bind(pool)

    def _bind(self, pool: Pool) -> None:
        super()._bind(pool)
        self.view = memoryview(pool.buf)
        self.cmsgs = [[(SOL_UDP, UDP_SEGMENT, struct.pack("=H", length))] for length in pool.lengths]
        self.first_end = [*pool.first, pool.size]          # pool index of each frame, and the end
        self.bytes_before = [*accumulate((c * n for c, n in zip(pool.counts, pool.lengths)), initial=0)]
        nframes = pool.frames
        self._iov = (Iovec * nframes)()
        self._hdrs = (Mmsghdr * nframes)()
        self._control = ctypes.create_string_buffer(CMSG_SPACE_U16 * nframes)
        base, control = self._buffer_address(), ctypes.addressof(self._control)
        for f, (start, count, length) in enumerate(zip(pool.starts, pool.counts, pool.lengths)):
            self._iov[f].iov_base = base + start
            self._iov[f].iov_len = count * length
            struct.pack_into("=QiiH", self._control, f * CMSG_SPACE_U16, CMSG_LEN_U16, SOL_UDP, UDP_SEGMENT, length)
            hdr = self._hdrs[f].msg_hdr
            hdr.msg_iov = ctypes.pointer(self._iov[f])
            hdr.msg_iovlen = 1
            hdr.msg_control = control + f * CMSG_SPACE_U16
            hdr.msg_controllen = CMSG_SPACE_U16
        self._hdr_base = ctypes.addressof(self._hdrs)
        self._hdr_size = ctypes.sizeof(Mmsghdr)

    def send(self, budget: int) -> int:
        sendmsg, fd = self.sock.sendmsg, self.sock.fileno()
        mmsg = self._sendmmsg if budget > GSO_MMSG_MIN else None
        cmsgs, counts, lengths, view = self.cmsgs, self.pool.counts, self.pool.lengths, self.view
        first, before, starts, iov = self.first_end, self.bytes_before, self.pool.starts, self._iov
        hdr_base, hdr_size = self._hdr_base, self._hdr_size
        nframes = len(counts)
        f, j = self.frame, self.offset
        done = nbytes = calls = 0
        total, base = self.sent, self.sent[0]
        alone = mmsg is None        # after sendmmsg stopped early: the next frame alone, so its error shows
        self._begin()
        while done < budget:
            left = budget - done
            if not alone and mmsg is not None:
                # One call for the whole grant: the rest of frame f (from message j), the whole frames
                # after it, and the head of the frame where the grant ends; the first and last headers
                # are trimmed for the call and put back after it.
                end = first[f] + j + left
                h = bisect_right(first, end) - 1 if end < first[nframes] else nframes
                if h > f + GSO_FRAMES_PER_CALL:
                    h, tail = f + GSO_FRAMES_PER_CALL, 0
                else:
                    tail = end - first[h] if h < nframes else 0     # messages of frame h in this grant
                k = h - f + (1 if tail else 0)
                last = f + k - 1
                length0 = lengths[f]
                if j:
                    iov[f].iov_base += j * length0
                    iov[f].iov_len -= j * length0
                if tail:
                    iov[last].iov_len = (tail - (j if last == f else 0)) * lengths[last]
                m = mmsg(fd, hdr_base + f * hdr_size, k, 0)
                code = ctypes.get_errno() if m < 0 else 0
                if j:
                    iov[f].iov_base -= j * length0
                if j or tail:
                    iov[f].iov_len = counts[f] * length0
                    iov[last].iov_len = counts[last] * lengths[last]
                calls += 1
                if m < 0:
                    if self._again(code):
                        continue
                    self._refuse(code, left)
                    break
                if m == k and tail:                                  # ends inside frame h
                    sent_here = first[h] + tail - (first[f] + j)
                    nbytes += before[h] + tail * lengths[h] - (before[f] + j * length0)
                    f, j = h, tail
                else:                                                # m whole headers: frames f..f+m-1
                    sent_here = first[f + m] - (first[f] + j)
                    nbytes += before[f + m] - (before[f] + j * length0)
                    f, j = f + m, 0
                    alone = m < k
                done += sent_here
                total[0] = base + done
                if f == nframes:
                    f = 0
                    if self._wrap():
                        break
                continue
            alone = mmsg is None
            n = counts[f] - j
            if n > left:
                if done:
                    break                   # whole frames only after the first: the rest next time
                n = left
            length = lengths[f]
            start = starts[f] + j * length
            calls += 1
            try:
                sendmsg([view[start:start + n * length]], cmsgs[f])
            except OSError as err:
                if self._again(err.errno or 0):
                    continue
                self._refuse(err.errno or 0, left)
                break
            done += n
            total[0] = base + done
            nbytes += n * length
            j += n
            if j == counts[f]:
                j = 0
                f += 1
                if f == nframes:
                    f = 0
                    if self._wrap():
                        break
        self.frame, self.offset = f, j
        self.bytes += nbytes
        self.calls += calls
        return done


class MmsgSender(Sender):
    """``sendmmsg(2)`` through ctypes over a header array that points into the pool."""

    mode = "sendmmsg"

    def __init__(self, sock: socket.socket, pool: Pool) -> None:
        super().__init__(sock, pool)
        fn = _libc_sendmmsg()
        if fn is None:
            raise TransportError("sendmmsg is not available in this C library")
        self._sendmmsg = fn
        self._bind(pool)
        self.index = 0          # pool index of the next message

    def _bind(self, pool: Pool) -> None:
        super()._bind(pool)
        size = pool.size
        # Each message's place in the buffer, and the bytes of the messages before it in pool order
        # (with the end): the bytes of any run of messages in one subtraction.
        self._at = [start + j * length for start, count, length in
                    zip(pool.starts, pool.counts, pool.lengths) for j in range(count)]
        self._offsets = [*accumulate((length for count, length in zip(pool.counts, pool.lengths)
                                      for _ in range(count)), initial=0)]
        base = self._buffer_address()
        self._iov = (Iovec * size)()
        self._hdrs = (Mmsghdr * size)()
        for index in range(size):
            iov = self._iov[index]
            iov.iov_base = base + self._at[index]
            iov.iov_len = self._offsets[index + 1] - self._offsets[index]
            hdr = self._hdrs[index].msg_hdr
            hdr.msg_iov = ctypes.pointer(iov)
            hdr.msg_iovlen = 1
        self._hdr_size = ctypes.sizeof(Mmsghdr)
        self._hdr_base = ctypes.addressof(self._hdrs)
        self.view = memoryview(pool.buf)

    def seek(self, sent: int) -> None:
        super().seek(sent)
        self.index = sent % self.pool.size

    def send(self, budget: int) -> int:
        fn, fd, size, send = self._sendmmsg, self.sock.fileno(), self.pool.size, self.sock.send
        hdr_base, hdr_size, offsets, view = self._hdr_base, self._hdr_size, self._offsets, self.view
        i = self.index
        done = calls = nbytes = 0
        total, base = self.sent, self.sent[0]
        alone = False
        self._begin()
        while done < budget:
            n = min(budget - done, size - i, MMSG_BATCH)
            calls += 1
            if alone:                    # sendmmsg stopped early and dropped this one's error: find it out
                alone = False
                try:
                    at = self._at[i]
                    sent = 1 if send(view[at:at + offsets[i + 1] - offsets[i]]) else 0
                except OSError as err:
                    if self._again(err.errno or 0):
                        continue
                    self._refuse(err.errno or 0, budget - done)
                    break
            else:
                sent = fn(fd, hdr_base + i * hdr_size, n, 0)
                if sent < 0:
                    code = ctypes.get_errno()
                    if self._again(code):
                        continue
                    self._refuse(code, budget - done)
                    break
                alone = sent < n
            nbytes += offsets[i + sent] - offsets[i]
            done += sent
            total[0] = base + done
            i += sent
            if i == size:
                i = 0
                if self._wrap():
                    break
        self.index = i
        self.bytes += nbytes
        self.calls += calls
        return done


class SendtoSender(Sender):
    """One ``send`` per message: the portable last resort."""

    mode = "sendto"

    def __init__(self, sock: socket.socket, pool: Pool) -> None:
        super().__init__(sock, pool)
        self._bind(pool)

    def _bind(self, pool: Pool) -> None:
        super()._bind(pool)
        self.view = memoryview(pool.buf)

    def send(self, budget: int) -> int:
        send, view = self.sock.send, self.view
        starts, counts, lengths = self.pool.starts, self.pool.counts, self.pool.lengths
        nframes = len(counts)
        f, j = self.frame, self.offset
        done = nbytes = calls = 0
        total, base = self.sent, self.sent[0]
        self._begin()
        while done < budget:
            length = lengths[f]
            at = starts[f] + j * length
            calls += 1
            try:
                send(view[at:at + length])
            except OSError as err:
                if self._again(err.errno or 0):
                    continue
                self._refuse(err.errno or 0, budget - done)
                break
            done += 1
            total[0] = base + done
            nbytes += length
            j += 1
            if j == counts[f]:
                j = 0
                f += 1
                if f == nframes:
                    f = 0
                    if self._wrap():
                        break
        self.frame, self.offset = f, j
        self.bytes += nbytes
        self.calls += calls
        return done


SENDERS: dict[str, type[Sender]] = {"gso": GsoSender, "sendmmsg": MmsgSender, "sendto": SendtoSender}


def gso_available(sock: socket.socket) -> OSError | None:
    """None when the kernel takes UDP_SEGMENT on this socket, else the error it gave."""
    try:
        sock.setsockopt(SOL_UDP, UDP_SEGMENT, 1400)
        sock.setsockopt(SOL_UDP, UDP_SEGMENT, 0)
    except OSError as err:
        return err
    return None


def choose(requested: str, sock: socket.socket, pool: Pool) -> tuple[Sender, str]:
    """The sender to run and one line saying why. ``auto`` walks the ladder gso > sendmmsg > sendto."""
    if requested == "gso" or requested == "auto":
        err = gso_available(sock)
        if err is None:
            return GsoSender(sock, pool), "gso: the kernel accepts UDP_SEGMENT"
        if requested == "gso":
            raise TransportError(f"transport gso is not supported here: {err.strerror} (errno {err.errno})")
        reason = f"gso unavailable ({err.strerror})"
    else:
        reason = f"{requested} requested"
    if requested in ("sendmmsg", "auto"):
        try:
            return MmsgSender(sock, pool), f"sendmmsg: {reason}"
        except TransportError as err:
            if requested == "sendmmsg":
                raise
            reason = f"{reason}; {err}"
    return SendtoSender(sock, pool), f"sendto: {reason}"


def fall_back(sender: Sender) -> tuple[Sender, str] | None:
    """After a GSO send failed the way a device without segmentation offload fails, the next rung."""
    err = sender.last_error
    if sender.mode != "gso" or err is None or err.errno not in GSO_UNSUPPORTED:
        return None
    sender._poll.unregister(sender.sock.fileno())
    replacement, _ = choose("sendmmsg", sender.sock, sender.pool)
    replacement.frame, replacement.offset = sender.frame, sender.offset
    if isinstance(replacement, MmsgSender):
        replacement.index = sender.pool.first[sender.frame] + sender.offset
    replacement.bytes, replacement.calls, replacement.errors = sender.bytes, sender.calls, sender.errors
    replacement.blocked_ns = sender.blocked_ns
    replacement.sent = sender.sent
    replacement.errors[error_kind(err)] -= sender.refused     # not lost: the next rung resends them
    return replacement, f"sendmmsg: gso send failed ({err.strerror}), falling back"
