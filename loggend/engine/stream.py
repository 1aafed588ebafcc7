"""TCP and TLS senders over a pre-rendered, pre-framed pool (RFC 6587 framing, RFC 5425 TLS).

The pool's messages already carry their framing (``LEN `` before each, or a line feed after it),
and they lie back to back in pool order, so a grant of N messages is one contiguous byte range:
one ``send`` per grant (two where it wraps), no work per message. ``send(budget)`` returns the
messages whose last byte the kernel accepted; a message half written stays the current one.

* **Push-back.** The socket is non-blocking: when the receiver does not read, the kernel's send
  queue fills and ``send`` would block; the sender waits for writability (``poll``, at most
  ``BLOCK_TIMEOUT`` per call) and counts the time waited in ``blocked_ns``. What could not go out
  stays due, and the pacer shows the shortfall. That is how a TCP run shows a receiver's limit.
* **TLS writes are retried whole.** A TLS write the socket could not take (want-write) is held
  by OpenSSL, part of it maybe already on the wire: it is written again with the same bytes and
  at least the same length (OpenSSL's rule, else ``BAD_LENGTH``), whatever the next grant is,
  so flow control alone never breaks the connection.
* **Connecting never blocks.** A connection (TCP connect, TLS handshake, TLS 1.3's verdict on our
  certificate) is a ``Dial`` advanced a step per ``send``, each step waiting at most
  ``BLOCK_TIMEOUT``: the worker's loop, and its heartbeat, go on while a receiver takes its time
  (``CONNECT_TIMEOUT`` in all). Only the first connection of a run is awaited (``connect``),
  and its failure is a boot failure; a worker that joins a run under way dials like a reconnection.
* **A dropped connection** (reset, broken pipe, a TLS error): the bytes still unsent in the
  kernel's queue at that moment (``SIOCOUTQ``) are turned into messages and counted as
  ``possibly_lost`` (sent by our count, maybe never received). A reset (``reset``) also says the
  receiver closed with data unread: what its kernel had acknowledged is gone too, and no TCP sender
  can count it (only the messages' sequence numbers at the receiver show it). The connection is re-opened with
  back-off (first retry after ``RECONNECT_FIRST``, at most ``RECONNECT_MAX`` apart) and counted in
  ``reconnects``; the stream resumes at a message boundary: a message torn by the drop is sent
  again whole on the new connection, under the same sequence number. While a connection attempt
  has failed, every grant is refused (``errors`` by the failure's kind, ``refused``), as a
  datagram to a closed port is; the time without a connection is ``disconnected_ns()``.
* **At the close** (``settle``, then ``close``): a held TLS write is finished, the kernel's queue
  is given a moment to empty, and what is still in it is counted in ``unsent_at_close``.
* **TLS**: minimum TLS 1.2, the server verified against ``--tls-ca`` (or the system's CAs) under
  the name ``--tls-server-name`` (or the target as written), client certificates for mutual TLS.
  A handshake that fails at start is one clear line naming the cause (a boot failure).
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import socket
import ssl
import struct
import termios
import time
from array import array
from bisect import bisect_right

from loggend.engine.render import Pool
from loggend.engine.spec import TlsSpec
from loggend.engine.transport import TransportError, error_kind

BLOCK_TIMEOUT = 0.1               # seconds one send() may wait for the receiver before it returns
CONNECT_TIMEOUT = 5.0             # a connection (and TLS handshake) that takes longer has failed
VERDICT_SECONDS = 0.3             # TLS 1.3: how long to listen for the server's verdict on our certificate
RECONNECT_FIRST = 0.1             # seconds before the first reconnection attempt; doubles
RECONNECT_MAX = 2.0
CHUNK_BYTES = 256 << 10           # at most this much per send call (bounded latency, TLS records)
SNDBUF_BYTES = 4 << 20
RESET, UNCLEAR = "reset", "unclear"   # how a connection ended (``reset``): reset by the receiver, or TLS's EOF
SETTLE_POLL = 0.01                # at the close: look this often whether the kernel's queue is empty
IDLE_PROBE = 1.0                  # a connection that sent nothing this long is checked for a close before a write
# A syslog receiver never writes to us: a connection that becomes readable, hung up or in error has been
# closed by it (a receiver dropping idle connections), and a write into it would be lost.
CLOSED_EVENTS = select.POLLIN | select.POLLHUP | select.POLLERR | getattr(select, "POLLRDHUP", 0x2000)


def tls_context(tls: TlsSpec) -> ssl.SSLContext:
    """The client context: TLS >= 1.2, verification as asked, a client certificate if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls.verify:
        if tls.ca:
            ctx.load_verify_locations(cafile=tls.ca)
        else:
            ctx.load_default_certs()
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if tls.cert:
        ctx.load_cert_chain(tls.cert, tls.key or None)
    return ctx


