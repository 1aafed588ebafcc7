"""The machine's own TCP and TLS ceilings, and the counting receiver every stream figure uses.

``python -m loggend.tools.ceiling send tcp|tls PORT SECONDS`` sends a static 4 MiB buffer of
150-byte lines with ``sendall`` in a loop (over Python's ``ssl`` for tls): no content, no
timestamps, no sequence numbers, so nothing a Python sender can do over one connection is
faster. ``... count tcp|tls PORT [CERT KEY]`` accepts one connection and counts its line feeds
with ``bytes.count`` (C speed); ``... discard tcp PORT`` lets the kernel drop what arrives
(``MSG_TRUNC``: no copy to user space) and counts bytes only, so a TCP sender is measured and
not the receiver. Each prints one ``RESULT key=value ...`` line. ``loggend bench`` runs them
pinned to their CPUs; they are figures, not tests.
"""

from __future__ import annotations

import socket
import ssl
import sys
import time

LINE_BYTES = 150
BUFFER_BYTES = 4 << 20
RECV_BYTES = 4 << 20
IDLE_SECONDS = 1.0           # the count ends this long after the last byte (or at EOF)


def line_buffer() -> bytes:
    line = b"<13>Nov 29 08:49:12 bench-host ceiling: " + b"x" * LINE_BYTES
    line = line[:LINE_BYTES - 1] + b"\n"
    return line * (BUFFER_BYTES // LINE_BYTES)


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE      # a ceiling: the cipher's cost, not the PKI's
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def send(protocol: str, port: int, seconds: float) -> None:
    data = memoryview(line_buffer())
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    if protocol == "tls":
        sock = client_context().wrap_socket(sock)
    sent = 0
    start = time.monotonic()
    cpu0 = time.process_time()
    end = start + seconds
    while time.monotonic() < end:
        sock.sendall(data)
        sent += len(data)
    wall, cpu = time.monotonic() - start, time.process_time() - cpu0
    print(f"RESULT lines={sent // LINE_BYTES} bytes={sent} secs={wall:.4f} cpu={cpu:.4f}", flush=True)
    sock.close()


def count(protocol: str, port: int, cert: str = "", key: str = "") -> None:
    server = socket.create_server(("127.0.0.1", port), reuse_port=False)
    print("READY", flush=True)
    conn, _ = server.accept()
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    if protocol == "tls":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        conn = ctx.wrap_socket(conn, server_side=True)
    conn.settimeout(IDLE_SECONDS)
    buf = bytearray(RECV_BYTES)
    view = memoryview(buf)
    discard = protocol == "discard"
    lines = nbytes = 0
    first = last = 0.0
    cpu0 = time.process_time()
    while True:
        try:
            got = conn.recv_into(view, RECV_BYTES, socket.MSG_TRUNC) if discard else conn.recv_into(view)
        except (TimeoutError, ssl.SSLError, OSError):
            break
        if not got:
            break
        last = time.monotonic()
        first = first or last
        nbytes += got
        if not discard:
            lines += buf.count(b"\n", 0, got)
    cpu = time.process_time() - cpu0
    print(f"RESULT lines={lines} bytes={nbytes} span={last - first:.4f} cpu={cpu:.4f}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("send", "count", "discard") or argv[1] not in ("tcp", "tls"):
        print("usage: python -m loggend.tools.ceiling send tcp|tls PORT SECONDS | count tcp|tls PORT [CERT KEY]"
              " | discard tcp PORT", file=sys.stderr)
        return 2
    if argv[0] == "send":
        send(argv[1], int(argv[2]), float(argv[3]))
    elif argv[0] == "discard":
        count("discard", int(argv[2]))
    else:
        count(argv[1], int(argv[2]), *argv[3:5])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
