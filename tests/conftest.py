"""Shared test helpers: a loopback receiver and the loggend command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loggend.sink import SO_RCVBUFFORCE

ROOT = Path(__file__).resolve().parent.parent
RCVBUF = 64 << 20
# "loggend run" without the machine's /etc/loggen.yaml, with one worker unless a test asks for more.
RUN = ("run", "--config", "/dev/null", "--workers", "1")


class LoopbackReceiver:
    """Binds 127.0.0.1 on a free high port and collects every datagram in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RCVBUF)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self.arrivals: list[float] = []           # time.monotonic() of each datagram
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.arrivals.append(time.monotonic())
            self.datagrams.append(data)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """Every datagram so far, once ``count`` have arrived or ``timeout`` has passed."""
        deadline = time.monotonic() + timeout
        while len(self.datagrams) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        return list(self.datagrams)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def receiver():
    r = LoopbackReceiver()
    yield r
    r.close()


def run_loggend(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "loggend", *args], capture_output=True, text=True, timeout=timeout,
        env=env, cwd=ROOT, start_new_session=True,
    )


def seq_of(datagram: bytes) -> int:
    return int(datagram.rsplit(b" seq=", 1)[1])