def describe_tls_error(err: Exception) -> str:
    """One line a person can act on, for what a TLS handshake raised."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"the TLS handshake failed: the server's certificate: {err.verify_message}"
    text = getattr(err, "reason", None) or str(err)
    if "WRONG_VERSION_NUMBER" in str(text).upper() or "wrong version number" in str(err):
        return "the TLS handshake failed: the server does not speak TLS (wrong version number: plain TCP?)"
    if isinstance(err, ssl.SSLEOFError) or "EOF" in str(err):
        return ("the TLS handshake failed: the server closed the connection (not TLS, or it refused our "
                "certificate?)")
    return f"the TLS handshake failed: {text}"


class ConnectError(TransportError):
    """A connection attempt failed; ``code`` is its errno (0 for a TLS failure), for the error kind."""

    def __init__(self, text: str, code: int = 0) -> None:
        super().__init__(text)
        self.code = code


def connect_failure(err: OSError | int) -> ConnectError:
    """``cannot connect: Connection refused (nothing listening on that port?)`` and its errno."""
    code = err if isinstance(err, int) else (err.errno or 0)
    text = (os.strerror(code) if isinstance(err, int) else err.strerror or str(err)) if code else str(err)
    hint = " (nothing listening on that port?)" if code == errno.ECONNREFUSED else ""
    return ConnectError(f"cannot connect: {text}{hint}", code)


class Dial:
    """One connection attempt, advanced by ``step(wait)``: the TCP connect, the TLS handshake, and
    in TLS 1.3 a moment to hear the server's verdict on our certificate (it says no with an alert
    after our side of the handshake is done). No step waits longer than it is given."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None, server_name: str,
                 timeout: float = CONNECT_TIMEOUT) -> None:
        self.context, self.server_name = context, server_name
        self.deadline = time.monotonic() + timeout
        self.verdict_at = 0.0                 # TLS 1.3: until when to listen for the verdict
        self.tls: ssl.SSLSocket | None = None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF_BYTES)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.setblocking(False)
            code = self.sock.connect_ex((host, port))
        except OSError as err:
            self.sock.close()
            raise connect_failure(err) from None
        if code not in (0, errno.EINPROGRESS):
            self.sock.close()
            raise connect_failure(code)
        self.connected = code == 0
        self.fd = self.sock.fileno()          # the TLS socket takes it over (the plain one is detached)
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLOUT)

    def step(self, wait: float) -> socket.socket | None:
        """The connected socket when the attempt is done, None while it needs more time;
        ConnectError (the socket closed) when it failed or ran out of time."""
        try:
            return self._step(wait)
        except ConnectError:
            (self.tls or self.sock).close()
            raise

    def _wait(self, events: int, wait: float, until: float) -> bool:
        """Poll for ``events`` at most ``wait`` and never past ``until``; True when they came."""
        self.poller.modify(self.fd, events)
        left = min(wait, until - time.monotonic())
        return bool(left > 0 and self.poller.poll(max(1, int(left * 1000))))

    def _step(self, wait: float) -> socket.socket | None:
        if not self.connected:
            if not self._wait(select.POLLOUT, wait, self.deadline):
                if time.monotonic() >= self.deadline:
                    raise connect_failure(errno.ETIMEDOUT)
                return None
            code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise connect_failure(code)
            self.connected = True
        if self.context is None:
            return self.sock
        if self.tls is None:
            self.tls = self.context.wrap_socket(self.sock, server_hostname=self.server_name,
                                                do_handshake_on_connect=False)
        if not self.verdict_at:
            return self._handshake(wait)
        return self._verdict(wait)

    def _handshake(self, wait: float) -> socket.socket | None:
        assert self.tls is not None
        try:
            self.tls.do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError) as err:
            events = select.POLLIN if isinstance(err, ssl.SSLWantReadError) else select.POLLOUT
            if not self._wait(events, wait, self.deadline) and time.monotonic() >= self.deadline:
                raise ConnectError(f"no TLS handshake answer within {CONNECT_TIMEOUT:g} s (a plain TCP server, "
                                   "or not a syslog TLS port?)", errno.ETIMEDOUT) from None
            return None
        except ssl.SSLError as err:
            raise ConnectError(describe_tls_error(err)) from None
        except OSError as err:
            raise ConnectError(f"the TLS handshake failed: {err.strerror or err} (the server closed the "
                               "connection: not TLS, or it refused our certificate?)", err.errno or 0) from None
        if self.tls.version() != "TLSv1.3":
            return self.tls
        self.verdict_at = time.monotonic() + VERDICT_SECONDS
        return self._verdict(wait)

    def _verdict(self, wait: float) -> socket.socket | None:
        """A server that accepts our certificate sends session tickets or nothing; one that refuses it
        closes with an alert: a refused certificate is an error at connect, not a drop later."""
        assert self.tls is not None
        if not self._wait(select.POLLIN, wait, self.verdict_at):
            return self.tls if time.monotonic() >= self.verdict_at else None
        try:
            data = self.tls.recv(1)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        except ssl.SSLError as err:
            raise ConnectError(describe_tls_error(err)) from None
        except OSError as err:
            raise ConnectError(f"the TLS connection was closed right after the handshake: {err.strerror or err} "
                               "(the server refused our certificate?)", err.errno or 0) from None
        if not data:
            raise ConnectError("the server closed the TLS connection right after the handshake (it refused our "
                               "certificate?)")
        return None


