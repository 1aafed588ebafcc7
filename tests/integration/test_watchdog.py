"""The systemd watchdog is fed through a reload that hands 40 worker processes over.

The test binds the unix datagram socket systemd would (``NOTIFY_SOCKET``) and asks for a
watchdog of 2 s (``WATCHDOG_USEC=2000000``): loggend must say ``WATCHDOG=1`` at least every
second, before, during and after a reload whose new workers (another port and another format:
every worker is replaced and a new corpus of 40 pools is rendered, seconds of work) set up while
the old ones go on sending. A gap is judged without the time the kernel kept the loop waiting for a
CPU or inside fork (a starved box is not a loop that blocks; all are printed, with where the loop
slept): a loop that sleeps, reads or waits for a child in a turn is still caught. The run is bounded
(--duration), sends at a low rate to loopback receivers on free high ports of 127.0.0.1, and is
killed in teardown.
"""

from __future__ import annotations

import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.processes import wait_until, worker_pids, write_config

WORKERS = 40
MAX_GAP = 1.0           # half of WATCHDOG_USEC: what systemd asks a service to keep to
SAMPLE_SECONDS = 0.02   # how often the supervisor's run-queue wait is read
# Where fork(2) waits uninterruptibly for the kernel (copying the parent's mappings: its locks are shared
# with the old workers exiting and with page reclaim); a preview's busy box held a fork there 0.9 s.
FORK_WAITS = {"dup_mmap", "anon_vma_clone", "anon_vma_fork", "copy_process", "copy_page_range", "dup_mm"}


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)       # Linux; its control message has the same number
TIMESPEC = struct.Struct("@qq")


class NotifySocket:
    """What systemd's notify socket receives, each message with the time it was sent: the kernel
    stamps it as the sender queues it (SO_TIMESTAMPNS, CLOCK_REALTIME), so a busy machine that is
    slow to run this thread does not make pings look late."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(TIMESPEC.size))
            except TimeoutError:
                continue
            stamps = [TIMESPEC.unpack(d[:TIMESPEC.size]) for level, kind, d in ancillary
                      if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS]
            assert stamps, "no kernel timestamp on the notify socket"
            self.messages.append((stamps[0][0] + stamps[0][1] / 1e9, data))

    def first(self, prefix: bytes, after: float = 0.0) -> float | None:
        return next((t for t, m in list(self.messages) if t >= after and m.startswith(prefix)), None)

    def pings(self) -> list[float]:
        return [t for t, m in list(self.messages) if m == b"WATCHDOG=1"]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


SAMPLER = r"""
import os, sys, time
pid, period = sys.argv[1], float(sys.argv[2])
try:
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))   # read on time however busy the box is
except (OSError, AttributeError):
    pass
with open(sys.argv[3], "w") as out:
    while True:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                ran, waited = f.read().split()[:2]
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/wchan") as f:
                wchan = f.read().strip() or "-"
        except (OSError, ValueError, IndexError):
            break
        out.write(f"{time.time()} {ran} {waited} {state} {wchan}\n")
        out.flush()
        time.sleep(period)
"""


class RunQueueWait:
    """How long the kernel kept a process (its main thread: the supervisor's loop) waiting for a CPU,
    read from /proc/PID/schedstat every ``SAMPLE_SECONDS`` with the wall-clock time of the reading, with
    what the loop was doing at each reading (running, or sleeping in which kernel function). A ping late
    because the box was too busy to run the loop is not the loop blocking: the test takes that wait out of
    a late gap, so only time the loop itself spent (working or blocked) counts. The sampler is a process
    of its own at a real-time priority where the box allows it: a starved sampler reads far apart, and the
    wait between two readings far apart cannot be placed."""

    def __init__(self, pid: int, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen([sys.executable, "-c", SAMPLER, str(pid), str(SAMPLE_SECONDS), str(path)])

    @property
    def samples(self) -> list[tuple[float, float, float, str, str]]:
        """(wall clock, seconds on a CPU, seconds waiting for one, state, where it sleeps) per reading."""
        out = []
        for line in self.path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 5:
                out.append((float(parts[0]), int(parts[1]) / 1e9, int(parts[2]) / 1e9, parts[3], parts[4]))
        return out

    def in_fork(self, a: float, b: float) -> float:
        """Seconds between ``a`` and ``b`` the process spent in fork's uninterruptible waits (state D
        in one of ``FORK_WAITS``): from each such reading to the next one, within the gap."""
        samples = [s for s in self.samples if a <= s[0] <= b]
        return sum(min(nxt[0], b) - s[0] for s, nxt in zip(samples, [*samples[1:], (b,)])
                   if s[3] == "D" and s[4] in FORK_WAITS)

    def over(self, a: float, b: float) -> tuple[float, float, str]:
        """(seconds on a CPU, seconds at least spent waiting for one, what it was doing) between ``a`` and
        ``b``: read from the last reading at or before ``a`` to the first at or after ``b``, and of that
        window's wait only what cannot have fallen outside the gap."""
        samples = self.samples
        if not samples:
            return 0.0, 0.0, "no readings"
        before = [s for s in samples if s[0] <= a] or samples[:1]
        after = [s for s in samples if s[0] >= b] or samples[-1:]
        (t0, ran0, waited0, _, _), (t1, ran1, waited1, _, _) = before[-1], after[0]
        outside = max(0.0, (t1 - t0) - (b - a))
        seen = Counter(f"{s[3]}:{s[4]}" for s in samples if a <= s[0] <= b)
        doing = ", ".join(f"{what} x{n}" for what, n in seen.most_common(4)) + f" (readings {t1 - t0:.2f} s apart)"
        return ran1 - ran0, max(0.0, waited1 - waited0 - outside), doing

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def run_config(tmp_path, port: int, form: str = "rfc3164") -> str:
    return write_config(tmp_path / "loggen.yaml", (
        f'target: 127.0.0.1\nports: "{port}"\nworkers: {WORKERS}\nworker_processes: {WORKERS}\n'
        f"rate: {WORKERS * 10}\nduration: 90s\ndashboard: off\nmemory_limit: 0\nformat: {form}\n"
        "messages:\n  pool_size: 1000\n"))


