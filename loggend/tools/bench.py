"""``loggend bench``: each transport on one pinned core, against the machine's own ceiling.

For every sender (the C reference ``udp_gso_blast`` when the yardstick is available, then
loggend's gso, sendmmsg and sendto workers with realistic content and sequence numbers on) it
measures, with the sender on one CPU and the receiver on another:

* delivered events/s into a counting receiver (the yardstick's C ``udp_sink`` when available,
  otherwise loggend's own recvmmsg receiver, which may then be the bottleneck);
* events/s the kernel accepted into a receive queue that is never read;
* delivered MB/s and the sender's CPU microseconds per event.

Rounds are interleaved (every sender once per round) and the median of the rounds is printed,
with the ratio of loggend's figure to the C sender's figure *of the same round*: these machines
are shared and noisy, so only ratios measured together mean anything. These are figures, not a
test: nothing here passes or fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from loggend.control.children import fork_child
from loggend.engine.counters import CounterBlock
from loggend.engine.render import Corpus, Pool
from loggend.engine.replay import ReplaySpec
from loggend.engine.spec import MessageSpec
from loggend.engine.transport import GSO_FRAMES_PER_CALL
from loggend.report.totals import sink_lost
from loggend.tools.bench_sources import mix_corpus, mix_pool, mix_row_name, mix_spec, render_table
from loggend.tools.bench_workers import RATES, SHAPES, WorkerFigure, measure_workers, print_worker_table
from loggend.tools.benchkit import (
    RECEIVER_CPU,
    SENDER_CPU,
    Figure,
    cpu_seconds,
    free_port,
    loggend_send,
    pin,
    pinned,
    result,
    sample_access_log,
    sample_templates,
    silent,
)

SETTLE_SECONDS = 0.3          # receiver bound before the sender starts
SINK_GRACE = 60.0             # a receiver waits this long beyond the sending time for the sender's set-up (it
                              # leaves a second after the last datagram): at 5 s a mix worker building its pool
                              # on a loaded box found the receiver gone, and every loggend row read 0
MODES = ("gso", "sendmmsg", "sendto")
C_SENDER = "C udp_gso_blast"
FRAMESEND = Path(__file__).with_name("framesend.c")   # the C sender of a pool's own frames


# --- receivers --------------------------------------------------------------------------------------

class Yardstick:
    """The C reference tools, built in a temporary folder (shared/ is read-only)."""

    def __init__(self, source: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="loggend-yardstick-"))
        shutil.copytree(source, self.dir, dirs_exist_ok=True)
        for f in self.dir.iterdir():
            f.chmod(0o644)
        subprocess.run(["make", "-s", "-C", str(self.dir)], check=True, capture_output=True)
        self.frames_name, self.frames_args = "", list[str]()

    def sink(self, port: int, seconds: float, never_read: bool) -> subprocess.Popen[str]:
        args = [str(self.dir / "udp_sink"), "-p", str(port), "-d", str(seconds + SINK_GRACE), "-i", "1"]
        return pinned(args + (["-B"] if never_read else []), RECEIVER_CPU)

    def build_frames(self, pool: Pool) -> str:
        """The bench's C sender (``framesend.c``) with ``pool``'s own frames written beside it: it sends
        exactly the pool's datagrams, as many frames a ``sendmmsg`` as a gso worker, with no per-message
        work, so the mix's row has a ceiling of its own. Returns why not ("" when built)."""
        with open(self.dir / "frames.pool", "wb") as f:
            f.write(struct.pack("=I", pool.frames))
            f.write(b"".join(struct.pack("=II", n, length) for n, length in zip(pool.counts, pool.lengths)))
            view = memoryview(pool.buf)                 # frames in sending order (a datagram pool's
            for start, count, length in zip(pool.starts, pool.counts, pool.lengths):   # buffer is by layout)
                f.write(view[start:start + count * length])
        done = subprocess.run([os.environ.get("CC", "cc"), "-O2", "-o", str(self.dir / "framesend"),
                               str(FRAMESEND)], capture_output=True, text=True)
        self.frames_args = ["-f", str(self.dir / "frames.pool"), "-b", str(GSO_FRAMES_PER_CALL)]
        self.frames_name = (f"C framesend, the mix's own frames ({round(len(pool.buf) / pool.size)} B, "
                            f"{round(pool.size / pool.frames)} a frame, {GSO_FRAMES_PER_CALL} frames a call)")
        return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["cc failed"])[-1]

    def blast(self, port: int, seconds: float, frames: bool = False) -> Figure:
        args = ["framesend", *self.frames_args] if frames else ["udp_gso_blast", "-c"]
        out = subprocess.run([str(self.dir / args[0]), *args[1:], "-p", str(port), "-d", str(seconds)],
                             capture_output=True, text=True, preexec_fn=lambda: pin(SENDER_CPU)).stdout
        r = result(out)
        return Figure(sent=int(r["sent"]), seconds=float(r["secs"]), cpu=float(r["utime"]) + float(r["stime"]),
                      user=float(r["utime"]))

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _python_sink(port: int, seconds: float, never_read: bool) -> subprocess.Popen[str]:
    """loggend's own receiver, count only, in a pinned child process."""
    code = (
        "import select, time\n"
        "from loggend.sink.accounting import Accounting\n"
        "from loggend.sink.receiver import Receiver, open_sockets\n"
        f"(s,) = open_sockets('127.0.0.1', ({port},), reuseport=False, gro=False)\n"
        "r, acc = Receiver(), Accounting(); print('READY', flush=True)\n"
        f"end = time.monotonic() + {seconds + SINK_GRACE}; first = last = 0.0\n"
        f"if {never_read}:\n    time.sleep({seconds + SINK_GRACE}); end = 0\n"
        "while time.monotonic() < end:\n"
        "    before = acc.received\n"
        "    if select.select([s], [], [], 0.1)[0]:\n        r.drain(s.fileno(), acc, 1 << 30)\n"
        "    got = acc.received - before; t = time.monotonic()\n"
        "    if got:\n"
        "        first = first or t; last = t\n"
        "    elif acc.received and t - last > 1: break\n"
        "print(f'RESULT recv={acc.received} bytes={acc.octets} span={last - first:.4f}', flush=True)\n"
    )
    return pinned([sys.executable, "-c", code], RECEIVER_CPU)


