"""From counter snapshots to what people watch: rates, the snapshot document, the summary, Prometheus.

Everything here is a pure function of its inputs (snapshots, the run board, process figures and
a time), so it is tested without processes. ``Rates`` turns per-slot monotonic counters into
reset-safe totals (a counter that goes down is taken to have restarted from zero, as Prometheus'
``rate()`` does) and sliding-window rates over them.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from loggend import __version__
from loggend.engine import counters as C
from loggend.engine.counters import ERROR_KINDS, STATE_RUNNING, SlotSnapshot
from loggend.report.totals import (
    RunTotals,
    SinkTotals,
    SlotSums,
    possibly_lost,
    sink_lost,
    stream_lost,
    transports,
    unheard_instances,
)

WINDOWS = (1, 10, 60)             # seconds of the sliding-window rates
HISTORY_SECONDS = 600             # per-second points kept for the chart and the summary
STALL_SECONDS = 2.0               # a running worker with a heartbeat this old is shown as stalled
FULL_SECOND = 0.95                # a 1-s rate over a shorter span than this is no per-second rate
QUANTILE_ACCURACY = 0.005         # relative error of the streaming quantiles (p99 of the summary)
MAX_STREAM_SERIES = 256           # per-stream series in /metrics and rows in a sink's frame, at most


class Rates:
    """Reset-safe cumulative totals per slot and sliding-window rates over them."""

    def __init__(self, horizon: float = HISTORY_SECONDS + max(WINDOWS)) -> None:
        self.horizon = horizon
        self.last: list[int] = []
        self.totals: list[int] = []
        self.times: deque[float] = deque()
        self.points: deque[tuple[int, tuple[int, ...]]] = deque()   # (total, per-slot totals)

    def add(self, t: float, values: list[int]) -> None:
        while len(self.last) < len(values):
            self.last.append(0)
            self.totals.append(0)
        for i, v in enumerate(values):
            delta = v - self.last[i]
            self.totals[i] += delta if delta >= 0 else v       # went down: it restarted from zero
            self.last[i] = v
        self.times.append(t)
        self.points.append((sum(self.totals), tuple(self.totals)))
        while self.times and self.times[0] < t - self.horizon:
            self.times.popleft()
            self.points.popleft()

    def _span(self, window: float) -> tuple[int, int] | None:
        if len(self.times) < 2:
            return None
        last = len(self.times) - 1
        first = min(bisect_left(self.times, self.times[last] - window - 1e-6), last - 1)
        return first, last

    def span(self, window: float) -> float:
        """Seconds the ``window`` rate is measured over now (shorter than the window at the start)."""
        span = self._span(window)
        return 0.0 if span is None else self.times[span[1]] - self.times[span[0]]

    def rate(self, window: float, sending: bool = False) -> float:
        """Events/s over the last ``window`` seconds; ``sending``: over the part of it since the first
        sample that had sent anything (the start-up before it is no shortfall of the rate)."""
        span = self._span(window)
        if span is None:
            return 0.0
        a, b = span
        if sending:
            a = next((i for i in range(a, b) if self.points[i][0] > 0), b)
            if a == b:
                return 0.0
        return (self.points[b][0] - self.points[a][0]) / (self.times[b] - self.times[a])

    def slot_rate(self, index: int, window: float) -> float:
        span = self._span(window)
        if span is None:
            return 0.0
        a, b = span
        before, after = self.points[a][1], self.points[b][1]
        if index >= len(after):
            return 0.0
        return (after[index] - (before[index] if index < len(before) else 0)) / (self.times[b] - self.times[a])


@dataclass
class ProcFigures:
    """What psutil says about one worker process."""

    cpu_seconds: float = 0.0
    cpu_percent: float = 0.0
    rss_bytes: int = 0


def worker_shares(slots: list[SlotSnapshot], procs: dict[int, ProcFigures]) -> list[ProcFigures | None]:
    """Each running worker's share of its process's CPU and memory (None when not running): a
    process that serves several workers (``worker_processes``) is split evenly among them, so the
    workers add up to the processes."""
    running = [s.pid if s.state == STATE_RUNNING else 0 for s in slots]
    serving: dict[int, int] = {}
    for pid in running:
        serving[pid] = serving.get(pid, 0) + 1
    out: list[ProcFigures | None] = []
    for pid in running:
        proc = procs.get(pid) if pid else None
        n = serving.get(pid, 1)
        out.append(None if proc is None else
                   ProcFigures(proc.cpu_seconds / n, proc.cpu_percent / n, proc.rss_bytes // n))
    return out


@dataclass
class SystemFigures:
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    memory_used_bytes: int = 0
    memory_total_bytes: int = 0
    processes: int = 0


class Quantiles:
    """Streaming quantiles in bounded memory (the DDSketch idea): each value goes into a bucket of
    relative width ``2 * accuracy`` on a log scale, so any quantile is known within ``accuracy`` of
    its value, and a run of any length keeps at most a few thousand buckets (rates from 1 to 1e9)."""

    def __init__(self, accuracy: float = QUANTILE_ACCURACY) -> None:
        self.gamma = (1 + accuracy) / (1 - accuracy)
        self.log_gamma = math.log(self.gamma)
        self.buckets: dict[int, int] = {}
        self.zeros = 0                     # values <= 0 (a paused or stopped second)
        self.count = 0

    def add(self, value: float) -> None:
        self.count += 1
        if value <= 0:
            self.zeros += 1
            return
        key = math.ceil(math.log(value) / self.log_gamma)
        self.buckets[key] = self.buckets.get(key, 0) + 1

    def quantile(self, q: float) -> float:
        """The value at quantile ``q`` (0..1): the ``ceil(q * count)``-th smallest, within the accuracy."""
        if not self.count:
            return 0.0
        rank = min(self.count, max(1, math.ceil(q * self.count)))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                return 2 * self.gamma ** key / (self.gamma + 1)     # the middle of the bucket
        return 0.0


@dataclass
class History:
    """Per-sample (unix time, events/s, target events/s) points for the chart (the last
    HISTORY_SECONDS of them; the target line follows a profile and live changes), and over the
    whole run the peak, the quantiles and the count of the *per-second* rates: a rate measured over
    less than a full second (the first frames, a sampler that woke up late) is charted, never
    counted, so the start of 40 workers cannot make the peak."""

    points: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=HISTORY_SECONDS))
    peak: float = 0.0
    rates: Quantiles = field(default_factory=Quantiles)

    def add(self, wall: float, eps: float, target: float = 0.0, per_second: bool = True) -> None:
        self.points.append((round(wall, 3), round(eps, 1), round(target, 1)))
        if per_second:
            self.peak = max(self.peak, eps)
            self.rates.add(eps)

    @property
    def samples(self) -> int:
        return self.rates.count

    def percentile(self, q: float) -> float:
        return self.rates.quantile(q / 100)


def worker_status(slot: SlotSnapshot, now_ns: int) -> str:
    if slot.state == STATE_RUNNING and slot.heartbeat_ns and now_ns - slot.heartbeat_ns > STALL_SECONDS * 1e9:
        return "stalled"
    if slot.state_name == "starting" and slot.restarts:
        return "restarting"
    return slot.state_name


def link_state(slot: SlotSnapshot, refused_per_second: float) -> str:
    """How the worker's target answers now: "ok", "refusing" (datagrams refused over the last second:
    nothing listens at its port) or "disconnected" (TCP, TLS: no connection)."""
    if slot.transport in ("tcp", "tls") and slot.link_down:
        return "disconnected"
    return "refusing" if refused_per_second > 0 else "ok"


def achievement(rate: float, target: float) -> float | None:
    return round(100.0 * rate / target, 1) if target else None


def sink_document(totals: SinkTotals | None, sent: int | None, received_rate: float) -> dict[str, Any] | None:
    """What the sink saw, beside what was sent (None without a sink)."""
    if totals is None:
        return None
    doc = totals.document()
    doc["events_per_second"] = round(received_rate, 1)
    doc["sent_minus_received"] = None if sent is None else sent - totals.run_received
    doc["in_flight"] = None if sent is None else totals.in_flight(sent)
    return doc


def stream_documents(streams: dict[str, list[int]], limit: int = MAX_STREAM_SERIES) -> list[dict[str, Any]]:
    """Per named stream (at most ``limit``, by name): what the sink got of it."""
    return [{"stream": name, "received": row[C.STREAM_RECEIVED], "lost": stream_lost(row),
             "late": row[C.STREAM_LATE], "duplicates": row[C.STREAM_DUPLICATES], "outliers": row[C.STREAM_OUTLIERS]}
            for name, row in sorted(streams.items())[:limit]]


def target_rate(board: dict[str, Any]) -> float:
    """The total rate due now, as the supervisor published it (it follows the profile and live changes;
    0: unlimited, paused or no generator)."""
    return float(board.get("target_rate", board.get("rate", 0.0)))


def refusing(rows: list[dict[str, Any]], host: str, transport: str) -> list[dict[str, Any]]:
    """UDP: the ports the kernel refused datagrams to (nothing listens there), with their counts."""
    if transport in ("tcp", "tls"):
        return []
    ports: dict[int, int] = {}
    for r in rows:
        if r["refused"] and r["port"] is not None:
            ports[r["port"]] = ports.get(r["port"], 0) + r["refused"]
    return [{"address": f"{host}:{port}", "port": port, "refused": n} for port, n in sorted(ports.items())]


def snapshot_document(slots: list[SlotSnapshot], board: dict[str, Any], rates: Rates,
                      procs: dict[int, ProcFigures], system: SystemFigures, wall: float, now_ns: int,
                      sink: dict[str, Any] | None = None, streams: list[list[int]] | None = None,
                      refusals: Rates | None = None) -> dict[str, Any]:
    """The document of ``GET /api/metrics`` and of each ``/ws`` frame; ``refusals``: the slots' refused
    counts over time, which say which workers' target refuses them now (``link``)."""
    workers = int(board.get("workers", len(slots)))
    ports = board.get("ports", [])
    cpus = board.get("cpus", [])
    target = target_rate(board)
    sums = SlotSums.of(slots)
    rows = []
    shares = worker_shares(slots, procs)
    for i, s in enumerate(slots):
        proc = shares[i] or ProcFigures()
        rows.append({
            "index": i, "pid": s.pid, "status": worker_status(s, now_ns), "active": i < workers,
            "port": ports[i % len(ports)] if ports else None, "cpu": cpus[i % len(cpus)] if cpus else None,
            "events": s.sent, "bytes": s.bytes, "events_per_second": round(rates.slot_rate(i, 1), 1),
            "errors": sum(s.errors), "refused": s.errors[0], "restarts": s.restarts, "transport": s.transport,
            "cpu_percent": round(proc.cpu_percent, 1), "cpu_seconds": round(proc.cpu_seconds, 3),
            "rss_bytes": proc.rss_bytes, "blocked_seconds": round(s.blocked_ns / 1e9, 3),
            "reconnects": s.reconnects, "possibly_lost": possibly_lost(s),
            "unsent_at_close": s.unsent_at_close, "disconnected_seconds": round(s.disconnected_ns / 1e9, 3),
            "connected": None if s.transport not in ("tcp", "tls") else not s.link_down,
            "link": link_state(s, refusals.slot_rate(i, 1) if refusals is not None else 0.0),
        })
        if streams is not None and i < len(streams):
            rows[-1]["received"] = streams[i][C.STREAM_RECEIVED]
            rows[-1]["lost"] = stream_lost(streams[i])
    eps = {f"{w}s": round(rates.rate(w), 1) for w in WINDOWS}
    return {
        "time": round(wall, 3),
        "version": __version__,
        "mode": board.get("mode", "run"),           # "sink": a sink on its own (loggend sink), its own view
        "target": {"address": board.get("target", ""), "events_per_second": target,
                   "paused": bool(board.get("paused", False))},
        "fleet": {"run_id": board.get("run_id", ""), "instance": int(board.get("instance", 0)),
                  "instances": int(board.get("instances", 1)),
                  "events_per_second": float(board.get("fleet_rate", target))},
        "transport": transports(slots) or None,
        "running": sum(1 for r in rows[:workers] if r["status"] == "running"),
        "workers": workers,
        "totals": {"events": sums.sent, "bytes": sums.bytes, "batches": sums.calls, "errors": sums.errors,
                   "restarts": sums.restarts, "blocked_seconds": round(sums.blocked_ns / 1e9, 3),
                   "reconnects": sums.reconnects, "possibly_lost": sums.possibly_lost,
                   "unsent_at_close": sums.unsent_at_close,
                   "disconnected_seconds": round(sums.disconnected_ns / 1e9, 3)},
        "events_per_second": eps,
        "achievement_percent": achievement(rates.rate(10, sending=True), target),
        "worker_status": rows,
        "refusing": refusing(rows[:workers], board.get("host", ""), transports(slots)),
        "system": {
            "cpu_percent": system.cpu_percent, "memory_percent": system.memory_percent,
            "memory_used_bytes": system.memory_used_bytes, "memory_total_bytes": system.memory_total_bytes,
            "processes": system.processes,
            "loggen_memory_bytes": board.get("memory_bytes", 0),
            "loggen_memory_limit_bytes": board.get("memory_limit", 0),
        },
        "sink": sink,
    }


