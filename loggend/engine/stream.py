"""TCP and TLS senders over a pre-rendered, pre-framed pool (RFC 6587 framing, RFC 5425 TLS).

The pool's messages already carry their framing (``LEN `` before each, or a line feed after it),
and they lie back to back in pool order, so a grant of N messages is one contiguous byte range:
one ``send`` per grant (two where it wraps), no work per message. ``send(budget)`` returns the
messages whose last byte the kernel accepted; a message half written stays the current one.

* **Push-back.** The socket is non-blocking: when the receiver does not read, the kernel's send
  queue fills and ``send`` would block; the sender waits for writability (``poll``, at most
  ``BLOCK_TIMEOUT`` per call) and counts the time waited in ``blocked_ns``. Nothing is refused:
  what could not go out stays due, and the pacer shows the shortfall. That is how a TCP run
  shows a receiver's limit.
* **A dropped connection** (reset, broken pipe, a TLS error): the bytes still unsent in the
  kernel's queue at that moment (``SIOCOUTQ``) are turned into messages and counted as
  ``possibly_lost`` (sent by our count, maybe never received); the connection is re-opened with
  back-off (first retry after ``RECONNECT_FIRST``, at most ``RECONNECT_MAX`` apart) and counted in
  ``reconnects``; the stream resumes at a message boundary: a message torn by the drop is sent
  again whole on the new connection, under the same sequence number.
* **TLS**: minimum TLS 1.2, the server verified against ``--tls-ca`` (or the system's CAs) under
  the name ``--tls-server-name`` (or the target as written), client certificates for mutual TLS.
  A handshake that fails at start is one clear line naming the cause (a boot failure).
"""

from __future__ import annotations

import errno
import fcntl
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
from loggend.engine.transport import TransportError