# --- loggend senders --------------------------------------------------------------------------------

# --- loggend's own sink --------------------------------------------------------------------------------

SINK_MODES = {"loggend sink (UDP_GRO trains)": True, "loggend sink (one datagram per receive)": False}
DRAIN_SECONDS = 0.5


@dataclass
class SinkFigure:
    received: int
    lost: int
    kernel_drops: int
    seconds: float
    cpu: float


def sink_measure(gro: bool, port: int, seconds: float) -> SinkFigure:
    """loggend's gso sender (unpaced, SENDER_CPU) into one loggend sink process on RECEIVER_CPU."""
    from loggend.engine import counters as C
    from loggend.sink.sinkspec import SinkSpec
    from loggend.sink.sinkworker import SinkWorker
    block = CounterBlock(1)
    worker = SinkWorker(SinkSpec("127.0.0.1", (port,), gro=gro), block.slot(0), RECEIVER_CPU, log=silent)

    def body() -> int:
        worker.init_process()
        return worker.run()

    pid = fork_child(body)
    while block.values(0)[C.SINK_STATE] != C.STATE_RUNNING:
        time.sleep(0.01)
    cpu0 = cpu_seconds(pid)
    fig = loggend_send("gso", port, seconds)
    time.sleep(DRAIN_SECONDS)
    cpu = cpu_seconds(pid) - cpu0
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    v = block.values(0)
    return SinkFigure(received=v[C.SINK_RECEIVED], lost=sink_lost(v),
                      kernel_drops=v[C.SINK_KERNEL_DROPS],
                      seconds=fig.seconds, cpu=cpu)


