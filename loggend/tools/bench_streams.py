"""The TCP/TLS table of ``make bench``: loggend's stream senders against the machine's ceilings.

Sender on SENDER_CPU, receiver on RECEIVER_CPU, one connection, unpaced, ``seconds`` each,
rounds interleaved and the median printed with ratios *of the same round*. TCP rows go into a
receiver that lets the kernel drop the bytes (``MSG_TRUNC``), so the sender is measured, not a
Python reader; their lines are the bytes over 150 for the fixed-size senders, and loggend's own
count once the bytes received equal the bytes it sent. TLS rows must be decrypted: their
receiver counts line feeds.

* **TCP ceiling**: a static 4 MiB buffer of 150-byte lines in a ``sendall`` loop
  (``loggend.tools.ceiling``).
* **loggend tcp**: one worker with realistic content (186 bytes a message on average), real
  timestamps and sequence numbers (LF framing; octet counting costs the sender nothing more:
  its prefixes are pre-rendered).
* **syslog-ng loggen --stream** (150-byte messages), when an unpacked or installed syslog-ng is
  found (``LOGGEN_SYSLOG_NG_ROOT``, ``.cache/syslog-ng`` of the source tree, or ``loggen`` on
  PATH).
* **TLS ceiling** and **loggend tls**: the same over Python's ``ssl`` (a throw-away certificate).
* **loggend sink**: fed by loggend tcp (octet counting), its own CPU per received line, i.e. the
  lines per second one core of sink receives.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from loggend.control.children import fork_child
from loggend.control.pki import Pki, PkiError, make_pki
from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.engine.spec import MessageSpec, TlsSpec, WorkerSpec
from loggend.sink.sinkspec import SinkSpec
from loggend.sink.sinkworker import SinkWorker
from loggend.tools.benchkit import (
    RECEIVER_CPU,
    SENDER_CPU,
    Figure,
    cpu_seconds,
    free_port,
    pin,
    pinned,
    result,
    run_worker,
    silent,
)

TCP_CEILING, LOGGEND_TCP, SYSLOG_NG = "TCP ceiling: static 150-byte lines, sendall", "loggend tcp", \
    "syslog-ng loggen --stream -s 150"
TLS_CEILING, LOGGEND_TLS = "TLS ceiling: the same over Python ssl", "loggend tls"
CEILING = [sys.executable, "-m", "loggend.tools.ceiling"]
LOGGEN_SIZE = 150
DRAIN_SECONDS = 1.0


def counter(protocol: str, port: int, pki: Pki | None) -> subprocess.Popen[str]:
    if protocol == "tcp":
        return pinned([*CEILING, "discard", "tcp", str(port)], RECEIVER_CPU)
    tls = [str(pki.server_cert), str(pki.server_key)] if pki else []
    return pinned([*CEILING, "count", protocol, str(port), *tls], RECEIVER_CPU)


def counted(sink: subprocess.Popen[str], fig: Figure, timeout: float) -> Figure:
    """The receiver's figures into ``fig``: lines counted, or (discarding TCP) derived from bytes."""
    out, _ = sink.communicate(timeout=timeout)
    r = result(out)
    fig.received_bytes = int(r.get("bytes", 0))
    if "lines" in r and int(r["lines"]):
        fig.received = int(r["lines"])
    elif fig.sent_bytes:                     # loggend: its own count, once every byte it sent arrived
        fig.received = fig.sent if fig.received_bytes == fig.sent_bytes else 0
    else:                                    # the fixed-size senders
        fig.received = fig.received_bytes // LOGGEN_SIZE
    return fig


def ceiling_send(protocol: str, port: int, seconds: float) -> Figure:
    out = subprocess.run([*CEILING, "send", protocol, str(port), str(seconds)], capture_output=True, text=True,
                         preexec_fn=lambda: pin(SENDER_CPU)).stdout
    r = result(out)
    return Figure(sent=int(r.get("lines", 0)), seconds=float(r.get("secs", 0)), cpu=float(r.get("cpu", 0)))


def _per_cpu(figs: list[Figure]) -> str:
    rates = [f.received / f.cpu for f in figs if f.cpu and f.received]
    return f"{statistics.median(rates):,.0f}" if rates else "-"


def loggend_stream(protocol: str, port: int, seconds: float, framing: str = "lf") -> Figure:
    return run_worker(WorkerSpec(host="127.0.0.1", port=port, cpu=SENDER_CPU, protocol=protocol,
                                 tls=TlsSpec(verify=False),
                                 messages=MessageSpec(framing=framing)), seconds)


def find_loggen() -> tuple[str, dict[str, str]] | None:
    """syslog-ng's loggen and the environment it needs, or None."""
    roots = [os.environ.get("LOGGEN_SYSLOG_NG_ROOT", ""), str(Path(__file__).resolve().parents[2] / ".cache/syslog-ng")]
    for root in filter(None, roots):
        binary = Path(root, "usr/bin/loggen")
        if os.access(binary, os.X_OK):
            libs = ":".join(str(Path(root, d)) for d in ("usr/lib/syslog-ng", "usr/lib/x86_64-linux-gnu",
                                                          "lib/x86_64-linux-gnu"))
            return str(binary), dict(os.environ, LD_LIBRARY_PATH=libs, SYSLOGNG_PREFIX=str(Path(root, "usr")))
    found = shutil.which("loggen")
    return (found, dict(os.environ)) if found else None


