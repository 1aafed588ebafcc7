"""The figures of a run, added up once: every summary (console, ``--summary-json``, ``/api/summary``,
the perftest report, the sink's own line) is built from these objects, never from raw slots.

``SinkTotals`` adds up sink slots; ``RunTotals`` adds up worker slots and carries the sink's
totals and the per-stream rows beside them. Pure data: no processes, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loggend.engine import counters as C
from loggend.engine.counters import ERROR_KINDS, SlotSnapshot


def error_counts(snapshots: list[SlotSnapshot]) -> dict[str, int]:
    """Events refused by the kernel over these workers, by kind."""
    return {kind: sum(s.errors[k] for s in snapshots) for k, kind in enumerate(ERROR_KINDS)}


def transports(snapshots: list[SlotSnapshot]) -> str:
    """The send methods in use, e.g. ``gso`` or ``gso,sendmmsg``; "" before any worker chose."""
    return ",".join(sorted({s.transport for s in snapshots if s.transport}))


@dataclass(frozen=True)
class SinkTotals:
    received: int = 0
    bytes: int = 0
    gaps: int = 0            # numbers that were missing when a later one arrived
    late: int = 0            # of those, arrived after all (reordered)
    duplicates: int = 0
    unsequenced: int = 0
    kernel_drops: int = 0
    streams: int = 0
    processes: int = 0
    running: int = 0
    connections: int = 0     # TCP/TLS: accepted so far
    open: int = 0            # open now
    torn: int = 0            # messages cut by a connection's end (not received)
    tls_failures: int = 0    # handshakes that failed
    rejected: int = 0        # connections closed for sending something that is not syslog framing

    @property
    def lost(self) -> int:
        """Sequence numbers never seen: gaps minus late fills (the net loss)."""
        return self.gaps - self.late

    @property
    def loss_percent(self) -> float:
        sequenced = self.received - self.unsequenced - self.duplicates
        expected = sequenced + self.lost
        return 100.0 * self.lost / expected if expected else 0.0

    @classmethod
    def of(cls, rows: list[list[int]]) -> SinkTotals:
        """From the raw sink slots of a run."""
        def total(f: int) -> int:
            return sum(r[f] for r in rows)
        return cls(received=total(C.SINK_RECEIVED), bytes=total(C.SINK_BYTES), gaps=total(C.SINK_GAPS),
                   late=total(C.SINK_LATE), duplicates=total(C.SINK_DUPLICATES),
                   unsequenced=total(C.SINK_UNSEQUENCED), kernel_drops=total(C.SINK_KERNEL_DROPS),
                   streams=total(C.SINK_STREAMS), processes=len(rows),
                   running=sum(1 for r in rows if r[C.SINK_STATE] == C.STATE_RUNNING),
                   connections=total(C.SINK_CONNECTIONS), open=total(C.SINK_OPEN), torn=total(C.SINK_TORN),
                   tls_failures=total(C.SINK_TLS_FAILURES), rejected=total(C.SINK_REJECTED))

    def document(self) -> dict[str, Any]:
        return {"received": self.received, "bytes": self.bytes, "lost": self.lost, "gaps": self.gaps,
                "late": self.late, "duplicates": self.duplicates, "unsequenced": self.unsequenced,
                "kernel_drops": self.kernel_drops, "streams": self.streams, "processes": self.processes,
                "running": self.running, "loss_percent": self.loss_percent, "connections": self.connections,
                "open": self.open, "torn": self.torn, "tls_failures": self.tls_failures,
                "rejected": self.rejected}


@dataclass(frozen=True)
class WorkerTotals:
    index: int
    port: int | None
    cpu: int | None
    state: str
    sent: int
    bytes: int
    errors: dict[str, int]
    restarts: int
    received: int | None = None          # what the local sink got of this worker's stream
    lost: int | None = None
    forgiven: int = 0                    # due while it was down or stalled, too old to make up
    down_seconds: float = 0.0            # time the index had no worker sending (after the start)
    blocked_seconds: float = 0.0         # TCP/TLS: time waiting for the receiver to read (push-back)
    reconnects: int = 0                  # TCP/TLS: connections re-opened after a drop
    possibly_lost: int = 0               # TCP/TLS: in the kernel's send queue when a connection dropped

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"index": self.index, "port": self.port, "cpu": self.cpu, "state": self.state,
                               "sent": self.sent, "bytes": self.bytes, "errors": self.errors,
                               "restarts": self.restarts, "forgiven": self.forgiven,
                               "down_seconds": round(self.down_seconds, 3),
                               "blocked_seconds": round(self.blocked_seconds, 3), "reconnects": self.reconnects,
                               "possibly_lost": self.possibly_lost}
        if self.received is not None:
            doc["received"], doc["lost"] = self.received, self.lost
        return doc


@dataclass(frozen=True)
class Start:
    """When a run began: the start time asked for (``--start-at``) and the first send."""

    requested: float | None          # unix seconds asked for; None: as soon as every worker was ready
    first_send: float                # unix seconds of the run's first send
    late_ms: float | None            # first send - requested, in milliseconds

    def document(self) -> dict[str, Any]:
        return {"requested_unix": self.requested, "first_send_unix": round(self.first_send, 6),
                "late_ms": None if self.late_ms is None else round(self.late_ms, 3)}


@dataclass(frozen=True)
class RunTotals:
    """A run so far (or at its end): what was sent, how fast, what failed, what the sink saw."""

    target: str
    rate: float                      # configured total events/s (0 = unlimited)
    seconds: float                   # sending time: the first worker's first send to the last heartbeat
    sent: int
    bytes: int
    errors: dict[str, int]
    restarts: int
    transport: str
    peak_memory: int = 0
    memory_limit: int = 0
    workers: tuple[WorkerTotals, ...] = ()
    sink: SinkTotals | None = None
    planned: int | None = None       # what the plan made due by the end (None: nobody knows, e.g. unlimited)
    instance: int = 0                # this run's place in a fleet: instance `instance` of `instances`
    instances: int = 1
    fleet_rate: float = 0.0          # the fleet's total rate (`rate` is this instance's share)
    run_id: str = ""
    start: Start | None = None
    profile: str = ""                # the configured rate profile (compact form); "" = the constant rate
    timing: str = ""                 # a replay at the file's own timing: which, e.g. "the file's own timing x10"
    live_changes: int = 0            # rate changes made while it ran (loggend ctl, SIGUSR1/SIGUSR2)
    paused_seconds: float = 0.0      # time spent paused
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def forgiven(self) -> int:
        return sum(w.forgiven for w in self.workers)

    @property
    def blocked_seconds(self) -> float:
        return sum(w.blocked_seconds for w in self.workers)

    @property
    def reconnects(self) -> int:
        return sum(w.reconnects for w in self.workers)

    @property
    def possibly_lost(self) -> int:
        return sum(w.possibly_lost for w in self.workers)

    @property
    def refused(self) -> int:
        return sum(self.errors.values())

    @property
    def shortfall(self) -> int | None:
        """Planned events that were not sent (down time, refusals, a run cut short); None: no plan."""
        return None if self.planned is None else self.planned - self.sent

    @property
    def sent_minus_received(self) -> int | None:
        return None if self.sink is None else self.sent - self.sink.received

    @classmethod
    def of(cls, snapshots: list[SlotSnapshot], seconds: float, target: str, rate: float,
           ports: tuple[int, ...] = (), cpus: tuple[int, ...] = (), peak_memory: int = 0, memory_limit: int = 0,
           sink: SinkTotals | None = None, streams: list[list[int]] | None = None,
           planned: int | None = None, profile: str = "", live_changes: int = 0,
           paused_seconds: float = 0.0) -> RunTotals:
        rows = []
        for i, s in enumerate(snapshots):
            received = lost = None
            if sink is not None and streams is not None and i < len(streams):
                received = streams[i][C.STREAM_RECEIVED]
                lost = streams[i][C.STREAM_GAPS] - streams[i][C.STREAM_LATE]
            rows.append(WorkerTotals(
                index=i, port=ports[i % len(ports)] if ports else None, cpu=cpus[i % len(cpus)] if cpus else None,
                state=s.state_name, sent=s.sent, bytes=s.bytes, errors=dict(zip(ERROR_KINDS, s.errors)),
                restarts=s.restarts, received=received, lost=lost, forgiven=s.forgiven, down_seconds=s.down_ns / 1e9,
                blocked_seconds=s.blocked_ns / 1e9, reconnects=s.reconnects, possibly_lost=s.possibly_lost))
        return cls(target=target, rate=rate, seconds=seconds, sent=sum(s.sent for s in snapshots),
                   bytes=sum(s.bytes for s in snapshots), errors=error_counts(snapshots),
                   restarts=sum(s.restarts for s in snapshots), transport=transports(snapshots),
                   peak_memory=peak_memory, memory_limit=memory_limit, workers=tuple(rows), sink=sink,
                   planned=planned, profile=profile, live_changes=live_changes, paused_seconds=paused_seconds)

    def document(self) -> dict[str, Any]:
        """The summary as data (``--summary-json``, the perftest report)."""
        return {
            "target": self.target, "rate": self.rate, "seconds": self.seconds, "sent": self.sent,
            "bytes": self.bytes, "mean_rate": self.mean_rate, "planned": self.planned, "shortfall": self.shortfall,
            "forgiven": self.forgiven, "errors": self.errors, "restarts": self.restarts,
            "blocked_seconds": round(self.blocked_seconds, 3), "reconnects": self.reconnects,
            "possibly_lost": self.possibly_lost,
            "peak_memory_bytes": self.peak_memory, "transport": self.transport or "-",
            "workers": [w.document() for w in self.workers],
            "sink": self.sink.document() if self.sink is not None else None,
            "sent_minus_received": self.sent_minus_received, "profile": self.profile or None,
            "timing": self.timing or None,
            "live_changes": self.live_changes, "paused_seconds": round(self.paused_seconds, 3),
            "instance": self.instance, "instances": self.instances, "fleet_rate": self.fleet_rate,
            "run_id": self.run_id, "start": self.start.document() if self.start is not None else None,
            **self.extra,
        }