def print_sink_table(figures: dict[str, list[SinkFigure]]) -> None:
    print()
    print("| receiver (sender: loggend gso, unpaced) | received ev/s | lost by sequence | kernel drops "
          "| CPU us/event |")
    print("|---|---:|---:|---:|---:|")
    for name, figs in figures.items():
        eps = statistics.median(f.received / f.seconds for f in figs if f.seconds)
        lost = statistics.median(f.lost for f in figs)
        drops = statistics.median(f.kernel_drops for f in figs)
        cpu = statistics.median(f.cpu / f.received * 1e6 for f in figs if f.received)
        print(f"| {name} | {eps:,.0f} | {lost:,.0f} | {drops:,.0f} | {cpu:.2f} |")


# --- the table ----------------------------------------------------------------------------------------

def measure(sender: str, port: int, seconds: float, never_read: bool, yardstick: Yardstick | None,
            messages: MessageSpec | None = None, corpus: Corpus | None = None) -> Figure:
    sink = yardstick.sink(port, seconds, never_read) if yardstick else _python_sink(port, seconds, never_read)
    time.sleep(SETTLE_SECONDS)
    try:
        if sender == C_SENDER and yardstick:
            fig = yardstick.blast(port, seconds)
        elif yardstick and sender == yardstick.frames_name:
            fig = yardstick.blast(port, seconds, frames=True)
        else:
            fig = loggend_send("gso" if messages else sender.split()[-1], port, seconds, messages, corpus)
        if never_read:
            sink.send_signal(signal.SIGTERM)
        out, _ = sink.communicate(timeout=seconds + 15)
    finally:
        if sink.poll() is None:
            sink.send_signal(signal.SIGTERM)
            sink.wait()
    r = result(out)
    fig.received, fig.received_bytes = int(r.get("recv", 0)), int(r.get("bytes", 0))
    return fig


TABLES = ("senders", "sink", "workers", "streams", "render")


def run_bench(seconds: float, repeats: int, yardstick: str = "", tables: tuple[str, ...] = TABLES,
              worker_seconds: float = 6.0, worker_repeats: int = 1) -> int:
    ys: Yardstick | None = None
    if yardstick and Path(yardstick, "Makefile").exists():
        try:
            ys = Yardstick(yardstick)
        except (OSError, subprocess.CalledProcessError) as err:
            print(f"bench: yardstick not built ({err}); comparing against nothing", file=sys.stderr)
    receiver = "yardstick C udp_sink (recvmmsg)" if ys else "loggend's Python recvmmsg receiver"
    print(f"loggend bench: {seconds:g} s per figure, median of {repeats}, sender on cpu{SENDER_CPU}, "
          f"receiver on cpu{RECEIVER_CPU} ({receiver}); {os.cpu_count()} CPUs, kernel {os.uname().release}")
    if "workers" in tables:
        print(f"worker table: {worker_seconds:g} s of steady sending per figure, median of {worker_repeats}, "
              f"the whole supervisor with its default CPU pinning")
    try:
        if "senders" in tables:
            sender_table(seconds, repeats, ys)
        if "sink" in tables:
            sink_table(seconds, repeats)
        if "workers" in tables:
            worker_table(worker_seconds, worker_repeats, ys)
        if "streams" in tables:
            from loggend.tools.bench_streams import stream_table
            stream_table(seconds, repeats)
        if "render" in tables:
            render_table(repeats)
    finally:
        if ys:
            ys.close()
    return 0


TEMPLATES_ROW, REPLAY_ROW = "loggend gso, 20 user templates", "loggend gso, replay of an nginx log"


