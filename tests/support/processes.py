"""The loggend command line as the tests run it, a loopback receiver, and waits on a condition."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from loggend.engine.syscalls import SO_RCVBUFFORCE

ROOT = Path(__file__).resolve().parent.parent.parent
RCVBUF = 64 << 20
# "loggend run" without the machine's /etc/loggen.yaml, with one worker unless a test asks for more,
# and no web process unless a test asks for one.
# A pool of 1,000 messages a worker unless a test gives its own --pool-size (the last flag wins): the
# default (100,000 for one worker) costs a run about 9 s of CPU to render, 10,000 about 0.8 s, 1,000
# about 0.3 s (the corpus is rendered in chunks of 4,096); the suite starts some 300 runs.
RUN = ("run", "--config", "/dev/null", "--workers", "1", "--dashboard", "off", "--pool-size", "1000")
# The tests read the live line through a pipe, where it would come every 10 s: ask for one a second
# (through the environment, as an operator could; a test of the default removes it).
# Pools of 1,000 unless a test asks for another (a flag beats the variable): a run's 100,000-message
# corpus takes several seconds of CPU to render, and most tests send a few thousand messages.
TEST_ENV = {"LOGGEN_LIVE_INTERVAL": "1s", "LOGGEN_MESSAGES_POOL_SIZE": "1000"}


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


def write_config(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def stream_of(datagram: bytes) -> str:
    return datagram.rsplit(b" stream=", 1)[1].split(b" ", 1)[0].decode()


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


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of asking."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children_named(pid: int, prefix: str) -> list[int]:
    """The direct children of ``pid`` whose process name starts with ``prefix``."""
    out = []
    for k in worker_pids(pid):
        try:
            with open(f"/proc/{k}/comm") as f:
                if f.read().startswith(prefix):
                    out.append(k)
        except FileNotFoundError:
            pass
    return out


def start_sink(loggend, port: int, *extra: str) -> tuple[Loggend, int]:
    """``loggend sink`` with one process on 127.0.0.1:``port`` (0: a port it picks), once it is READY:
    (the command, the port it listens on)."""
    proc = loggend("sink", "--listen", f"127.0.0.1:{port}", "--processes", "1", *extra)
    ready = proc.wait_line("READY listening on")
    return proc, int(re.search(r":(\d+) \(", ready).group(1))


def msg(stream: str, seq: int, body: str = "x") -> bytes:
    """A syslog line carrying ``stream`` and ``seq`` as loggend writes them."""
    return b"<13>Nov 28 10:00:00 h t: %s stream=%s seq=%012d" % (body.encode(), stream.encode(), seq)


def run_config(tmp_path: Path, receivers, **keys) -> str:
    """A loggen.yaml in ``tmp_path`` sending to the ``receivers``' ports, no dashboard, a 1,000-line pool,
    and ``keys``; its path."""
    ports = ",".join(str(r.port) for r in receivers)
    body = {"target": "127.0.0.1", "ports": f'"{ports}"', "dashboard": "off", "messages": "\n  pool_size: 1000",
            **keys}
    return write_config(tmp_path / "loggen.yaml", "".join(f"{k}: {v}\n" for k, v in body.items()))


def summary_of(path: Path) -> dict:
    """The --summary-json document a run wrote to ``path``."""
    return json.loads(Path(path).read_text())


def assert_sent_as_due(doc: dict, planned: int) -> None:
    """A timed run's summary ``doc`` planned ``planned`` events and sent them all but what it says it gave
    up or the kernel refused. A worker more than a second behind gives up the older debt (a starved CI box
    does that to a process now and then) and the summary counts it as forgiven; nothing else may be short."""
    refused = sum(doc["refused_by_port"].values())
    assert doc["planned"] == planned and doc["sent"] == planned - doc["forgiven"] - refused, doc
    assert doc["forgiven"] <= planned // 4, doc            # a stall, not a worker that never kept up
