"""What every ``loggend bench`` table shares: pinned processes, RESULT lines, one unpaced worker."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
from dataclasses import dataclass

from loggend.control.children import fork_child
from loggend.engine.counters import CounterBlock
from loggend.engine.group import WorkerGroup
from loggend.engine.render import Corpus
from loggend.engine.schedule import Plan, PlanSource, Profile
from loggend.engine.spec import MessageSpec, WorkerSpec
from loggend.engine.tokens import UserTemplate, parse_message
from loggend.engine.worker import Worker

SENDER_CPU = 0
RECEIVER_CPU = 1


@dataclass
class Figure:
    sent: int                 # accepted by the kernel
    seconds: float            # sending time
    cpu: float                # sender CPU seconds while sending
    received: int = 0         # counted by the receiver (0 in never-read mode)
    received_bytes: int = 0
    sent_bytes: int = 0
    user: float = 0.0         # of ``cpu``, the sender's own code (its Python, or the C loop); the rest is the kernel's

    @property
    def eps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def pin(cpu: int) -> None:
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass        # fewer CPUs than we asked for: measure anyway, unpinned


def pinned(args: list[str], cpu: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: pin(cpu))
    assert proc.stdout is not None
    proc.stdout.readline()                                    # READY
    return proc


def result(text: str) -> dict[str, str]:
    line = next((ln for ln in text.splitlines() if ln.startswith("RESULT")), "")
    return dict(kv.split("=", 1) for kv in line.split()[1:])


def silent(line: str, level: int = 0) -> None:
    """A log that says nothing (benchmarks print their own figures)."""


def run_worker(spec: WorkerSpec, seconds: float, corpus: Corpus | None = None) -> Figure:
    """One loggend worker, unlimited rate, in a forked child pinned to its spec's CPU (its pool a
    window of ``corpus`` when given: a mix of sources is rendered before the worker starts)."""
    block = CounterBlock(1)
    plan = PlanSource(Plan(Profile.constant(0), 1))
    worker = Worker(spec, block.slot(0), plan, log=silent, corpus=corpus)
    read_end, write_end = os.pipe()

    group = WorkerGroup.alone(worker)

    def body() -> int:
        os.close(read_end)
        group.init_process()
        worker.setup()
        plan.plan = plan.plan.start(time.monotonic_ns(), seconds)        # the clock starts once set up
        group.take_slots()
        times0, t0 = os.times(), time.monotonic()
        group.loop()
        times, wall = os.times(), time.monotonic() - t0
        user, system = times.user - times0.user, times.system - times0.system
        os.write(write_end, json.dumps({"cpu": user + system, "user": user, "wall": wall}).encode())
        return 0

    pid = fork_child(body)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        measured = json.loads(f.read() or '{"cpu": 0, "user": 0, "wall": 0}')
    os.waitpid(pid, 0)
    snap = block.snapshot(0)
    return Figure(sent=snap.sent, seconds=measured["wall"], cpu=measured["cpu"], sent_bytes=snap.bytes,
                  user=measured["user"])


def loggend_send(mode: str, port: int, seconds: float, messages: MessageSpec | None = None,
                 corpus: Corpus | None = None) -> Figure:
    """One UDP worker sending with ``mode`` (gso, sendmmsg, sendto), unpaced, on SENDER_CPU."""
    return run_worker(WorkerSpec(host="127.0.0.1", port=port, transport=mode, cpu=SENDER_CPU,
                                 messages=messages or MessageSpec()), seconds, corpus)


def sample_templates(count: int = 20) -> tuple[UserTemplate, ...]:
    """``count`` templates of a made-up application, every token kind among them."""
    kinds = ("user={user} src={ipv4:10.20.0.0/16} port={int:1024-65535}", "session={sid=hex:16} again={sid}",
             "amount={float:1-500/2} currency={choice:EUR*5|USD*3|GBP}", "id={uuid} mac={mac}",
             "at={timestamp:%Y-%m-%d %H:%M:%S} epoch={timestamp:epoch}", "v6={ipv6} word={word} host={host}")
    return tuple(UserTemplate(f"event{i}", parse_message(f"shop event {i}: {kinds[i % len(kinds)]} "
                                                         f"{kinds[(i + 1) % len(kinds)]} n={{seq}}"),
                              weight=1 + i % 5, program="shopd") for i in range(count))


def sample_access_log(path: str, lines: int = 100_000) -> str:
    """An nginx access log of ``lines`` lines over an hour, for the replay row."""
    rng = random.Random(5)
    with open(path, "w", encoding="ascii") as f:
        for i in range(lines):
            s = i * 3600 // lines
            f.write(f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)} - - "
                    f"[29/Nov/2026:{s // 3600 + 6:02d}:{s // 60 % 60:02d}:{s % 60:02d} +0000] "
                    f"\"GET /api/v1/items/{rng.randrange(99999)} HTTP/1.1\" {rng.choice((200, 200, 304, 404))} "
                    f"{rng.randrange(20000)} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" rt=0.{rng.randrange(999):03d}\n")
    return path


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port