@pytest.mark.slow
@pytest.mark.serial
def test_a_ping_at_least_every_second_through_a_reload_that_hands_40_workers_over(tmp_path, receivers, loggend):
    before, after = receivers(2)
    notify = NotifySocket(str(tmp_path / "notify"))
    try:
        proc = loggend("run", "--config", run_config(tmp_path, before.port),
                       env={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000"})
        wait_until(lambda: notify.first(b"READY=1") is not None, timeout=120, what="READY=1")
        runq = RunQueueWait(proc.pid, tmp_path / "schedstat")
        old = set(worker_pids(proc.pid))
        assert len(old) == WORKERS
        run_config(tmp_path, after.port, "rfc5424")       # every worker is replaced, the corpus rendered again
        proc.signal(signal.SIGHUP)
        wait_until(lambda: notify.first(b"RELOADING=1") is not None, timeout=10, what="RELOADING=1")
        reloading = notify.first(b"RELOADING=1")
        assert reloading is not None
        wait_until(lambda: notify.first(b"READY=1", reloading) is not None, timeout=120,
                   what="READY=1 after the hand-over")
        ready = notify.first(b"READY=1", reloading)
        assert ready is not None
        wait_until(lambda: len(after.datagrams) > WORKERS, timeout=60, what="the new workers sending to the new port")
        assert re.match(rb"<\d{1,3}>1 ", after.datagrams[-1]), after.datagrams[-1][:40]   # RFC 5424 now
        new = set(worker_pids(proc.pid))
        assert len(new) == WORKERS and not new & old, proc.stderr      # every one handed over
        time.sleep(MAX_GAP)                               # a ping after the hand-over, too
        proc.signal(signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stderr
    finally:
        notify.close()
        if "runq" in locals():
            runq.close()
    pings = [t for t in notify.pings() if t <= ready + MAX_GAP]
    during = [t for t in pings if reloading <= t <= ready]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    print(f"hand-over of {WORKERS} worker processes: {ready - reloading:.2f} s, {len(during)} pings during it; "
          f"longest gap between pings {max(gaps):.3f} s over {len(pings)} pings")
    assert pings[0] <= notify.first(b"READY=1") + MAX_GAP        # fed from the start
    assert len(during) >= int(ready - reloading)                  # the loop turned all through the hand-over
    late = []
    for a, b in zip(pings, pings[1:]):
        if b - a > MAX_GAP:
            ran, waited, doing = runq.over(a, b)
            late.append((round(a - reloading, 2), round(b - a, 3), round(ran, 3), round(waited, 3),
                         round(runq.in_fork(a, b), 3), doing))
    print(f"gaps over {MAX_GAP} s (after RELOADING=1, gap, on a CPU, waiting for one, in fork's kernel waits, "
          f"state:wchan): {late}")
    blocked = [g for g in late if g[1] - g[3] - g[4] > MAX_GAP]      # late even without the box's waits
    assert not blocked, ("pings late (after RELOADING=1, gap, on a CPU, waiting for a CPU, in fork's kernel waits, "
                         f"state:wchan): {blocked}")
    assert "reload: " in proc.stderr