def sender_table(seconds: float, repeats: int, ys: Yardstick | None) -> None:
    mix_row = mix_row_name()
    senders = ([C_SENDER] if ys else []) + [f"loggend {m}" for m in MODES] + [TEMPLATES_ROW, REPLAY_ROW, mix_row]
    scratch = tempfile.mkdtemp(prefix="loggend-bench-")
    content = {TEMPLATES_ROW: MessageSpec(templates=sample_templates(20), catalogue=False),
               REPLAY_ROW: MessageSpec(replay=ReplaySpec(sample_access_log(f"{scratch}/access.log"))),
               mix_row: mix_spec()}
    corpora = {mix_row: mix_corpus()}
    if ys:
        why = ys.build_frames(mix_pool(corpora[mix_row]))
        if why:
            print(f"bench: no C row of the mix's own frames ({why})", file=sys.stderr)
        else:
            senders.insert(1, ys.frames_name)
    delivered: dict[str, list[Figure]] = {s: [] for s in senders}
    queued: dict[str, list[Figure]] = {s: [] for s in senders}
    port = free_port()
    try:
        # the mix next to the C rows it is compared with, and every other round backwards: the box's
        # drift over a round (two minutes) falls alike on both sides of a ratio
        ceilings = [s for s in senders if s == C_SENDER or (ys is not None and s == ys.frames_name)]
        order = ceilings + [mix_row] + [s for s in senders if s not in ceilings and s != mix_row]
        for round_no in range(repeats):
            for s in order if round_no % 2 == 0 else order[::-1]:
                delivered[s].append(measure(s, port, seconds, False, ys, content.get(s), corpora.get(s)))
                queued[s].append(measure(s, port, seconds, True, ys, content.get(s), corpora.get(s)))
            print(f"  senders: round {round_no + 1}/{repeats} done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print("| sender | delivered ev/s | never-read ev/s | delivered MB/s | CPU us/event | of it user | "
          "delivered vs C GSO |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in senders:
        d, q = delivered[s], queued[s]
        dev = statistics.median(f.received / f.seconds for f in d)
        qev = statistics.median(f.eps for f in q)
        mbs = statistics.median(f.received_bytes / f.seconds / 1e6 for f in d)
        cpu_us = statistics.median(f.cpu / f.sent * 1e6 for f in d + q if f.sent)
        user_us = statistics.median(f.user / f.sent * 1e6 for f in d + q if f.sent)
        if ys:
            ratio = statistics.median(f.received / c.received for f, c in zip(d, delivered[C_SENDER]) if c.received)
            ratio_text = f"{ratio:.2f}x"
        else:
            ratio_text = "-"
        print(f"| {s} | {dev:,.0f} | {qev:,.0f} | {mbs:,.1f} | {cpu_us:.2f} | {user_us:.3f} | {ratio_text} |")
    if ys and ys.frames_name:
        ratio = statistics.median(f.received / c.received
                                  for f, c in zip(delivered[mix_row], delivered[ys.frames_name]) if c.received)
        print(f"\nthe mix against the C sender of its own frames (same rounds): {ratio:.2f}x")


def sink_table(seconds: float, repeats: int) -> None:
    sinks: dict[str, list[SinkFigure]] = {name: [] for name in SINK_MODES}
    port = free_port()
    for round_no in range(repeats):
        for name, gro in SINK_MODES.items():
            sinks[name].append(sink_measure(gro, port, seconds))
        print(f"  sink: round {round_no + 1}/{repeats} done", file=sys.stderr, flush=True)
    print_sink_table(sinks)


def worker_table(seconds: float, repeats: int, ys: Yardstick | None) -> None:
    """The whole supervisor at 200k and 1M ev/s with 1, 2, 8 and 40 workers, and 40 in a process
    each (see bench_workers)."""
    figures: dict[tuple[int, int, int], list[WorkerFigure]] = {}
    for round_no in range(repeats):
        for rate in RATES:
            for workers, processes in SHAPES:
                port = free_port()
                sink = ys.sink(port, seconds + 30, False) if ys else _python_sink(port, seconds + 30, False)
                figures.setdefault((rate, workers, processes), []).append(
                    measure_workers(rate, workers, processes, port, seconds, sink))
        print(f"  workers: round {round_no + 1}/{repeats} done", file=sys.stderr, flush=True)
    print_worker_table(figures)