def summary_document(totals: RunTotals, started: float, history: History,
                     sink: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document of ``GET /api/summary``: the run so far."""
    return {
        "started": started,
        "duration_seconds": round(totals.seconds, 3),
        "target": {"address": totals.target, "events_per_second": totals.rate},
        "events": totals.sent,
        "bytes": totals.bytes,
        "events_per_second": {"mean": round(totals.mean_rate, 1), "peak": round(history.peak, 1),
                              "p99": round(history.percentile(99), 1)},
        "errors": totals.errors,
        "restarts": totals.restarts,
        "achievement_percent": achievement(totals.mean_rate, totals.rate),
        "peak_memory_bytes": totals.peak_memory,
        "samples": history.samples,
        "sink": sink,
    }


FLEET_LABELS = ["run_id", "instance_index"]    # on every series: a fleet adds up with sum by (run_id)


def fleet_values(board: dict[str, Any]) -> list[str]:
    """The values of ``FLEET_LABELS`` for this process (empty ones vanish in Prometheus)."""
    workers = int(board.get("workers", 0))
    return [str(board.get("run_id", "")), str(board.get("instance", 0)) if workers else ""]


class LoggenCollector(Collector):
    """Prometheus families built at scrape time from the shared counters (a custom collector).

    Every series carries ``run_id`` and ``instance_index`` (constant for a process, so they add
    no series within a run): a fleet adds up with ``sum by (run_id)``, one instance is picked
    with ``instance_index``, and nothing needs a join or the scrape config's help. A standalone sink
    exports none of these (only ``loggen_sink_*``), so ``count(loggen_info)`` counts the generators.
    """

    def __init__(self, source: Callable[[], tuple[list[SlotSnapshot], dict[str, Any], dict[int, ProcFigures]]]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        slots, board, procs = self.source()
        if not int(board.get("workers", 0)):
            return                  # a sink on its own (loggend sink): no generator to speak of, no fleet member
        fleet = fleet_values(board)
        per_worker = [*FLEET_LABELS, "worker"]
        sent = CounterMetricFamily("loggen_events_sent", "Syslog events accepted by the kernel.", labels=per_worker)
        nbytes = CounterMetricFamily("loggen_bytes_sent", "Payload bytes accepted by the kernel.", labels=per_worker)
        batches = CounterMetricFamily("loggen_send_calls", "Send system calls made.", labels=per_worker)
        errors = CounterMetricFamily("loggen_send_errors", "Events refused by the kernel, by reason.",
                                     labels=[*per_worker, "reason"])
        blocked = CounterMetricFamily("loggen_send_blocked_seconds", "Time spent waiting for send queue space or "
                                      "for the receiver to read (push-back).", labels=per_worker)
        forgiven = CounterMetricFamily("loggen_events_forgiven", "Events due while the worker was down or stalled "
                                       "that were too old to make up.", labels=per_worker)
        restarts = CounterMetricFamily("loggen_worker_restarts", "Times the worker was restarted.", labels=per_worker)
        up = GaugeMetricFamily("loggen_worker_up", "1 when the worker is running.", labels=per_worker)
        cpu = CounterMetricFamily("loggen_worker_cpu_seconds", "CPU time of the worker's process (an even share of "
                                  "it when the process serves several workers).", labels=per_worker)
        rss = GaugeMetricFamily("loggen_worker_resident_memory_bytes", "Resident memory of the worker's process (an "
                                "even share of it when the process serves several workers).", labels=per_worker)
        reconnects = CounterMetricFamily("loggen_reconnects", "TCP/TLS: connections re-opened after a drop.",
                                         labels=per_worker)
        possibly = CounterMetricFamily("loggen_possibly_lost", "TCP/TLS: events still unsent in the kernel's "
                                       "queue when a connection dropped.", labels=per_worker)
        unsent = CounterMetricFamily("loggen_unsent_at_close", "TCP/TLS: events still unsent in the kernel's queue "
                                     "when the worker closed its connection at the end.", labels=per_worker)
        disconnected = CounterMetricFamily("loggen_disconnected_seconds", "TCP/TLS: time the worker had no "
                                           "connection while it ran.", labels=per_worker)
        shares = worker_shares(slots, procs)
        for i, s in enumerate(slots):
            w = [*fleet, str(i)]
            unsent.add_metric(w, s.unsent_at_close)
            disconnected.add_metric(w, s.disconnected_ns / 1e9)
            sent.add_metric(w, s.sent)
            nbytes.add_metric(w, s.bytes)
            batches.add_metric(w, s.calls)
            for k, kind in enumerate(ERROR_KINDS):
                errors.add_metric([*w, kind], s.errors[k])
            blocked.add_metric(w, s.blocked_ns / 1e9)
            forgiven.add_metric(w, s.forgiven)
            restarts.add_metric(w, s.restarts)
            reconnects.add_metric(w, s.reconnects)
            possibly.add_metric(w, s.possibly_lost)
            up.add_metric(w, 1.0 if s.state == STATE_RUNNING else 0.0)
            proc = shares[i]
            if proc is not None:
                cpu.add_metric(w, proc.cpu_seconds)
                rss.add_metric(w, proc.rss_bytes)
        yield from (sent, nbytes, batches, errors, blocked, forgiven, restarts, up, cpu, rss, reconnects,
                    possibly, unsent, disconnected)
        for name, text, value in (
                ("loggen_target_events_per_second", "This instance's rate due now, its share of the fleet's; follows "
                 "the profile and live changes (0 = unlimited or paused).", target_rate(board)),
                ("loggen_workers", "Configured worker processes.", board.get("workers", 0)),
                ("loggen_memory_pss_bytes", "Proportional set size of the supervisor and its children.",
                 board.get("memory_bytes", 0))):
            family = GaugeMetricFamily(name, text, labels=FLEET_LABELS)
            family.add_metric(fleet, float(value))
            yield family
        info = InfoMetricFamily("loggen", "Version, transport and place in the fleet.", labels=FLEET_LABELS)
        info.add_metric(fleet, {"version": __version__, "transport": transports(slots) or "none",
                                "instances": str(board.get("instances", 1))})
        yield info
        yield from scenario_families(board.get("scenarios"), fleet)


def scenario_families(scenarios: object, fleet: list[str]) -> Iterator[Metric]:
    """``loggen_scenario_*``: the attack scenarios injected and, with --detect, detected or missed (label
    ``scenario``: one of six names)."""
    if not isinstance(scenarios, dict) or not isinstance(scenarios.get("by_scenario"), dict):
        return
    labels = [*FLEET_LABELS, "scenario"]
    instances = CounterMetricFamily("loggen_scenario_instances", "Attack scenario instances injected (their first "
                                    "message sent).", labels=labels)
    messages = CounterMetricFamily("loggen_scenario_messages", "Attack scenario messages sent (the ground truth's "
                                   "lines).", labels=labels)
    families: list[Metric] = [instances, messages]
    detect = bool(scenarios.get("detect"))
    if detect:
        detected = CounterMetricFamily("loggen_scenario_detected", "Instances the SIEM detected within the "
                                       "timeout.", labels=labels)
        missed = CounterMetricFamily("loggen_scenario_missed", "Instances not detected within the timeout of "
                                     "their first message.", labels=labels)
        latency = SummaryMetricFamily("loggen_scenario_detection_latency_seconds", "From an instance's first "
                                      "message sent to its detection.", labels=labels)
        families += [detected, missed, latency]
    for name, f in sorted(scenarios["by_scenario"].items()):
        values = [*fleet, str(name)]
        instances.add_metric(values, float(f.get("instances", 0)))
        messages.add_metric(values, float(f.get("messages", 0)))
        if detect:
            detected.add_metric(values, float(f.get("detected", 0)))
            missed.add_metric(values, float(f.get("missed", 0)))
            latency.add_metric(values, count_value=int(f.get("detected", 0)),
                               sum_value=float(f.get("latency_sum", 0)))
    yield from families


class SinkCollector(Collector):
    """``loggen_sink_*`` families from the sink processes' counter slots (with the fleet labels of
    the run the sink belongs to: ``loggend sink --run-id``, or the run of a local sink)."""

    def __init__(self, source: Callable[[], tuple[list[list[int]], dict[str, Any]]],
                 streams: Callable[[], dict[str, list[int]]] | None = None) -> None:
        """``streams``: per stream name, what the sink got of it (at most MAX_STREAM_SERIES get a series)."""
        self.source, self.streams = source, streams

    def collect(self) -> Iterator[Metric]:
        rows, board = self.source()
        if not rows:
            return
        expected = int(board.get("expect_instances", 0))
        unheard = unheard_instances(self.streams(), expected) if expected and self.streams is not None else ()
        yield from self.collect_honesty(rows, fleet_values(board), unheard, expected)
        if self.streams is not None:
            yield from self.collect_streams(self.streams(), fleet_values(board))
        fleet = fleet_values(board)
        labels = [*FLEET_LABELS, "sink"]
        families: list[tuple[CounterMetricFamily | GaugeMetricFamily, int]] = [
            (CounterMetricFamily("loggen_sink_received", "Datagrams the sink received.", labels=labels),
             C.SINK_RECEIVED),
            (CounterMetricFamily("loggen_sink_received_bytes", "Bytes the sink received.", labels=labels),
             C.SINK_BYTES),
            (CounterMetricFamily("loggen_sink_gaps", "Sequence numbers found missing when a later one arrived.",
                                 labels=labels), C.SINK_GAPS),
            (CounterMetricFamily("loggen_sink_late", "Missing numbers that arrived late after all (reordered).",
                                 labels=labels), C.SINK_LATE),
            (CounterMetricFamily("loggen_sink_duplicates", "Numbers received more than once.", labels=labels),
             C.SINK_DUPLICATES),
            (CounterMetricFamily("loggen_sink_unsequenced", "Datagrams without stream=/seq=.", labels=labels),
             C.SINK_UNSEQUENCED),
            (CounterMetricFamily("loggen_sink_kernel_drops", "Datagrams the kernel dropped for the sink's sockets.",
                                 labels=labels), C.SINK_KERNEL_DROPS),
            (CounterMetricFamily("loggen_sink_connections", "TCP/TLS connections accepted.", labels=labels),
             C.SINK_CONNECTIONS),
            (CounterMetricFamily("loggen_sink_torn", "TCP/TLS messages cut by a connection's end (not counted).",
                                 labels=labels), C.SINK_TORN),
            (CounterMetricFamily("loggen_sink_tls_failures", "TLS handshakes that failed.", labels=labels),
             C.SINK_TLS_FAILURES),
            (CounterMetricFamily("loggen_sink_rejected_connections", "Connections closed for sending something "
                                 "that is not syslog framing.", labels=labels), C.SINK_REJECTED),
            (CounterMetricFamily("loggen_sink_empty_frames", "Empty frames and blank lines (no events: not in "
                                 "received).", labels=labels), C.SINK_EMPTY),
            (GaugeMetricFamily("loggen_sink_streams", "Streams (stream=ID) the sink process has seen, from any "
                               "number of instances.", labels=labels), C.SINK_STREAMS),
        ]
        up = GaugeMetricFamily("loggen_sink_up", "1 when the sink process is receiving.", labels=labels)
        lost = GaugeMetricFamily("loggen_sink_lost", "Sequence numbers still missing: gaps minus late arrivals.",
                                 labels=labels)
        opened = GaugeMetricFamily("loggen_sink_open_connections", "TCP/TLS connections open now.", labels=labels)
        for i, row in enumerate(rows):
            values = [*fleet, str(i)]
            for family, field_index in families:
                family.add_metric(values, row[field_index])
            up.add_metric(values, 1.0 if row[C.SINK_STATE] == STATE_RUNNING else 0.0)
            lost.add_metric(values, sink_lost(row))
            opened.add_metric(values, row[C.SINK_OPEN])
        for family, _ in families:
            yield family
        yield SinkCollector.dropped_connections(rows, fleet)
        yield lost
        yield opened
        yield up

    @staticmethod
    def dropped_connections(rows: list[list[int]], fleet: list[str]) -> CounterMetricFamily:
        """TCP/TLS connections the sink closed on its own, by reason: at the cap of connections per
        process (``cap``), after too long without a byte (``idle``)."""
        family = CounterMetricFamily("loggen_sink_dropped_connections", "Connections the sink refused or closed: "
                                     "reason cap (at the cap per process), idle (nothing received too long).",
                                     labels=[*FLEET_LABELS, "sink", "reason"])
        for i, row in enumerate(rows):
            family.add_metric([*fleet, str(i), "cap"], row[C.SINK_DROPPED_CAP])
            family.add_metric([*fleet, str(i), "idle"], row[C.SINK_DROPPED_IDLE])
        return family

    @staticmethod
    def collect_honesty(rows: list[list[int]], fleet: list[str], unheard: tuple[int, ...] = (),
                        expected: int = 0) -> Iterator[Metric]:
        """What the sink could not count or counted apart, and whether its loss can be known."""
        labels = [*FLEET_LABELS, "sink"]
        counters = (
            ("loggen_sink_outliers", "Numbers too far from their stream to be gaps (forged, corrupt): set aside, "
             "not loss (may go down when a held run proves real).", C.SINK_OUTLIERS, GaugeMetricFamily),
            ("loggen_sink_stale", "Numbers that arrived below forgotten gap ranges (late or duplicate: cannot tell).",
             C.SINK_STALE, CounterMetricFamily),
            ("loggen_sink_gap_ranges_forgotten", "Open gap ranges dropped over the caps (their numbers stay lost).",
             C.SINK_GAPS_FORGOTTEN, CounterMetricFamily),
            ("loggen_sink_stream_overflow", "Messages of streams beyond the streams a sink process tracks.",
             C.SINK_OVERFLOW, CounterMetricFamily),
            ("loggen_sink_foreign", "Messages of streams the run did not announce (counted apart).", C.SINK_FOREIGN,
             CounterMetricFamily),
            ("loggen_sink_backlog_bytes", "Bytes queued for the sink in the kernel: how far behind it is.",
             C.SINK_BACKLOG_BYTES, GaugeMetricFamily),
            ("loggen_sink_unread", "Datagrams read at the stop without being accounted (out of time).",
             C.SINK_UNREAD, CounterMetricFamily),
            ("loggen_sink_unread_bytes", "Bytes still queued when the sink gave up at its stop.", C.SINK_UNREAD_BYTES,
             GaugeMetricFamily),
            ("loggen_sink_abandoned", "Times a sink process ended without accounting its queue (killed, crashed).",
             C.SINK_ABANDONED, CounterMetricFamily),
        )
        families = []
        for name, text, index, kind in counters:
            family = kind(name, text, labels=labels)
            for i, row in enumerate(rows):
                family.add_metric([*fleet, str(i)], row[index])
            families.append(family)
        yield from families
        totals = SinkTotals.of(rows)
        totals = replace(totals, unheard=() if totals.overflow else unheard, expected=expected)
        missing = GaugeMetricFamily("loggen_sink_unheard_instances", "Instances of the fleet (loggend sink "
                                    "--expect-instances) none of whose streams arrived.", labels=FLEET_LABELS)
        missing.add_metric(fleet, len(unheard))
        yield missing
        others = GaugeMetricFamily("loggen_sink_other_sockets", "Sockets of others receiving on the sink's ports "
                                   "(they take a share of the datagrams).", labels=FLEET_LABELS)
        others.add_metric(fleet, totals.other_sockets)
        yield others
        known = GaugeMetricFamily("loggen_sink_loss_known", "1 when the sink counted everything sent to it; 0 when "
                                  "the loss is unknown (behind at the stop, a process lost with its queue, ports "
                                  "shared, nothing measured, messages without a number beside gaps).",
                                  labels=FLEET_LABELS)
        known.add_metric(fleet, 0.0 if totals.unknown() else 1.0)
        yield known

    @staticmethod
    def collect_streams(streams: dict[str, list[int]], fleet: list[str]) -> Iterator[Metric]:
        """Per stream, with a bounded label count: MAX_STREAM_SERIES names, the others only counted."""
        labels = [*FLEET_LABELS, "stream"]
        received = CounterMetricFamily("loggen_sink_stream_received", "Messages of the stream the sink received.",
                                       labels=labels)
        lost = GaugeMetricFamily("loggen_sink_stream_lost", "Numbers of the stream still missing.", labels=labels)
        for doc in stream_documents(streams):
            received.add_metric([*fleet, doc["stream"]], doc["received"])
            lost.add_metric([*fleet, doc["stream"]], doc["lost"])
        yield received
        yield lost
        beyond = GaugeMetricFamily("loggen_sink_streams_unlabelled", f"Named streams beyond the {MAX_STREAM_SERIES} "
                                   "that get a series of their own.", labels=FLEET_LABELS)
        beyond.add_metric(fleet, max(0, len(streams) - MAX_STREAM_SERIES))
        yield beyond
