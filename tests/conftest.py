"""Shared test helpers: a loopback receiver and the loggend command line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loggend.engine.syscalls import SO_RCVBUFFORCE

ROOT = Path(__file__).resolve().parent.parent
RCVBUF = 64 << 20
# "loggend run" without the machine's /etc/loggen.yaml, with one worker unless a test asks for more,
# and no web process unless a test asks for one.
RUN = ("run", "--config", "/dev/null", "--workers", "1", "--dashboard", "off")
# The tests read the live line through a pipe, where it would come every 10 s: ask for one a second
# (through the environment, as an operator could; a test of the default removes it).
TEST_ENV = {"LOGGEN_LIVE_INTERVAL": "1s"}


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


def child_environ(env: dict[str, str | None] | None = None) -> dict[str, str]:
    """This environment, the checkout on PYTHONPATH, TEST_ENV, then ``env`` (a None value removes one)."""
    environ: dict[str, str | None] = dict(os.environ, PYTHONPATH=str(ROOT), **TEST_ENV)
    environ.update(env or {})
    return {k: v for k, v in environ.items() if v is not None}


def run_loggend(*args: str, timeout: float = 60.0,
                env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loggend", *args], capture_output=True, text=True, timeout=timeout,
        env=child_environ(env), cwd=ROOT, start_new_session=True,
    )


def seq_of(datagram: bytes) -> int:
    return int(datagram.rsplit(b" seq=", 1)[1])


def worker_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (the supervisor's workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class Loggend:
    """``python -m loggend ARGS`` in its own process group, with its output collected in threads."""

    def __init__(self, *args: str, env: dict[str, str | None] | None = None) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loggend", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_environ(env), cwd=ROOT, start_new_session=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._collect, args=(s, d), daemon=True)
                         for s, d in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _collect(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_line(self, needle: str, timeout: float = 20.0, stream: str = "out", after: int = 0) -> str:
        """The first line (from index ``after`` on) containing ``needle``; fails after ``timeout``."""
        lines = self.out if stream == "out" else self.err
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in lines[after:]:
                if needle in line:
                    return line
            if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                break
            time.sleep(0.05)
        raise AssertionError(f"no {needle!r} in {stream}:\n" + "\n".join(lines[-30:]) + "\n--- stderr:\n"
                             + "\n".join(self.err[-30:]))

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=5)
        return code

    @property
    def stdout(self) -> str:
        return "\n".join(self.out)

    @property
    def stderr(self) -> str:
        return "\n".join(self.err)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)


@pytest.fixture
def loggend():
    """Start loggend processes; every one's process group is killed in teardown."""
    started: list[Loggend] = []

    def start(*args: str, env: dict[str, str | None] | None = None) -> Loggend:
        p = Loggend(*args, env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.proc.poll() is None:
            p.kill()


@pytest.fixture
def receivers():
    """Factory of loopback receivers, all closed in teardown."""
    made: list[LoopbackReceiver] = []

    def make(count: int) -> list[LoopbackReceiver]:
        new = [LoopbackReceiver() for _ in range(count)]
        made.extend(new)
        return new

    yield make
    for r in made:
        r.close()


def write_config(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def stream_of(datagram: bytes) -> str:
    return datagram.rsplit(b" stream=", 1)[1].split(b" ", 1)[0].decode()


def pytest_collection_modifyitems(config, items) -> None:
    """Every integration test runs real processes on real loopback sockets: mark it ``network``."""
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.network)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something true (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# Property tests (hypothesis): a few hundred examples each in `make test`; `make fuzz` sets
# HYPOTHESIS_PROFILE=fuzz for thousands. No deadline: a loaded 2-core box is slow, not wrong.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("ci", max_examples=200, deadline=None)
_hypothesis_settings.register_profile("fuzz", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")), deadline=None)
_hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
