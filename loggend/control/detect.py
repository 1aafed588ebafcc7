"""Detection feedback: when did the SIEM alert on each injected scenario instance, or did it miss it.

Three ways to learn it (``--detect``, repeatable):

* ``command:CMD``: CMD is run for every instance not yet decided, every ``POLL_SECONDS``, with the
  instance id as its last argument and ``LOGGEN_SCENARIO_ID``, ``LOGGEN_SCENARIO``,
  ``LOGGEN_SCENARIO_SOURCE`` (the attacker's address), ``LOGGEN_SCENARIO_TARGET`` and
  ``LOGGEN_SCENARIO_FIRST_SENT`` (unix seconds) in its environment. It prints when the instance was
  detected (unix seconds, or ISO 8601 with a zone) or nothing (not yet). A failing or slow command
  (``COMMAND_TIMEOUT``) counts as "not yet" and is logged once.
* ``prometheus:URL`` with ``--detect-query Q``: Q (PromQL; ``{id}``, ``{scenario}``, ``{source}``,
  ``{target}`` are replaced by the instance's) is evaluated at URL's ``/api/v1/query``; a non-empty
  result means detected. Its time is a sample's value when that is a unix time between the first
  event and now (``ALERTS_FOR_STATE`` gives the alert's ``activeAt`` that way), else the poll's.
* ``webhook``: the SIEM POSTs ``{"scenario": ID, "detected_at": TIME}`` to the dashboard's
  ``/api/detections``, or anyone runs ``loggend ctl detected ID [TIME]``; the supervisor appends it.

Every detection is one JSON line of the run's detections file (``{"instance", "detected_at", "by"}``);
the first one of an instance counts. ``verdicts`` turns the truth (first event sent) and the
detections into the summary's: latency = detection time - first event sent; ``missed`` when none
came within ``timeout`` seconds of the first event; ``undecided`` when the run ended before that.
The poller is its own child process (``DetectorProcess``): a slow detector never holds up sending.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loggend.detectspec import DetectSpec

POLL_SECONDS = 1.0              # each undecided instance is asked about this often
COMMAND_TIMEOUT = 10.0          # a detect command taking longer counts as "not yet"
HTTP_TIMEOUT = 5.0
POLL_WORKERS = 8                # instances asked about at once
MAX_OUTPUT = 4096               # bytes of a command's output read
BY_WEBHOOK = "webhook"


def parse_time(text: str) -> float | None:
    """Unix seconds or ISO 8601 with a zone, as a detector prints it; None for anything else."""
    text = text.strip()
    if not text:
        return None
    if not text.isascii():
        return None                       # digits other than 0-9 are not a time
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.timestamp() if stamp.tzinfo is not None else None


@dataclass(frozen=True)
class Pending:
    """An instance still undecided: what a detector is told of it."""

    id: str
    scenario: str
    source: str
    target: str
    first_sent: float

    def fields(self) -> dict[str, str]:
        return {"id": self.id, "scenario": self.scenario, "source": self.source, "target": self.target}


def ask_command(spec: DetectSpec, p: Pending, log: Callable[[str], None],
                failed: list[str] | None = None) -> float | None:
    """Run the detect command for ``p``: its first line is when it was detected (nothing: not yet). The
    command runs in a session of its own, killed whole at ``COMMAND_TIMEOUT`` (its children too), and at
    most ``MAX_OUTPUT`` bytes of what it prints are read."""
    env = dict(os.environ, LOGGEN_SCENARIO_ID=p.id, LOGGEN_SCENARIO=p.scenario, LOGGEN_SCENARIO_SOURCE=p.source,
               LOGGEN_SCENARIO_TARGET=p.target, LOGGEN_SCENARIO_FIRST_SENT=f"{p.first_sent:.6f}")
    try:
        proc = subprocess.Popen([*shlex.split(spec.target), p.id], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    except OSError as err:
        return fail(log, failed, f"detect command {spec.target!r}: {err}")
    try:
        out_b, err_b = bounded_output(proc, COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        return fail(log, failed, f"detect command {spec.target!r}: no answer within {COMMAND_TIMEOUT:g} s "
                    "(stopped, with its children)")
    cut = len(out_b) >= MAX_OUTPUT and proc.returncode == -signal.SIGKILL     # stopped for printing more: it answered
    if proc.returncode != 0 and not cut:
        why = err_b[:200].decode("utf-8", "replace").strip()
        return fail(log, failed, f"detect command {spec.target!r} exited {proc.returncode}: {why}")
    out = out_b.decode("utf-8", "replace").strip()
    found = parse_time(out.splitlines()[0]) if out else None
    if out and found is None:
        return fail(log, failed, f"detect command {spec.target!r} printed something that is not a time (unix "
                    "seconds or ISO 8601 with a zone)")
    return found


def fail(log: Callable[[str], None], failed: list[str] | None, why: str) -> float | None:
    """A detector that could not be asked: said (once, by the caller's log) and noted in ``failed``."""
    log(why)
    if failed is not None:
        failed.append(why)
    return None


def bounded_output(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
    """Up to ``MAX_OUTPUT`` bytes of the process's stdout and stderr, once it ended; its whole process group
    is killed at ``timeout`` (TimeoutExpired) or when it prints more (what it printed so far is kept)."""
    import selectors
    assert proc.stdout is not None and proc.stderr is not None
    got = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for f in got:
            sel.register(f, selectors.EVENT_READ)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                kill_group(proc)
                raise subprocess.TimeoutExpired(proc.args, timeout)
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                buf = got[key.fileobj]          # type: ignore[index]
                if not chunk:
                    sel.unregister(key.fileobj)
                elif len(buf) < MAX_OUTPUT:
                    buf += chunk[:MAX_OUTPUT - len(buf)]
                else:                           # more than anyone's answer: enough read
                    kill_group(proc)
                    sel.unregister(key.fileobj)
    try:
        proc.wait(max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
    return bytes(got[proc.stdout]), bytes(got[proc.stderr])


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def ask_prometheus(spec: DetectSpec, p: Pending, log: Callable[[str], None], now: float,
                   failed: list[str] | None = None) -> float | None:
    query = spec.query
    for key, value in p.fields().items():
        query = query.replace("{" + key + "}", value)
    url = f"{spec.target}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as answer:      # noqa: S310 (the user's URL)
            doc = json.loads(answer.read(1 << 20))
    except (OSError, ValueError) as err:
        return fail(log, failed, f"detect prometheus {spec.target}: {err}")
    result = doc.get("data", {}).get("result", []) if isinstance(doc, dict) else []
    if not result:
        return None
    times: list[float] = []
    for sample in result:
        try:
            stamp = float(sample["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        if p.first_sent - 1 <= stamp <= now + 1:
            times.append(stamp)
    return min(times) if times else now


# --- the run's files ------------------------------------------------------------------------------------

def read_lines(path: str) -> Iterator[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue
    except FileNotFoundError:
        return


def first_detections(path: str) -> dict[str, tuple[float, str]]:
    """instance -> (earliest detection time, by whom)."""
    out: dict[str, tuple[float, str]] = {}
    for r in read_lines(path):
        try:
            iid, at, by = str(r["instance"]), float(r["detected_at"]), str(r.get("by", ""))
        except (KeyError, TypeError, ValueError):
            continue
        if iid not in out or at < out[iid][0]:
            out[iid] = (at, by)
    return out


CLOCK_SLACK = 2.0         # seconds a detection time may be off (clocks of the SIEM and of this box): one up
                          # to this much before the first event is taken, its latency 0


def implausible(at: float, first_sent: float, now: float) -> str:
    """Why ``at`` cannot be when an instance first sent at ``first_sent`` was detected ("" if it can):
    before its first event, or later than now (a detection cannot come before the attack nor from the future)."""
    if not math.isfinite(at):
        return "not a finite time"
    if at < first_sent - CLOCK_SLACK:
        return f"{at:.3f} is {first_sent - at:,.1f} s before its first event was sent ({first_sent:.3f})"
    if at > now + CLOCK_SLACK:
        return f"{at:.3f} is {at - now:,.1f} s ahead of now"
    return ""


def append_asked(path: str, instance: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"instance": instance, "asked": True}) + "\n")


def asked_of(path: str) -> set[str]:
    """The instances a polled detector answered about at least once."""
    return {str(r.get("instance")) for r in read_lines(path) if r.get("asked") is True}


def append_detection(path: str, instance: str, at: float, by: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"instance": instance, "detected_at": round(at, 6), "by": by}) + "\n")


def pending_of(truth_path: str, decided: set[str]) -> list[Pending]:
    """The instances the truth holds that are not decided, with their first event's time."""
    first: dict[str, Pending] = {}
    for r in read_lines(truth_path):
        iid = str(r.get("instance", ""))
        if iid in decided or iid in first:
            continue
        first[iid] = Pending(iid, str(r.get("scenario", "")), str(r.get("attacker", "")), str(r.get("target", "")),
                             float(r.get("sent", 0.0)))
    return list(first.values())


@dataclass
class Verdict:
    id: str
    scenario: str
    first_sent: float
    detected_at: float | None
    by: str
    state: str                  # detected | missed | undecided
    latency: float | None

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "scenario": self.scenario, "state": self.state, "by": self.by or None,
                "detected_at": None if self.detected_at is None else round(self.detected_at, 3),
                "latency_seconds": None if self.latency is None else round(self.latency, 3)}


def verdicts(truth_path: str, detections_path: str, timeout: float, now: float,
             polled: bool = False) -> list[Verdict]:
    """Per instance of the truth: detected (and how late), missed, undecided (the run ended first), or,
    ``polled`` (every detector is asked, none posts), unknown when no detector could ever be asked."""
    found = first_detections(detections_path)
    asked = asked_of(detections_path) if polled else set()
    out = []
    for p in pending_of(truth_path, set()):
        at, by = found.get(p.id, (None, ""))
        if at is not None and at - p.first_sent <= timeout:
            out.append(Verdict(p.id, p.scenario, p.first_sent, at, by, "detected", max(0.0, at - p.first_sent)))
        else:
            state = "missed" if now - p.first_sent >= timeout or at is not None else "undecided"
            if state == "missed" and polled and at is None and p.id not in asked:
                state = "unknown"
            out.append(Verdict(p.id, p.scenario, p.first_sent, None, "", state, None))
    return out


def verdict_lines(found: list[Verdict], timeout: float) -> list[str]:
    if not found:
        return []
    detected = [v for v in found if v.state == "detected"]
    missed = sum(v.state == "missed" for v in found)
    unknown = sum(v.state == "unknown" for v in found)
    undecided = len(found) - len(detected) - missed - unknown
    head = f"detection: {len(detected)} of {len(found)} detected, {missed} missed (after {timeout:g} s)"
    if undecided:
        head += f", {undecided} undecided (the run ended within {timeout:g} s of their first event)"
    if unknown:
        head += f", {unknown} unknown (no detector could be asked about them: see the lines above)"
    lines = [head]
    for v in found:
        what = (f"detected after {v.latency:.1f} s ({v.by})" if v.state == "detected" and v.latency is not None
                else v.state)
        lines.append(f"  {v.id}: {what}")
    return lines


# --- the poller ---------------------------------------------------------------------------------------

class DetectorProcess:
    """The run's detection poller: asks the detectors about every undecided instance of the truth.

    Constructing it does nothing to the process; ``body`` is the child's (SIGTERM ends it)."""

    def __init__(self, specs: tuple[DetectSpec, ...], truth_path: str, detections_path: str, timeout: float,
                 log: Callable[[str], None] = lambda line: None, clock: Callable[[], float] = time.time) -> None:
        self.specs, self.truth_path, self.detections_path = specs, truth_path, detections_path
        self.timeout, self.log, self.clock = timeout, log, clock
        self.stopping = False
        self.complained: set[str] = set()
        self.writing = threading.Lock()          # the pollers append to one detections file
        self.asked: set[str] = set()             # instances a detector answered about at least once

    def once(self, line: str) -> None:
        """A detector's complaint, said once (by its first 60 characters: what varies comes after)."""
        if line[:60] not in self.complained:
            self.complained.add(line[:60])
            self.log(line)

    def poll(self) -> int:
        """One round over the undecided instances, ``POLL_WORKERS`` at a time (a slow detector asked about
        one after another made the last ones miss their timeout unasked); how many were found detected."""
        from concurrent.futures import ThreadPoolExecutor
        now = self.clock()
        decided = set(first_detections(self.detections_path))
        pending = [p for p in pending_of(self.truth_path, decided) if now - p.first_sent <= self.timeout]
        if not pending:
            return 0
        with ThreadPoolExecutor(max_workers=min(POLL_WORKERS, len(pending))) as pool:
            return sum(pool.map(self.ask, pending))

    def ask(self, p: Pending) -> int:
        """Ask each detector about ``p`` until one says when it was detected: 1 if one did. The first answer
        of any (even "not yet") is noted: an instance no detector could ever be asked about is unknown, not
        missed."""
        for spec in self.specs:
            if self.stopping:
                return 0
            failed: list[str] = []
            at = (ask_command(spec, p, self.once, failed) if spec.kind == "command" else
                  ask_prometheus(spec, p, self.once, self.clock(), failed) if spec.kind == "prometheus" else None)
            if not failed and spec.kind != "webhook" and p.id not in self.asked:
                self.asked.add(p.id)
                with self.writing:
                    append_asked(self.detections_path, p.id)
            if at is not None and (why := implausible(at, p.first_sent, self.clock())):
                self.once(f"detect {spec.describe()}: {p.id}: {why}; not taken")
            elif at is not None:
                with self.writing:
                    append_detection(self.detections_path, p.id, at, spec.describe())
                return 1
        return 0

    def body(self) -> int:
        import signal

        from loggend.engine.procsetup import set_process_name
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, lambda signum, frame: setattr(self, "stopping", True))
        set_process_name("loggend-detect")
        if not any(s.kind != BY_WEBHOOK for s in self.specs):
            while not self.stopping:                   # webhooks only: the supervisor writes them
                time.sleep(POLL_SECONDS)
            return 0
        while not self.stopping:
            started = self.clock()
            self.poll()
            time.sleep(max(0.05, POLL_SECONDS - (self.clock() - started)))
        return 0


