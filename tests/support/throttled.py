"""A UDP receiver of known capacity, for testing ``loggend find-limit`` (standard library only).

It is a token bucket (``rate`` per second, at most ``burst`` banked) evaluated at each datagram's
*kernel arrival time* (``SO_TIMESTAMPNS``), not at the time this process gets to read it: a
datagram is accepted when a token was there when it arrived, and dropped otherwise. A large
socket buffer keeps the kernel from dropping anything itself. So its capacity is exact whatever
the load on the machine: over a trial of ``T`` seconds it accepts at most ``burst + rate * T``, and
the highest rate with at most ``loss`` percent lost is ``(burst / T + rate) / (1 - loss / 100)``
(``limit_for``).

It writes its running total of accepted datagrams to ``--count-file`` (atomically, every 20 ms),
which ``find-limit --feedback "command:cat FILE"`` reads.

``--tcp``: a TCP listener (line-feed framing) that reads only about ``rate`` messages a second
from a small receive buffer, so a faster sender fills its send queue and is blocked: push-back.

    python -m tests.support.throttled --port 40000 --rate 8000 --burst 1000 --count-file /tmp/n
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import struct
import sys
import time

RCVBUF = 32 << 20
WRITE_EVERY = 0.02
TIMESPEC = struct.Struct("@qq")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = 33


def limit_for(rate: float, burst: float, seconds: float, loss_percent: float) -> float:
    """The highest offered rate a trial of ``seconds`` passes with at most ``loss_percent`` lost."""
    return (burst / seconds + rate) / (1 - loss_percent / 100)


def write_count(path: str, count: int) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{count}\n")
    os.replace(tmp, path)


def serve(port: int, rate: float, burst: float, count_file: str, ready_file: str) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind(("127.0.0.1", port))
    sock.settimeout(WRITE_EVERY)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    accepted, tokens, last = 0, burst, None
    write_count(count_file, 0)
    write_count(ready_file, sock.getsockname()[1])
    next_write = time.monotonic() + WRITE_EVERY
    while not stop:
        try:
            _, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(TIMESPEC.size))
        except TimeoutError:
            anc = None
        except InterruptedError:
            continue
        if anc:
            sec, nsec = TIMESPEC.unpack(anc[0][2][:TIMESPEC.size])
            arrived = sec + nsec / 1e9
            if last is not None:
                tokens = min(burst, tokens + rate * (arrived - last))
            last = arrived
            if tokens >= 1:
                tokens -= 1
                accepted += 1
        now = time.monotonic()
        if now >= next_write:
            write_count(count_file, accepted)
            next_write = now + WRITE_EVERY
    write_count(count_file, accepted)


def serve_tcp(port: int, rate: float, count_file: str, ready_file: str) -> None:
    """Accept connections; read ``rate`` lines a second in all (chunks of ~20 lines), count them."""
    import select
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 10)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    conns: list[socket.socket] = []
    lines, last = 0, time.monotonic()
    tokens = 0.0
    write_count(count_file, 0)
    write_count(ready_file, listener.getsockname()[1])
    while not stop:
        ready, _, _ = select.select([listener, *conns], [], [], 0.001)
        now = time.monotonic()
        tokens = min(rate * 0.05, tokens + rate * (now - last))     # at most 50 ms banked
        last = now
        for sock in ready:
            if sock is listener:
                conn, _ = listener.accept()
                conns.append(conn)
            elif tokens >= 20:
                data = sock.recv(4096)
                if not data:
                    conns.remove(sock)
                    sock.close()
                    continue
                got = data.count(b"\n")
                lines += got
                tokens -= got
        if not ready or tokens < 20:
            time.sleep(0.001)
        write_count(count_file, lines)
    write_count(count_file, lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--burst", type=float, default=0.0)
    p.add_argument("--tcp", action="store_true", help="a slow TCP reader instead (line-feed framing)")
    p.add_argument("--count-file", required=True)
    p.add_argument("--ready-file", required=True, help="gets the port once it receives")
    a = p.parse_args(argv)
    if a.tcp:
        serve_tcp(a.port, a.rate, a.count_file, a.ready_file)
    else:
        serve(a.port, a.rate, a.burst, a.count_file, a.ready_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