def loggen_send(loggen: tuple[str, dict[str, str]], port: int, seconds: float) -> Figure:
    binary, env = loggen
    args = [binary, "-i", "-S", "-s", str(LOGGEN_SIZE), "-r", "100000000", "-I", str(int(seconds)), "-Q",
            "127.0.0.1", str(port)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: pin(SENDER_CPU))
    t0 = time.monotonic()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return Figure(sent=0, seconds=time.monotonic() - t0, cpu=usage.ru_utime + usage.ru_stime)


def sink_measure(port: int, seconds: float) -> tuple[int, float, float]:
    """loggend tcp (octet counting, unpaced) into one loggend sink process: (lines, seconds, sink CPU)."""
    block = CounterBlock(1)
    worker = SinkWorker(SinkSpec("127.0.0.1", (port,), "tcp"), block.slot(0), RECEIVER_CPU, log=silent)

    def body() -> int:
        worker.init_process()
        return worker.run()

    pid = fork_child(body)
    while block.values(0)[C.SINK_STATE] != C.STATE_RUNNING:
        time.sleep(0.01)
    cpu0 = cpu_seconds(pid)
    fig = loggend_stream("tcp", port, seconds, framing="octet-counting")
    time.sleep(DRAIN_SECONDS)
    cpu = cpu_seconds(pid) - cpu0
    os.kill(pid, 15)
    os.waitpid(pid, 0)
    return block.values(0)[C.SINK_RECEIVED], fig.seconds, cpu


def stream_table(seconds: float, repeats: int) -> None:
    pki: Pki | None = None
    scratch = tempfile.mkdtemp(prefix="loggend-bench-pki-")
    try:
        pki = make_pki(scratch)
    except PkiError as err:
        print(f"  streams: no TLS rows ({err})", file=sys.stderr)
    loggen = find_loggen()
    rows: dict[str, tuple[str, Callable[[int], Figure]]] = {
        TCP_CEILING: ("tcp", lambda port: ceiling_send("tcp", port, seconds)),
        LOGGEND_TCP: ("tcp", lambda port: loggend_stream("tcp", port, seconds)),
    }
    if loggen:
        rows[SYSLOG_NG] = ("tcp", lambda port: loggen_send(loggen, port, seconds))
    if pki:
        rows[TLS_CEILING] = ("tls", lambda port: ceiling_send("tls", port, seconds))
        rows[LOGGEND_TLS] = ("tls", lambda port: loggend_stream("tls", port, seconds))
    figures: dict[str, list[Figure]] = {name: [] for name in rows}
    sinks: list[tuple[int, float, float]] = []
    try:
        for round_no in range(repeats):
            for name, (protocol, send) in rows.items():
                port = free_port(kind=1)
                sink = counter(protocol, port, pki)
                figures[name].append(counted(sink, send(port), seconds + 15))
            sinks.append(sink_measure(free_port(kind=1), seconds))
            print(f"  streams: round {round_no + 1}/{repeats} done", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_stream_table(figures, sinks, loggen is not None)


def _ratio(figures: dict[str, list[Figure]], a: str, b: str) -> str:
    if a not in figures or b not in figures:
        return ""
    pairs = [(x.received / x.seconds) / (y.received / y.seconds) for x, y in zip(figures[a], figures[b])
             if x.seconds and y.seconds and y.received]
    return f"{statistics.median(pairs):.2f}x {b.split(':')[0]}" if pairs else ""


def print_stream_table(figures: dict[str, list[Figure]], sinks: list[tuple[int, float, float]],
                       have_loggen: bool) -> None:
    print()
    print("| TCP / TLS sender (one connection, one core) | lines/s | MB/s | lines per sender CPU-second | ratio |")
    print("|---|---:|---:|---:|---:|")
    ratios = {LOGGEND_TCP: [_ratio(figures, LOGGEND_TCP, TCP_CEILING), _ratio(figures, LOGGEND_TCP, SYSLOG_NG)],
              LOGGEND_TLS: [_ratio(figures, LOGGEND_TLS, TLS_CEILING)]}
    for name, figs in figures.items():
        lps = statistics.median(f.received / f.seconds for f in figs if f.seconds) if figs else 0.0
        mbs = statistics.median(f.received_bytes / f.seconds / 1e6 for f in figs if f.seconds) if figs else 0.0
        ratio = ", ".join(r for r in ratios.get(name, []) if r)
        print(f"| {name} | {lps:,.0f} | {mbs:,.1f} | {_per_cpu(figs)} | {ratio} |")
    if not have_loggen:
        print("| syslog-ng loggen | not found (make test unpacks it into .cache/syslog-ng) | | | |")
    if sinks:
        per_core = statistics.median(n / cpu for n, _, cpu in sinks if cpu)
        rate = statistics.median(n / s for n, s, _ in sinks if s)
        print()
        print("| receiver | received lines/s | lines/s per core of sink CPU |")
        print("|---|---:|---:|")
        print(f"| loggend sink, tcp octet-counting (fed by loggend tcp) | {rate:,.0f} | {per_core:,.0f} |")