# --- the tally the metrics show -----------------------------------------------------------------------

class Follow:
    """New whole JSON lines of a growing file, from where the last call stopped."""

    def __init__(self, path: str) -> None:
        self.path, self.offset, self.rest = path, 0, b""

    def new(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        whole, _, self.rest = (self.rest + data).rpartition(b"\n")     # a line still being written waits
        for line in whole.splitlines():
            try:
                yield json.loads(line)
            except ValueError:
                continue


class Tally:
    """Per scenario: instances and messages sent, detected, missed and the latencies, kept up to date
    from the truth and detections files (read incrementally: a long run's files are read once)."""

    def __init__(self, truth_path: str, detections_path: str, timeout: float, polled: bool = False) -> None:
        self.truth, self.detections, self.timeout = Follow(truth_path), Follow(detections_path), timeout
        self.polled = polled                                  # missed only once a detector answered (verdicts)
        self.asked: set[str] = set()
        self.first: dict[str, tuple[str, float]] = {}        # instance -> (scenario, first sent)
        self.messages: dict[str, int] = {}                   # scenario -> messages sent
        self.found: dict[str, float] = {}                    # instance -> earliest detection

    def figures(self, now: float) -> dict[str, dict[str, float]]:
        for r in self.truth.new():
            scenario, iid = str(r.get("scenario", "")), str(r.get("instance", ""))
            self.messages[scenario] = self.messages.get(scenario, 0) + 1
            self.first.setdefault(iid, (scenario, float(r.get("sent", 0.0))))
        for r in self.detections.new():
            if r.get("asked") is True:
                self.asked.add(str(r.get("instance")))
                continue
            try:
                iid, at = str(r["instance"]), float(r["detected_at"])
            except (KeyError, TypeError, ValueError):
                continue
            self.found[iid] = min(at, self.found.get(iid, at))
        out: dict[str, dict[str, float]] = {}
        for iid, (scenario, first) in self.first.items():
            f = out.setdefault(scenario, {"instances": 0, "messages": self.messages.get(scenario, 0), "detected": 0,
                                          "missed": 0, "latency_sum": 0.0})
            f["instances"] += 1
            seen = self.found.get(iid)
            if seen is not None and seen - first <= self.timeout:
                f["detected"] += 1
                f["latency_sum"] += max(0.0, seen - first)      # within CLOCK_SLACK before it: a skew
            elif (now - first >= self.timeout or seen is not None) and (iid in self.asked or not self.polled):
                f["missed"] += 1
        return out