class StreamSender:
    """The sender interface of ``loggend.engine.transport`` over one TCP or TLS connection."""

    def __init__(self, pool: Pool, host: str, port: int, server_name: str = "",
                 tls: TlsSpec | None = None) -> None:
        self.pool = pool
        self.host, self.port = host, port
        self.tls = tls
        self.mode = "tls" if tls is not None else "tcp"
        self.context = tls_context(tls) if tls is not None else None
        self.server_name = (tls.server_name if tls is not None and tls.server_name else server_name) or host
        self._bind(pool)
        self.index = 0                    # pool index of the current message
        self.partial = 0                  # bytes of it already written on this connection
        self.owed = 0                     # TLS: end of a write OpenSSL holds (want-write), to be retried as is
        self.bytes = 0
        self.calls = 0
        self.errors = [0, 0, 0, 0]
        self.refused = 0                  # what the last send() refused: all of it, while connecting fails
        self.last_error: OSError | None = None
        self.blocked_ns = 0
        self.reconnects = 0
        self.possibly_lost = 0
        self.unsent_at_close = 0          # messages still in the kernel's queue when the connection was closed
        self.sent = memoryview(bytearray(8)).cast("Q")
        self.sock: socket.socket | None = None
        self.dial: Dial | None = None     # a connection attempt under way
        self.failure: OSError | None = None   # why the last attempt failed (None: none failed since the last drop)
        self.ever_connected = False
        self.closed = False               # closed at the end (not a connection that is down)
        self.retry_at = 0.0
        self.retry_delay = RECONNECT_FIRST
        self.down_reason = ""
        self.reset = ""                   # the last drop: RESET, or UNCLEAR (TLS cannot tell a reset from a close)
        self.down_since = 0.0             # CLOCK_MONOTONIC seconds since when there is no connection (0: up)
        self.down_seconds = 0.0           # time without a connection, periods that ended

    def _bind(self, pool: Pool) -> None:
        if not pool.contiguous:
            raise ValueError("a stream sends its pool as byte ranges: build it in sending order (by_layout=False)")
        self.pool = pool
        self.view = memoryview(pool.buf)
        # Byte offset of each pool index in the buffer (messages lie back to back in pool order), and the end.
        self.offsets = array("Q", [start + j * length for start, count, length in
                                   zip(pool.starts, pool.counts, pool.lengths) for j in range(count)])
        self.offsets.append(len(pool.buf))

    # --- connections ---------------------------------------------------------------------------------

    def _dial(self) -> Dial:
        return Dial(self.host, self.port, self.context, self.server_name)

    def connect(self) -> None:
        """Open the connection (and TLS), waiting for it; TransportError naming the cause when it fails."""
        dial = self._dial()
        while (sock := dial.step(CONNECT_TIMEOUT)) is None:
            pass
        self._up(sock)

    def _up(self, sock: socket.socket) -> None:
        """Connected: the stream goes on at a message boundary (a message torn by a drop goes again, whole)."""
        self.sock = sock
        self.poll = select.poll()
        self.poll.register(sock.fileno(), select.POLLOUT)
        self.hangup = select.poll()
        self.hangup.register(sock.fileno(), CLOSED_EVENTS)
        self.last_write = time.monotonic()
        self.partial = self.owed = 0
        self.retry_delay = RECONNECT_FIRST
        self.failure, self.down_reason = None, ""
        if self.down_since:
            self.down_seconds += time.monotonic() - self.down_since
            self.down_since = 0.0
        self.ever_connected = True

    def disconnected_ns(self) -> int:
        """Time without a connection since the run began for this sender (the current period too)."""
        ongoing = time.monotonic() - self.down_since if self.down_since else 0.0
        return int((self.down_seconds + ongoing) * 1e9)

    def _queued(self) -> int:
        """Bytes in the kernel's send queue, not yet acknowledged by the receiver (SIOCOUTQ)."""
        assert self.sock is not None
        try:
            return int(struct.unpack("i", fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0])
        except OSError:
            return 0

    def _dropped(self, err: Exception) -> None:
        """The connection broke: count what may be lost with it, close it, schedule a reconnection."""
        assert self.sock is not None
        self.possibly_lost += self._messages_before(self._queued())
        self.reset = (RESET if isinstance(err, ConnectionResetError)
                      else UNCLEAR if isinstance(err, ssl.SSLEOFError) else "")
        self.down_reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        self.last_error = err if isinstance(err, OSError) else OSError(errno.ECONNRESET, self.down_reason)
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None
        self.owed = 0
        self.down_since = time.monotonic()
        self.retry_at = self.down_since + self.retry_delay

    def _messages_before(self, unsent: int) -> int:
        """Whole messages among the last ``unsent`` bytes before the current position."""
        if unsent <= 0:
            return 0
        count, left, i = 0, unsent - self.partial, self.index     # a torn message goes again anyway
        whole = self.offsets[-1]                      # one pass of the pool, in bytes: a queue may hold many
        if whole > 0 and left > whole:
            passes = (left - 1) // whole
            count, left = passes * self.pool.size, left - passes * whole
        while left > 0:
            i = i - 1 if i > 0 else self.pool.size - 1
            left -= self.offsets[i + 1] - self.offsets[i]
            count += 1
        return count

    def _reconnect(self) -> bool:
        """Advance the connection: start an attempt when it is time, or take one step of it (at most
        ``BLOCK_TIMEOUT``); True when connected."""
        if not self.down_since:
            self.down_since = time.monotonic()        # a worker that joins a run under way starts here
        try:
            if self.dial is None:
                now = time.monotonic()
                if now < self.retry_at:
                    if self.failure is None:          # else the grant is refused, and the pacer paces the looks
                        time.sleep(min(self.retry_at - now, BLOCK_TIMEOUT))
                    return False
                self.dial = self._dial()
            sock = self.dial.step(BLOCK_TIMEOUT)
        except ConnectError as err:
            self.dial = None
            self.down_reason = str(err)
            self.failure = OSError(err.code, str(err))
            self.retry_delay = min(RECONNECT_MAX, self.retry_delay * 2)
            self.retry_at = time.monotonic() + self.retry_delay
            return False
        if sock is None:
            return False
        self.dial = None
        self.reconnects += self.ever_connected
        self._up(sock)
        return True

    def _refuse(self, budget: int) -> None:
        """No connection, and the last attempt failed: the grant is refused, like a datagram to a closed port."""
        assert self.failure is not None
        self.errors[error_kind(self.failure)] += budget
        self.refused = budget
        self.last_error = self.failure

    # --- sending -------------------------------------------------------------------------------------

    def seek(self, sent: int) -> None:
        """Continue a stream that has already sent ``sent`` messages (a restarted worker)."""
        self.index = sent % self.pool.size
        pool = self.pool.for_pass(sent // self.pool.size)
        if pool is not self.pool:
            self._bind(pool)
        self.partial = 0

    def track(self, counter: memoryview) -> None:
        self.sent = counter

    def _closed_while_idle(self) -> None:
        """After ``IDLE_PROBE`` without a write: when the receiver closed the connection meanwhile, drop
        it, so the next write goes to a new one instead of being lost in the closed one."""
        assert self.sock is not None
        if self.hangup.poll(0):
            self._dropped(ConnectionResetError(errno.ECONNRESET, "the receiver closed the idle connection"))
            self.retry_at = time.monotonic()             # a clean close: dial again at once

    def send(self, budget: int) -> int:
        self.refused = 0
        if self.sock is not None and budget and time.monotonic() - self.last_write > IDLE_PROBE:
            self._closed_while_idle()
        if self.sock is None and not self._reconnect():
            if self.failure is not None and budget:
                self._refuse(budget)
            return 0
        assert self.sock is not None
        sock, view, offsets, size = self.sock, self.view, self.offsets, self.pool.size
        total, base = self.sent, self.sent[0]
        done = nbytes = calls = 0
        deadline = 0.0
        i, partial = self.index, self.partial
        while done < budget or self.owed:
            start = offsets[i] + partial
            end = self.owed or min(offsets[i + min(budget - done, size - i)], start + CHUNK_BYTES)
            calls += 1
            try:
                k = sock.send(view[start:end])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                self.owed, k = end, 0             # OpenSSL holds this write: the next one repeats it exactly
            except BlockingIOError:
                k = 0
            except OSError as err:                # reset, broken pipe, a TLS error (ssl.SSLError is one)
                self.index, self.partial = i, partial
                self._dropped(err)
                break
            if k:
                self.owed = 0
                pos = start + k
                nbytes += k
                j = bisect_right(offsets, pos, i, size + 1) - 1     # the message the position is in now
                done += j - i
                total[0] = base + done
                i, partial = j, pos - offsets[j]
                if i == size:
                    i = 0
                    nxt = self.pool.next_pool()
                    if nxt is not None:                   # a replay's next lines: a new buffer
                        self._bind(nxt)
                        break
                    self.pool.set_cycle(self.pool.cycle + 1)
                if k == end - start:
                    continue
            now = time.monotonic()                        # the receiver is not reading: wait, bounded
            if not deadline:
                deadline = now + BLOCK_TIMEOUT
            if now >= deadline:
                break
            self.poll.poll(max(1, int((deadline - now) * 1000)))
            self.blocked_ns += int((time.monotonic() - now) * 1e9)
        if self.sock is not None:
            self.index, self.partial = i, partial
            if nbytes:
                self.last_write = time.monotonic()
        self.bytes += nbytes
        self.calls += calls
        return done

    def settle(self) -> bool:
        """At the end of sending: finish a TLS write OpenSSL holds, then look whether the kernel's queue
        is empty (waiting ``SETTLE_POLL`` if not). True when there is nothing left to wait for."""
        if self.sock is None:
            return True
        if self.owed:
            self.send(0)
            return self.sock is None
        if not self._queued():
            return True
        time.sleep(SETTLE_POLL)
        return False

    def close(self) -> None:
        """Count what is still unsent in the kernel's queue, say goodbye (TLS close_notify), close."""
        self.closed = True
        if self.down_since:
            self.down_seconds += time.monotonic() - self.down_since
            self.down_since = 0.0
        if self.dial is not None:
            (self.dial.tls or self.dial.sock).close()
            self.dial = None
        if self.sock is None:
            return
        self.unsent_at_close += self._messages_before(self._queued())
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                self.sock.settimeout(0.5)
                self.sock.unwrap()                        # close_notify: receivers log a clean end
        except (OSError, ValueError):
            pass
        self.sock.close()
        self.sock = None


def open_stream(pool: Pool, host: str, port: int, target_name: str,
                tls: TlsSpec | None, connect: bool = True) -> tuple[StreamSender, str]:
    """A stream sender and one line saying what it is; connected first unless ``connect`` is false (a
    worker joining a run under way connects as it sends); TransportError when it cannot connect."""
    sender = StreamSender(pool, host, port, target_name, tls)
    if not connect:
        return sender, f"{sender.mode}: connecting (the run is under way: with back-off while it fails)"
    sender.connect()
    if tls is None or not isinstance(sender.sock, ssl.SSLSocket):
        return sender, "tcp: connected"
    what = f"tls: {sender.sock.version()} {(sender.sock.cipher() or ('?',))[0]}"
    if not tls.verify:
        return sender, f"{what}, the server NOT verified (tls_verify: no)"
    return sender, f"{what}, the server verified as {sender.server_name!r}"