BLOCK_TIMEOUT = 0.1               # seconds one send() may wait for the receiver before it returns
CONNECT_TIMEOUT = 5.0             # a connection (and TLS handshake) that takes longer has failed
VERDICT_SECONDS = 0.3             # TLS 1.3: how long to listen for the server's verdict on our certificate
RECONNECT_FIRST = 0.1             # seconds before the first reconnection attempt; doubles
RECONNECT_MAX = 2.0
CHUNK_BYTES = 256 << 10           # at most this much per send call (bounded latency, TLS records)
SNDBUF_BYTES = 4 << 20
DROPPED = (ConnectionError, ssl.SSLError, TimeoutError)


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
        self.bytes = 0
        self.calls = 0
        self.errors = [0, 0, 0, 0]
        self.refused = 0                  # a stream never refuses: what cannot go out stays due
        self.last_error: OSError | None = None
        self.blocked_ns = 0
        self.reconnects = 0
        self.possibly_lost = 0
        self.sent = memoryview(bytearray(8)).cast("Q")
        self.sock: socket.socket | None = None
        self.retry_at = 0.0
        self.retry_delay = RECONNECT_FIRST
        self.down_reason = ""

    def _bind(self, pool: Pool) -> None:
        self.pool = pool
        self.view = memoryview(pool.buf)
        # Byte offset of each pool index in the buffer (messages lie back to back in pool order), and the end.
        self.offsets = array("Q", [start + j * length for start, count, length in
                                   zip(pool.starts, pool.counts, pool.lengths) for j in range(count)])
        self.offsets.append(len(pool.buf))

    # --- connections ---------------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the connection (and TLS); TransportError naming the cause when it fails."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF_BYTES)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((self.host, self.port))
        except OSError as err:
            sock.close()
            hint = " (nothing listening on that port?)" if err.errno == errno.ECONNREFUSED else ""
            raise TransportError(f"cannot connect: {err.strerror or err}{hint}") from None
        if self.context is not None:
            try:
                sock = self.context.wrap_socket(sock, server_hostname=self.server_name)
            except ssl.SSLError as err:
                sock.close()
                raise TransportError(describe_tls_error(err)) from None
            except TimeoutError:
                sock.close()
                raise TransportError(f"no TLS handshake answer within {CONNECT_TIMEOUT:g} s "
                                     "(a plain TCP server, or not a syslog TLS port?)") from None
            except OSError as err:
                sock.close()
                raise TransportError(f"the TLS handshake failed: {err.strerror or err} (the server closed the "
                                     "connection: not TLS, or it refused our certificate?)") from None
        sock.setblocking(False)
        if isinstance(sock, ssl.SSLSocket) and sock.version() == "TLSv1.3":
            self._await_verdict(sock)
        self.sock = sock
        self.poll = select.poll()
        self.poll.register(sock.fileno(), select.POLLOUT)
        self.partial = 0                  # a message torn by a drop goes again, whole
        self.retry_delay = RECONNECT_FIRST

    @staticmethod
    def _await_verdict(sock: ssl.SSLSocket) -> None:
        """In TLS 1.3 the server checks our certificate (or that we have none) after our side of the
        handshake is done and says no with an alert: listen briefly, so a refused certificate is an
        error at connect, not a dropped connection later. A server that accepts sends session
        tickets or nothing."""
        deadline = time.monotonic() + VERDICT_SECONDS
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        while (left := deadline - time.monotonic()) > 0:
            if not poller.poll(max(1, int(left * 1000))):
                return
            try:
                data = sock.recv(1)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except ssl.SSLError as err:
                sock.close()
                raise TransportError(describe_tls_error(err)) from None
            except OSError as err:
                sock.close()
                raise TransportError(f"the TLS connection was closed right after the handshake: "
                                     f"{err.strerror or err} (the server refused our certificate?)") from None
            if not data:
                sock.close()
                raise TransportError("the server closed the TLS connection right after the handshake "
                                     "(it refused our certificate?)")

    def _dropped(self, err: Exception) -> None:
        """The connection broke: count what may be lost with it, close it, schedule a reconnection."""
        assert self.sock is not None
        try:
            unsent = struct.unpack("i", fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            unsent = 0
        self.possibly_lost += self._messages_before(unsent)
        self.down_reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        self.last_error = err if isinstance(err, OSError) else OSError(errno.ECONNRESET, self.down_reason)
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None
        self.retry_at = time.monotonic() + self.retry_delay

    def _messages_before(self, unsent: int) -> int:
        """Whole messages among the last ``unsent`` bytes before the current position."""
        if unsent <= 0:
            return 0
        count, left, i = 0, unsent - self.partial, self.index     # a torn message goes again anyway
        while left > 0 and count < self.pool.size:
            i = i - 1 if i > 0 else self.pool.size - 1
            left -= self.offsets[i + 1] - self.offsets[i]
            count += 1
        return count

    def _reconnect(self) -> bool:
        """Try again when it is time; True when connected."""
        now = time.monotonic()
        if now < self.retry_at:
            time.sleep(min(self.retry_at - now, BLOCK_TIMEOUT))
            return False
        try:
            self.connect()
        except TransportError as err:
            self.down_reason = str(err)
            self.retry_delay = min(RECONNECT_MAX, self.retry_delay * 2)
            self.retry_at = time.monotonic() + self.retry_delay
            return False
        self.reconnects += 1
        return True

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

    def send(self, budget: int) -> int:
        if self.sock is None and not self._reconnect():
            return 0
        assert self.sock is not None
        sock, view, offsets, size = self.sock, self.view, self.offsets, self.pool.size
        total, base = self.sent, self.sent[0]
        done = nbytes = calls = 0
        deadline = 0.0
        i, partial = self.index, self.partial
        while done < budget:
            n = min(budget - done, size - i)
            start = offsets[i] + partial
            end = min(offsets[i + n], start + CHUNK_BYTES)
            calls += 1
            try:
                k = sock.send(view[start:end])
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError, InterruptedError):
                k = 0
            except DROPPED as err:
                self.index, self.partial = i, partial
                self._dropped(err)
                break
            except OSError as err:
                self.index, self.partial = i, partial
                self._dropped(err)
                break
            if k:
                pos = start + k
                nbytes += k
                j = bisect_right(offsets, pos, i, i + n + 1) - 1     # the message the position is in now
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
        self.bytes += nbytes
        self.calls += calls
        return done

    def close(self) -> None:
        if self.sock is None:
            return
        try:
            if isinstance(self.sock, ssl.SSLSocket):
                self.sock.settimeout(0.5)
                self.sock.unwrap()                        # close_notify: receivers log a clean end
        except (OSError, ValueError):
            pass
        self.sock.close()
        self.sock = None


def open_stream(pool: Pool, host: str, port: int, target_name: str,
                tls: TlsSpec | None) -> tuple[StreamSender, str]:
    """A connected stream sender and one line saying what it is; TransportError when it cannot."""
    sender = StreamSender(pool, host, port, target_name, tls)
    sender.connect()
    if tls is None or not isinstance(sender.sock, ssl.SSLSocket):
        return sender, "tcp: connected"
    what = f"tls: {sender.sock.version()} {(sender.sock.cipher() or ('?',))[0]}"
    if not tls.verify:
        return sender, f"{what}, the server NOT verified (tls_verify: no)"
    return sender, f"{what}, the server verified as {sender.server_name!r}"
