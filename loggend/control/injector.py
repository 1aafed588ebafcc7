"""The injector: one small process that sends the run's attack scenarios at their times, beside the workers.

The workers' hot path is left alone: scenario messages are few (tens to thousands per instance), so
one process renders each when it is due (its stamps current at that second) and sends it to the
run's target over its own socket, numbered in its own stream (``STREAM``, with the run's fleet
prefix) from sequence number 0, so a sink proves them apart from the background.

Every message sent is one line of the *ground truth* (``--truth FILE``)::

    {"scenario": "ssh-bruteforce", "instance": "ssh-bruteforce-1", "stream": "scn", "seq": 0,
     "sent": 1796603273.418, "attacker": "203.0.113.77", "target": "bastion-0001", "log_source": "linux",
     "message": "<38>Dec  7 00:27:53 bastion-0001 sshd[..."}

written and flushed before the message goes out (a message in the truth may be lost on the way,
never the reverse). ``instances_of`` reads a truth file back into the per-instance summary the
run's summary and report list: first and last send times, messages, sequence numbers.

Instances come from the run's requests (``loggend.content.scenarios``: ``at`` and ``every`` from
the run's start) and from *inject now* requests (``loggend ctl inject``), one text line each
(``NAME KEY=VALUE...``) on ``commands`` (a pipe's read end); a bad one is logged and skipped.
Constructing an ``Injector`` does nothing to the process; ``run`` sends until ``until`` or until
``stop()`` (a flag a signal handler may set).
"""

from __future__ import annotations

import bisect
import errno
import io
import json
import math
import os
import select
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from loggend.content.scenarios import Background, Instance, Request, instances, message, parse_pairs
from loggend.content.scenarios import get as get_scenario
from loggend.control.detect import (
    DetectorProcess,
    Tally,
    Verdict,
    append_detection,
    first_detections,
    implausible,
    parse_time,
    verdicts,
)
from loggend.detectspec import DEFAULT_TIMEOUT, DetectSpec
from loggend.errors import UsageError
from loggend.parsers import plural

STREAM = "scn"                  # the injector's stream id (after the run's fleet prefix: "i2.scn")
IDLE_WAKE = 0.5                 # seconds between looks at the stop flag when nothing is due
PAUSE_LOOK = 0.1                # while the run is paused, look this often whether it resumed
BEHIND = 1.0                    # seconds behind its plan the injector says so (once per stretch behind)
PLAN_AHEAD = 30.0               # instances are planned (their messages rendered) this long before they start
CONNECT_TIMEOUT = 5.0           # a TCP target must accept within this
COMMAND_BYTES = 4096            # the longest inject-now command line read


@dataclass(frozen=True)
class Target:
    host: str                   # numeric address
    port: int
    protocol: str = "udp"       # udp | tcp
    framing: str = "octet-counting"     # tcp: octet-counting | lf


@dataclass
class Sent:
    """What an instance sent: the summary's entry."""

    id: str
    scenario: str
    source: str
    target: str
    stream: str
    first_seq: int
    last_seq: int
    first_sent: float
    last_sent: float
    messages: int = 1
    planned: int = 0            # the instance's messages in all (0: not known); fewer sent: the run ended first

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "scenario": self.scenario, "source": self.source, "target": self.target,
                "stream": self.stream, "first_seq": self.first_seq, "last_seq": self.last_seq,
                "first_sent": round(self.first_sent, 3), "last_sent": round(self.last_sent, 3),
                "messages": self.messages, "planned": self.planned or None}


@dataclass(order=True)
class _Due:
    at: float                                       # wall time
    order: int
    instance: Instance = field(compare=False)
    step: int = field(compare=False)
    since: float = field(compare=False, default=-math.inf)   # queued then: a pause delays it from then on only


class Injector:
    def __init__(self, requests: tuple[Request, ...], background: Background, target: Target, truth: io.TextIOBase,
                 start: float, until: float, stream: str = STREAM, utc: bool = False,
                 commands: int | None = None, clock: Callable[[], float] = time.time,
                 log: Callable[[str], None] = lambda line: None, paused: Callable[[], bool] = lambda: False) -> None:
        """``paused``: whether the run is paused now (``loggend ctl pause``): nothing is sent meanwhile and
        what was due is put off by as long as the pause lasted, as the background is."""
        self.requests, self.background, self.target, self.truth = requests, background, target, truth
        self.paused = paused
        self.start, self.until, self.stream, self.utc = start, until, stream, utc
        self.commands, self.clock, self.log = commands, clock, log
        self.seq = 0
        self.stopping = False
        self.queue: list[_Due] = []
        self.order = 0
        self.manual: dict[str, int] = {}            # scenario -> inject-now instances so far
        self.sock: socket.socket | None = None
        self.pending = b""                          # a partial command line
        self.planned = False
        self.done: set[tuple[str, int]] = set()     # (instance, step) already sent by an earlier life
        self.anchors: dict[str, tuple[int, float]] = {}   # instance -> (its last step sent, when), the same
        self.failed = ""                            # why nothing more is sent (the truth cannot be written)
        self.behind = False                         # said that it is BEHIND its plan (until it catches up)
        self.series: list[Iterator[Instance]] = []  # per request, its instances still to plan
        self.upcoming: list[Instance | None] = []   # per request, the next of them

    def stop(self) -> None:
        self.stopping = True

    # --- what is due -------------------------------------------------------------------------------

    def plan(self) -> None:
        """The run's requests as lazy series of instances (a run without an end repeats for ever). A
        scenario asked for by several requests numbers each request's own: ``ssh-bruteforce-r2-1``."""
        names = [r.scenario.name for r in self.requests]
        self.series = [self.named(instances(r, self.background, self.until - self.start),
                                  f"{r.scenario.name}-r{names[:k + 1].count(r.scenario.name)}"
                                  if names.count(r.scenario.name) > 1 else "")
                       for k, r in enumerate(self.requests)]
        self.upcoming = [next(series, None) for series in self.series]

    @staticmethod
    def named(series: Iterator[Instance], prefix: str) -> Iterator[Instance]:
        for n, inst in enumerate(series, 1):
            yield replace(inst, id=f"{prefix}-{n}") if prefix else inst

    def plan_ahead(self, now: float) -> float:
        """Queue the instances that start within ``PLAN_AHEAD`` of ``now`` (their steps at their wall times),
        but for the steps the truth already holds (a restarted injector goes on where it stopped); the
        wall time of the next one to plan (inf: none)."""
        for k, inst in enumerate(self.upcoming):
            while inst is not None and self.start + inst.start <= now + PLAN_AHEAD:
                self.add(inst, self.start + inst.start)
                inst = self.upcoming[k] = next(self.series[k], None)
        return min((self.start + i.start - PLAN_AHEAD for i in self.upcoming if i is not None), default=math.inf)

    def put_off(self, since: float, now: float) -> None:
        """After a pause from ``since`` to ``now``: everything due comes as much later as the pause held it (an
        instance injected during the pause, from its injection on: its first message goes at the resume), and
        the run's schedule and end the whole pause later."""
        self.queue = sorted(replace(d, at=d.at + max(0.0, now - max(since, d.since))) for d in self.queue)
        self.start += now - since
        self.until += now - since

    def add(self, inst: Instance, at: float, since: float = -math.inf) -> None:
        """``inst``'s steps not yet sent, from ``at``; an instance a killed injector had begun (``anchors``)
        goes on from its last message sent, at its own spacing, and one whose next message is already overdue
        goes on from now at its spacing (an injector starts a moment after its run's start)."""
        anchor = self.anchors.get(inst.id)
        dues = {}
        for i, step in enumerate(inst.steps):
            if (inst.id, i) not in self.done:
                dues[i] = at + step.offset
                if anchor is not None and anchor[0] < len(inst.steps):
                    dues[i] = max(dues[i], anchor[1] + step.offset - inst.steps[anchor[0]].offset)
        late = self.clock() - min(dues.values(), default=math.inf)
        for i in range(len(inst.steps)):
            self.order += 1
            if i in dues:               # planned late (the injector starts after its run, or again after a
                due = dues[i] + max(0.0, late)  # kill, slowly): whole, at its spacing, not in a burst
                bisect.insort(self.queue, _Due(due, self.order, inst, i, since))

    def inject(self, line: str) -> str:
        """An inject-now request (``[ID] NAME KEY=VALUE...``; the run's supervisor names it, else the n-th
        of its scenario ``NAME-nowN``): its instance queued from now; its id."""
        words = line.split()
        iid = words.pop(0) if len(words) > 2 and words[1].startswith("@") or \
            len(words) > 1 and get_scenario(words[1]) is not None else ""
        asked = self.clock()
        if words and words[0].startswith("@"):               # asked at that wall time (a restart's replay)
            try:
                asked = float(words.pop(0)[1:])
            except ValueError:
                raise UsageError("inject: expected NAME [KEY=VALUE...]") from None
        if not words:
            raise UsageError("inject: expected NAME [KEY=VALUE...]")
        scenario = get_scenario(words[0])
        if scenario is None:
            from loggend.content.scenarios import names
            raise UsageError(f"inject: {words[0]!r} is not allowed; expected a scenario: {', '.join(names())}")
        request = parse_pairs("inject", scenario, words[1:], " ".join(words))
        number = self.manual[scenario.name] = self.manual.get(scenario.name, 0) + 1
        from loggend.content.scenarios import instance
        inst = instance(request, self.background, number)        # its own attacker address each time
        inst = Instance(iid or f"{scenario.name}-now{number}", inst.scenario, asked - self.start, inst.source,
                        inst.target, inst.steps)
        self.add(inst, asked + request.at, asked)       # at: seconds from when it was asked (what was sent: done)
        return inst.id

    # --- sending -----------------------------------------------------------------------------------

    def connect(self) -> socket.socket:
        t = self.target
        if t.protocol == "udp":
            sock = socket.socket(socket.AF_INET6 if ":" in t.host else socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect((t.host, t.port))
            return sock
        sock = socket.create_connection((t.host, t.port), timeout=CONNECT_TIMEOUT)
        sock.settimeout(None)
        return sock

    def send(self, data: bytes) -> None:
        if self.sock is None:
            self.sock = self.connect()
        if self.target.protocol == "udp":
            try:
                self.sock.send(data)
            except ConnectionRefusedError:          # nobody listening yet: the message is lost, as any datagram
                pass
            return
        frame = b"%d %s" % (len(data), data) if self.target.framing == "octet-counting" else data + b"\n"
        try:
            self.sock.sendall(frame)
        except OSError:
            self.sock.close()
            self.sock = self.connect()
            self.sock.sendall(frame)

    def fire(self, due: _Due) -> None:
        step = due.instance.steps[due.step]
        now = self.clock()
        data = message(step, now, self.utc, self.stream, self.seq)
        inst = due.instance
        record = {"scenario": inst.scenario, "instance": inst.id, "step": due.step, "steps": len(inst.steps),
                  "stream": self.stream, "seq": self.seq, "numbered": f"{self.seq:012d}".encode() in data,
                  "sent": round(now, 6), "attacker": inst.source, "target": inst.target, "log_source": step.source,
                  "message": data.decode("utf-8", "replace")}
        try:
            self.truth.write(json.dumps(record, separators=(",", ":")) + "\n")
            self.truth.flush()
        except OSError as err:                   # a full disk: no message goes out that the truth does not hold
            self.failed = f"cannot write the truth file: {err.strerror or err}"
            self.log(f"scenarios: {self.failed}; no more scenario messages are sent")
            return
        self.seq += 1
        self.send(data)

    def say_if_behind(self, lag: float, inst: Instance) -> None:
        """Once per stretch behind: one process sends every scenario message, some thousands a second, so an
        instance of many messages in a short time delays its own and every other instance's (their latencies
        then start late: the truth has when each message really went)."""
        if lag >= BEHIND and not self.behind:
            self.behind = True
            self.log(f"scenarios: the injector is {lag:.1f} s behind its plan at {inst.id} ({len(inst.steps):,} "
                     "messages): every instance's messages go out that late (the truth has when each went); "
                     "fewer messages or a longer within= keep to the plan")
        elif lag < BEHIND / 10:
            self.behind = False

    def read_commands(self, timeout: float) -> None:
        timeout = min(IDLE_WAKE, max(0.0, timeout))         # the stop flag is looked at this often
        if self.commands is None:
            time.sleep(timeout)
            return
        ready, _, _ = select.select([self.commands], [], [], timeout)
        if not ready:
            return
        chunk = os.read(self.commands, COMMAND_BYTES)
        if not chunk:
            self.commands = None
            return
        self.pending += chunk
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            try:
                self.log(f"injecting {self.inject(line.decode('utf-8', 'replace'))} now")
            except UsageError as err:
                self.log(f"inject refused: {err}")

    def run(self) -> int:
        """Send everything due until ``until`` or ``stop()``; the number of messages sent."""
        if not self.planned:
            self.plan()
            self.planned = True
        held_since = 0.0
        try:
            while not self.stopping:
                now = self.clock()
                if self.paused():
                    held_since = held_since or now
                    self.read_commands(PAUSE_LOOK)
                    continue
                if held_since:
                    self.put_off(held_since, now)
                    held_since = 0.0
                replan = self.plan_ahead(now) if not self.failed else math.inf
                while self.queue and self.queue[0].at <= now and not self.failed:
                    self.say_if_behind(self.clock() - self.queue[0].at, self.queue[0].instance)
                    self.fire(self.queue.pop(0))
                if now >= self.until:
                    break
                nxt = min(self.queue[0].at if self.queue and not self.failed else self.until, replan, self.until)
                self.read_commands(nxt - now if nxt > now else 0.0)
        finally:
            if self.sock is not None:
                self.sock.close()
                self.sock = None
        return self.seq


# --- the truth, read back ----------------------------------------------------------------------------

class TruthFile(io.TextIOBase):
    """The truth file as the injector writes it: each line whole or not at all. A write the disk cuts short
    (ENOSPC) is cut back off and a last line says why (``failed``, when there is room for it): a buffered
    file wrote the rest of a cut line again at its close."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        good = os.lseek(self.fd, 0, os.SEEK_END)
        try:
            if os.write(self.fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as err:
            why = json.dumps({"failed": f"cannot write the truth file: {err.strerror or err}"}).encode() + b"\n"
            try:
                os.ftruncate(self.fd, good)
                if os.write(self.fd, why) != len(why):       # no room for it either: whole lines only
                    os.ftruncate(self.fd, good)
            except OSError:
                try:
                    os.ftruncate(self.fd, good)
                except OSError:
                    pass
            raise
        return len(text)

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def truth_failure(path: str) -> str:
    """Why the injector stopped writing the truth (its last line, ``failed``), or ""."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith('{"failed"'):
                    try:
                        return str(json.loads(line)["failed"])
                    except (ValueError, KeyError, TypeError):
                        return "cannot write the truth file"
    except OSError:
        pass
    return ""


def anchors_of(records: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """instance -> (its last step sent, when): where a restarted injector takes each begun instance up."""
    out: dict[str, tuple[int, float]] = {}
    for r in records:
        try:
            iid, step, sent = str(r["instance"]), int(r["step"]), float(r["sent"])
        except (KeyError, TypeError, ValueError):
            continue
        if iid not in out or step > out[iid][0]:
            out[iid] = (step, sent)
    return out


def read_truth(path: str) -> Iterator[dict[str, Any]]:
    """The truth's records; a line cut short (a full disk stopped its write) is left out: its message was
    not sent (a record is written before its message)."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict) and "instance" in record and "seq" in record:
                    yield record


def instances_of(records: Iterator[dict[str, Any]]) -> list[Sent]:
    """Truth records into one ``Sent`` per instance, in the order they started."""
    out: dict[str, Sent] = {}
    for r in records:
        iid, seq, sent = str(r["instance"]), int(r["seq"]), float(r["sent"])
        found = out.get(iid)
        if found is None:
            out[iid] = Sent(iid, str(r["scenario"]), str(r.get("attacker", "")), str(r.get("target", "")),
                            str(r["stream"]), seq, seq, sent, sent, planned=int(r.get("steps", 0) or 0))
            continue
        found.messages += 1
        found.last_seq, found.last_sent = max(found.last_seq, seq), max(found.last_sent, sent)
        found.first_seq, found.first_sent = min(found.first_seq, seq), min(found.first_sent, sent)
    return list(out.values())


# --- the run's child ------------------------------------------------------------------------------------

class InjectorProcess:
    """The run's injector child, spawned once when the run asks for scenarios and stopped with it.

    It sends until the run stops it (SIGTERM), whatever ``until`` says: ``until`` (the run's end, or
    infinity) only bounds which instances are planned, so a timed run's injector never exits by
    itself before the workers do. ``commands`` is the read end of the inject-now pipe."""

    def __init__(self, requests: tuple[Request, ...], background: Background, target: Target, truth_path: str,
                 stream: str = STREAM, utc: bool = False, commands: int | None = None,
                 log: Callable[[str], None] = lambda line: None) -> None:
        self.requests, self.background, self.target, self.truth_path = requests, background, target, truth_path
        self.stream, self.utc, self.commands, self.log = stream, utc, commands, log
        self.start = 0.0
        self.until = float("inf")
        self.paused: Callable[[], bool] = lambda: False       # the run's pause (its plan board), set by the run
        self.paused_so_far: Callable[[], float] = lambda: 0.0   # seconds the run has been paused (the same)

    def body(self) -> int:
        import signal

        from loggend.engine.procsetup import set_process_name
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)                  # the supervisor handles them, then stops us
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        set_process_name("loggend-injector")
        before = list(read_truth(self.truth_path)) if os.path.exists(self.truth_path) else []
        with TruthFile(self.truth_path) as truth:
            injector = Injector(self.requests, self.background, self.target, truth, self.start, self.until,
                                self.stream, self.utc, self.commands, log=self.log, paused=self.paused)
            injector.done = {(str(r["instance"]), int(r.get("step", -1))) for r in before}
            injector.seq = max((int(r["seq"]) for r in before), default=-1) + 1
            injector.anchors = anchors_of(before)
            if before:               # a restart: the run's pauses so far delay what is planned, as they did before
                held = self.paused_so_far()
                injector.start += held
                injector.until += held
            signal.signal(signal.SIGTERM, lambda signum, frame: injector.stop())
            injector.run()
            injector.until = float("inf")                       # the run's end: inject-now only, until stopped
            injector.run()
        return 0


INJECTOR = "injector"           # the children's kinds in the run's ChildSet
DETECTOR = "detector"


class RunScenarios:
    """A run's scenarios: its injector child, its truth file and what the summary says of them.

    Without ``--truth`` the ground truth goes to a private temporary file, read for the summary
    and removed at the end."""

    def __init__(self, requests: tuple[Request, ...], truth_path: str, log: Callable[[str], None],
                 outputs: tuple[TextIO, ...], detect: tuple[DetectSpec, ...] = (),
                 detect_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.requests, self.log, self.outputs = requests, log, outputs
        self.detect, self.detect_timeout = detect, detect_timeout
        self.own_truth = not truth_path
        if self.own_truth:
            fd, truth_path = tempfile.mkstemp(prefix="loggend-truth-", suffix=".jsonl")
            os.close(fd)
        else:
            os.close(os.open(truth_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644))  # this run's
        self.truth_path = truth_path
        fd, self.detections_path = tempfile.mkstemp(prefix="loggend-detections-", suffix=".jsonl")
        os.close(fd)
        self.polled = bool(detect) and all(d.kind != "webhook" for d in detect)    # an unasked instance: unknown
        self.tally = Tally(self.truth_path, self.detections_path, detect_timeout, self.polled)
        self.process: InjectorProcess | None = None
        self.manual: dict[str, int] = {}                  # scenario -> instances injected now so far
        self.injected: list[bytes] = []                   # every inject asked for, as queued (a restart's replay)
        self.spawned = False
        self.inject_read, self.inject_write = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.inject_write, False)      # a stuck injector must not hold up the supervisor's loop

    def configure(self, host: str, port: int, protocol: str, framing: str, stream: str, utc: bool,
                  background: Background) -> None:
        self.process = InjectorProcess(self.requests, background, Target(host, port, protocol, framing),
                                       self.truth_path, stream, utc, self.inject_read, self.log)

    def queue_inject(self, line: bytes) -> None:
        try:
            if os.write(self.inject_write, line) != len(line):
                raise BlockingIOError
        except BlockingIOError:
            raise UsageError("inject: the injector is behind with the injects asked for (its queue is full); try "
                             "again in a moment") from None

    def spawn(self, index: int) -> int:
        from loggend.control.children import fork_child
        assert self.process is not None
        if self.spawned:                 # a restarted injector plans the injects again; the truth says what went
            for line in self.injected:
                try:
                    self.queue_inject(line)
                except UsageError:
                    self.log("scenarios: the restarted injector's queue is full: the injects asked for before are "
                             "not all planned again")
                    break
        self.spawned = True
        process, write_end = self.process, self.inject_write

        def body() -> int:
            os.close(write_end)
            return process.body()
        return fork_child(body, self.outputs)

    def spawn_detector(self, index: int) -> int:
        from loggend.control.children import fork_child
        process = DetectorProcess(self.detect, self.truth_path, self.detections_path, self.detect_timeout, self.log)
        return fork_child(process.body, self.outputs)

    def inject(self, line: str) -> str:
        """An inject-now request (``NAME KEY=VALUE...``): checked here, queued for the child; its answer."""
        words = line.split()
        if not words:
            raise UsageError("inject: needs a scenario, e.g. inject ssh-bruteforce attempts=10")
        scenario = get_scenario(words[0])
        if scenario is None:
            from loggend.content.scenarios import names
            raise UsageError(f"inject: {words[0]!r} is not allowed; expected a scenario: {', '.join(names())}")
        request = parse_pairs("inject", scenario, words[1:], " ".join(words))
        if any(w.split("=", 1)[0] == "every" for w in words[1:]):
            raise UsageError("inject: every: an inject is one instance (repeat it, or give the run --scenario "
                             f"{scenario.name}:every=...)")
        if self.process is None:
            raise UsageError("inject: the run has not started sending yet; try again in a moment")
        iid = f"{scenario.name}-now{self.manual.get(scenario.name, 0) + 1}"
        queued = f"{iid} @{time.time():.6f} {' '.join(words)}".encode() + b"\n"
        self.queue_inject(queued)
        self.injected.append(queued)
        self.manual[scenario.name] = self.manual.get(scenario.name, 0) + 1
        return f"{iid} queued: it starts " + (f"in {request.at:g} s" if request.at else "now")

    def detected(self, line: str, by: str, now: float) -> str:
        """``ID [TIME]`` (unix seconds or ISO 8601; now when left out): a detection the SIEM reported."""
        if not self.detect:
            raise UsageError("detected: this run measures no detection (run it with --detect, e.g. --detect webhook)")
        words = line.split()
        if not words or len(words) > 2:
            raise UsageError("detected: expected ID [TIME], e.g. detected ssh-bruteforce-1 1796603273.4")
        known = {s.id: s for s in self.sent()}
        if words[0] not in known:
            raise UsageError(f"detected: {words[0]!r} is not an instance this run sent"
                             + (f"; sent: {', '.join(sorted(known)[:6])}" if known else " (none sent yet)"))
        at = parse_time(words[1]) if len(words) == 2 else now
        if at is None:
            raise UsageError(f"detected: {words[1]!r} is not a time; expected unix seconds or ISO 8601 with a zone")
        if why := implausible(at, known[words[0]].first_sent, now):
            raise UsageError(f"detected: {words[0]}: {why}; a detection comes after the attack and not later than "
                             "now")
        earlier = first_detections(self.detections_path).get(words[0])
        append_detection(self.detections_path, words[0], at, by)
        late = at - known[words[0]].first_sent - self.detect_timeout
        if earlier is not None and earlier[0] <= at:
            return (f"{words[0]}: detected at {at:.3f} noted; the first detection counts, at {earlier[0]:.3f} "
                    f"({earlier[1]})")
        if late > 0:
            return (f"{words[0]}: detected at {at:.3f} noted; it stays missed: {late:.1f} s past the "
                    f"{self.detect_timeout:g} s detect timeout")
        return f"{words[0]}: detected at {at:.3f} noted"

    def verdicts(self, now: float) -> list[Verdict]:
        return verdicts(self.truth_path, self.detections_path, self.detect_timeout, now, self.polled) \
            if self.detect else []

    def unnumbered(self) -> int:
        """Messages sent in a form with no room for the stream and number (an ASA's, a PAN-OS native line):
        a sink counts them with the background's unnumbered messages."""
        return self.numbering()[1]

    def numbering(self) -> tuple[int, int]:
        """(messages sent numbered in the scenarios' own stream, messages sent without a number)."""
        try:
            flags = [r.get("numbered") is not False for r in read_truth(self.truth_path)]
        except (OSError, ValueError):
            return 0, 0
        return sum(flags), len(flags) - sum(flags)

    def sent(self) -> list[Sent]:
        try:
            return instances_of(read_truth(self.truth_path))
        except (OSError, ValueError) as err:
            self.log(f"scenarios: cannot read the truth file {self.truth_path}: {err}")
            return []

    def close(self) -> None:
        for fd in (self.inject_read, self.inject_write):
            try:
                os.close(fd)
            except OSError:
                pass
        for path in (self.truth_path, self.detections_path) if self.own_truth else (self.detections_path,):
            try:
                os.unlink(path)
            except OSError:
                pass


def summary_lines(sent: list[Sent], failed: str = "") -> list[str]:
    """The run summary's lines for the scenario instances sent (``failed``: why the truth stopped)."""
    if not sent:
        return ["scenarios: none sent"]
    out = [f"scenarios: {len(sent)} instance{'s' * (len(sent) != 1)}, "
           f"{plural(sum(s.messages for s in sent), 'message')} in stream {sent[0].stream}"]
    for s in sent:
        first = time.strftime("%H:%M:%S", time.localtime(s.first_sent)) + f".{int(s.first_sent * 1000) % 1000:03d}"
        why = failed or "the run ended first"
        short = f" of {s.planned} (cut short: {why})" if s.planned > s.messages else ""
        out.append(f"  {s.id}: {s.messages} message{'s' * (s.messages != 1)}{short} (seq {s.first_seq}-{s.last_seq}) "
                   f"from {first}, over {s.last_sent - s.first_sent:.1f} s; attacker {s.source}, target {s.target}")
    return out
