"""The figures of a run, added up once: every summary (console, ``--summary-json``, ``/api/summary``,
the perftest report, the sink's own line) is built from these objects, never from raw slots.

``SlotSums`` adds up worker slots (the live line, ``loggend ctl status`` and ``/api/metrics`` take
their figures from it too); ``SinkTotals`` adds up sink slots; ``RunTotals`` carries both, the
per-worker rows and the per-stream rows beside them. A loss is computed here only (``SinkTotals.lost``,
``sink_lost``, ``stream_lost``). Pure data: no processes, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from loggend.engine import counters as C
from loggend.engine.counters import ERROR_KINDS, CounterBlock, SlotSnapshot
from loggend.parsers import format_size, plural

INSTANCE_STREAM = re.compile(r"i(\d+)\.")


def unheard_instances(names: Iterable[str], expected: int) -> tuple[int, ...]:
    """The instances of a fleet of ``expected`` none of whose streams (``iK.wJ``) are among ``names``
    (a lone instance's streams carry no prefix)."""
    if expected <= 0:
        return ()
    names = list(names)
    heard = {int(m.group(1)) for name in names if (m := INSTANCE_STREAM.match(name))}
    if expected == 1 and any(not INSTANCE_STREAM.match(name) for name in names):
        heard.add(0)
    return tuple(i for i in range(expected) if i not in heard)


@dataclass(frozen=True)
class SlotSums:
    """Worker slots added up: the one place a sum over them is made (the live line, the summaries,
    ``loggend ctl status``, ``/api/metrics`` and ``/metrics`` all take their figures from here)."""

    sent: int = 0
    bytes: int = 0
    calls: int = 0                   # send calls (batches)
    restarts: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    blocked_ns: int = 0              # TCP/TLS: time waiting for the receiver to read
    reconnects: int = 0
    possibly_lost: int = 0           # TCP/TLS: in the kernel's send queue when a connection dropped or closed
    unsent_at_close: int = 0         # of those, still queued when it closed at the end
    disconnected_ns: int = 0

    @classmethod
    def of(cls, snapshots: list[SlotSnapshot]) -> SlotSums:
        return cls(sent=sum(s.sent for s in snapshots), bytes=sum(s.bytes for s in snapshots),
                   calls=sum(s.calls for s in snapshots), restarts=sum(s.restarts for s in snapshots),
                   errors=error_counts(snapshots), blocked_ns=sum(s.blocked_ns for s in snapshots),
                   reconnects=sum(s.reconnects for s in snapshots),
                   possibly_lost=sum(possibly_lost(s) for s in snapshots),
                   unsent_at_close=sum(s.unsent_at_close for s in snapshots),
                   disconnected_ns=sum(s.disconnected_ns for s in snapshots))


def possibly_lost(slot: SlotSnapshot) -> int:
    """TCP/TLS: events in the kernel's send queue when a connection dropped, or when it closed."""
    return slot.possibly_lost + slot.unsent_at_close


def error_counts(snapshots: list[SlotSnapshot]) -> dict[str, int]:
    """Events refused by the kernel over these workers, by kind."""
    return {kind: sum(s.errors[k] for s in snapshots) for k, kind in enumerate(ERROR_KINDS)}


def transports(snapshots: list[SlotSnapshot]) -> str:
    """The send methods in use, e.g. ``gso`` or ``gso,sendmmsg``; "" before any worker chose."""
    return ",".join(sorted({s.transport for s in snapshots if s.transport}))


def merge_streams(block: CounterBlock, sinks: int, width: int, count: int) -> list[list[int]]:
    """Per worker index ``0..count-1``: what every sink process got of its stream (sink process ``k``
    writes slot ``k * width + i``), added up; the lowest first number and the highest next one."""
    rows = [[0] * C.SLOT_FIELDS for _ in range(count)]
    for k in range(sinks):
        for i in range(count):
            if k * width + i >= block.slots:
                break
            v = block.values(k * width + i)
            row = rows[i]
            for f in (C.STREAM_RECEIVED, C.STREAM_GAPS, C.STREAM_DUPLICATES, C.STREAM_LATE, C.STREAM_OUTLIERS,
                      C.STREAM_STALE):
                row[f] += v[f]
            if v[C.STREAM_FIRST] and (not row[C.STREAM_FIRST] or v[C.STREAM_FIRST] < row[C.STREAM_FIRST]):
                row[C.STREAM_FIRST] = v[C.STREAM_FIRST]
            row[C.STREAM_NEXT] = max(row[C.STREAM_NEXT], v[C.STREAM_NEXT])
    return rows


def named_streams(block: CounterBlock, sinks: int, width: int) -> dict[str, list[int]]:
    """A standalone sink's named stream slots (each process names its own range), added up by name."""
    out: dict[str, list[int]] = {}
    for at, name in block.named(sinks * width):
        v = block.values(at)
        row = out.setdefault(name.decode("utf-8", "replace"), [0] * C.SLOT_FIELDS)
        for f in (C.STREAM_RECEIVED, C.STREAM_GAPS, C.STREAM_DUPLICATES, C.STREAM_LATE, C.STREAM_OUTLIERS,
                  C.STREAM_STALE):
            row[f] += v[f]
        row[C.STREAM_NEXT] = max(row[C.STREAM_NEXT], v[C.STREAM_NEXT])
    return out


def sink_lost(row: list[int]) -> int:
    """One sink process's loss by sequence (its raw slot): gaps minus late fills, as ``SinkTotals.lost``."""
    return row[C.SINK_GAPS] - row[C.SINK_LATE]


def stream_lost(row: list[int]) -> int:
    """A stream's loss by sequence (a merged or named stream row): gaps minus late fills."""
    return row[C.STREAM_GAPS] - row[C.STREAM_LATE]


NOTHING_MEASURED = "the sink received nothing: no loss measured"
INTERLEAVED = "unsequenced beside gaps: "     # how a reason the run names better (``RunTotals.unproven``) begins


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
    dropped_cap: int = 0     # connections refused, or closed silent, at the cap of connections per process
    dropped_idle: int = 0    # connections closed after too long without a byte
    empty: int = 0           # empty frames and blank lines: no events (not in received)
    outliers: int = 0        # numbers too far from their stream to be gaps (forged, corrupt): not loss
    stale: int = 0           # arrived below forgotten gap ranges: late or duplicate, cannot tell
    gaps_forgotten: int = 0  # gap ranges dropped over the caps (their numbers stay lost)
    overflow: int = 0        # messages of streams beyond the cap of streams tracked
    foreign: int = 0         # messages of streams the run did not announce (counted apart)
    foreign_streams: int = 0
    backlog_bytes: int = 0   # queued for the sink in the kernel now (a gauge)
    unread: int = 0          # datagrams read at the stop without being accounted (out of time)
    unread_bytes: int = 0    # bytes still queued when the sink gave up at its stop
    abandoned: int = 0       # sink processes that ended without accounting their queue (killed, crashed)
    abandoned_bytes: int = 0  # what was queued for them then
    other_sockets: int = 0   # sockets of others receiving on the sink's ports (they take a share)
    standalone: bool = field(default=False, compare=False)   # `loggend sink`: no sender's counts beside it
    heartbeat_ns: int = field(default=0, compare=False)   # the oldest heartbeat of a running sink process
    unheard: tuple[int, ...] = field(default=(), compare=False)   # `sink --expect-instances`: fleet instances not seen
    expected: int = field(default=0, compare=False)       # `sink --expect-instances`: the fleet's size (0: not told)

    @property
    def lost(self) -> int:
        """Sequence numbers never seen: gaps minus late fills (the net loss; ``sink_lost`` per process)."""
        return self.gaps - self.late

    @property
    def lost_shown(self) -> str:
        """The loss as a live line shows it: the number, or ``unknown`` when it cannot be known."""
        return "unknown" if self.unknown() else f"{self.lost:,}"

    @property
    def run_received(self) -> int:
        """What arrived of a run's own streams: foreign messages (and those of streams over the cap,
        foreign too under a run) and outliers (numbers no worker sent) left out."""
        return self.received - self.foreign - self.overflow - self.outliers

    def in_flight(self, sent: int) -> int:
        """Of ``sent``, what is neither received nor counted lost: on its way, or in a queue, when the
        counters were read (not loss: a lossless run shows it and then drains it)."""
        return max(0, sent - self.run_received - max(0, self.lost))

    @property
    def counted(self) -> int:
        """Messages of the counted streams with their own number (the base of the loss percentage)."""
        return self.run_received - self.unsequenced - self.duplicates

    @property
    def loss_percent(self) -> float:
        expected = self.counted + self.lost
        return 100.0 * self.lost / expected if expected else 0.0

    def unknown(self) -> list[str]:
        """Why the loss cannot be known (empty: it can): what the sink could not count, and who else took a share."""
        why = []
        if self.unread or self.unread_bytes:
            what = f"{self.unread:,} datagrams" if self.unread else format_size(self.unread_bytes)
            more = f" and {format_size(self.unread_bytes)} it could not count" if self.unread and self.unread_bytes \
                else ""
            why.append(f"sink behind: {what} unread at stop{more}")
        if self.abandoned:
            queued = f"{format_size(self.abandoned_bytes)} queued" if self.abandoned_bytes else "its queue"
            ended = "a sink process ended" if self.abandoned == 1 else f"sink processes ended {self.abandoned:,} times"
            why.append(f"sink behind: {ended} (killed or crashed) with {queued}, not counted")
        if self.other_sockets:
            why.append(f"{self.other_sockets:,} other socket{'s' if self.other_sockets != 1 else ''} receiving on the "
                       "sink's ports took a share")
        if self.gaps_forgotten and self.stale:
            why.append(f"{self.gaps_forgotten:,} gap ranges were forgotten over the caps and {self.stale:,} numbers "
                       f"arrived below them: the loss by sequence ({self.lost:,}) is only an upper bound")
        if self.received == self.unsequenced:
            why.append(NOTHING_MEASURED if not self.received else f"none of the {self.received:,} messages received "
                       "carried a sequence number: no loss measured")
        elif self.unsequenced and self.lost > 0:
            why.append(f"{INTERLEAVED}{self.unsequenced:,} messages without a sequence number arrived beside streams "
                       f"with {self.lost:,} numbers missing: a source without proof of delivery takes numbers the "
                       "sink never sees, so the gaps are not all loss")
        if self.expected and self.overflow:
            why.append(f"{self.overflow:,} messages of streams beyond those the sink names (64 a process): whether "
                       "every instance was heard cannot be told (--expect-instances; more --processes name more)")
        if self.unheard:
            shown = ", ".join(map(str, self.unheard[:10])) + (f" and {len(self.unheard) - 10} more"
                                                              if len(self.unheard) > 10 else "")
            why.append(f"instances never heard from: {shown} (--expect-instances): whatever they sent is not counted")
        if self.standalone and self.kernel_drops > self.lost:
            why.append(f"the kernel dropped {self.kernel_drops:,} datagrams for the sink, more than the "
                       f"{self.lost:,} its gaps show: the ends of streams were lost unseen (at least "
                       f"{self.kernel_drops:,} lost)")
        return why

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
                   tls_failures=total(C.SINK_TLS_FAILURES), rejected=total(C.SINK_REJECTED),
                   dropped_cap=total(C.SINK_DROPPED_CAP), dropped_idle=total(C.SINK_DROPPED_IDLE),
                   empty=total(C.SINK_EMPTY),
                   outliers=total(C.SINK_OUTLIERS), stale=total(C.SINK_STALE),
                   gaps_forgotten=total(C.SINK_GAPS_FORGOTTEN), overflow=total(C.SINK_OVERFLOW),
                   foreign=total(C.SINK_FOREIGN), foreign_streams=total(C.SINK_FOREIGN_STREAMS),
                   backlog_bytes=total(C.SINK_BACKLOG_BYTES), unread=total(C.SINK_UNREAD),
                   unread_bytes=total(C.SINK_UNREAD_BYTES), abandoned=total(C.SINK_ABANDONED),
                   abandoned_bytes=total(C.SINK_ABANDONED_BYTES),
                   other_sockets=max((r[C.SINK_OTHER_SOCKETS] for r in rows), default=0),
                   heartbeat_ns=min((r[C.SINK_HEARTBEAT_NS] for r in rows if r[C.SINK_STATE] == C.STATE_RUNNING),
                                    default=0))

    def document(self) -> dict[str, Any]:
        why = self.unknown()
        return {"received": self.received, "bytes": self.bytes, "lost": self.lost, "gaps": self.gaps,
                "late": self.late, "duplicates": self.duplicates, "unsequenced": self.unsequenced,
                "kernel_drops": self.kernel_drops, "streams": self.streams, "processes": self.processes,
                "running": self.running, "loss_percent": self.loss_percent, "connections": self.connections,
                "open": self.open, "torn": self.torn, "tls_failures": self.tls_failures,
                "rejected": self.rejected, "dropped_connections": {"cap": self.dropped_cap, "idle": self.dropped_idle},
                "empty_frames": self.empty, "outliers": self.outliers, "stale": self.stale,
                "gaps_forgotten": self.gaps_forgotten, "overflow": self.overflow, "foreign": self.foreign,
                "foreign_streams": self.foreign_streams, "backlog_bytes": self.backlog_bytes,
                "unread": self.unread, "unread_bytes": self.unread_bytes, "abandoned": self.abandoned,
                "abandoned_bytes": self.abandoned_bytes, "other_sockets": self.other_sockets,
                "unheard_instances": list(self.unheard),
                "verdict": "unknown" if why else "counted", "unknown_because": why}


@dataclass(frozen=True)
class Ends:
    """What sequence accounting cannot see, per the sender's count: numbers before the first one the
    sink received, after the last one, and whole streams it never saw."""

    before: int = 0
    after: int = 0
    never_seen: int = 0
    streams_never_seen: int = 0
    beyond: int = 0          # streams with numbers above what their worker sent (impossible from it)

    @property
    def total(self) -> int:
        return self.before + self.after + self.never_seen


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
    possibly_lost: int = 0               # TCP/TLS: in the kernel's send queue when a connection dropped or closed
    unsent_at_close: int = 0             # TCP/TLS: of those, still in the queue when it closed at the end
    disconnected_seconds: float = 0.0    # TCP/TLS: time without a connection while it ran
    outliers: int = 0                    # of its stream's numbers at the sink, set aside as implausible
    before: int = 0                      # numbers before the first one the sink received
    after: int = 0                       # numbers after the last one (none received: the whole stream)

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"index": self.index, "port": self.port, "cpu": self.cpu, "state": self.state,
                               "sent": self.sent, "bytes": self.bytes, "errors": self.errors,
                               "restarts": self.restarts, "forgiven": self.forgiven,
                               "down_seconds": round(self.down_seconds, 3),
                               "blocked_seconds": round(self.blocked_seconds, 3), "reconnects": self.reconnects,
                               "possibly_lost": self.possibly_lost, "unsent_at_close": self.unsent_at_close,
                               "disconnected_seconds": round(self.disconnected_seconds, 3)}
        if self.received is not None:
            doc.update(received=self.received, lost=self.lost, outliers=self.outliers,
                       not_seen_before=self.before, not_seen_after=self.after)
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
    live_last: str = ""              # after live changes: what it followed at the end ("6,000 ev/s", "profile ...")
    paused_seconds: float = 0.0      # time spent paused
    ends: Ends | None = None         # with a local sink: what sequence accounting cannot see (by the sent counts)
    unproven: tuple[str, ...] = ()   # sources of the mix whose form carries no stream and number ("name (why)")
    unanswered: dict[int, int] = field(default_factory=dict)   # UDP ports that only refused -> what was sent there
    refusals: dict[int, int] | None = None   # UDP port -> refused there, as the run watched it (None: from the workers)
    unnumbered_injected: int = 0     # scenario messages in forms without stream and number: the sink took them for ours
    numbered_injected: int = 0       # scenario messages in their own stream: a sink counts it apart (foreign)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def refused_by_port(self) -> dict[int, int]:
        """UDP: datagrams the kernel refused (ICMP port unreachable: nothing listens), by port (the run's
        watch when it has one: it knows where each was sent when a reload moved the ports)."""
        if self.transport in ("tcp", "tls"):
            return {}
        if self.refusals is not None:
            return self.refusals
        ports: dict[int, int] = {}
        for w in self.workers:
            if w.port is not None and w.errors.get("refused"):
                ports[w.port] = ports.get(w.port, 0) + w.errors["refused"]
        return dict(sorted(ports.items()))

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
    def unsent_at_close(self) -> int:
        return sum(w.unsent_at_close for w in self.workers)

    @property
    def disconnected_seconds(self) -> float:
        return sum(w.disconnected_seconds for w in self.workers)

    @property
    def refused(self) -> int:
        return sum(self.errors.values())

    @property
    def shortfall(self) -> int | None:
        """Planned events that were not sent (down time, refusals, a run cut short); None: no plan."""
        return None if self.planned is None else self.planned - self.sent

    @property
    def sent_minus_received(self) -> int | None:
        """Sent minus what the sink got of the run's own streams: foreign messages (and those of streams
        over the cap, foreign too under a run) and outliers (numbers no worker sent) left out."""
        return None if self.sink is None else self.sent - (self.sink.run_received - self.unnumbered_injected)

    @property
    def unknown(self) -> list[str]:
        """Why the loss cannot be known (empty: it is): the sink's reasons, and streams it never saw."""
        if self.sink is None:
            return []
        why = self.sink.unknown()
        if self.unproven:                          # the run names the sources the sink could only guess at
            why = [w for w in why if not w.startswith(INTERLEAVED)]
            why.append(f"sources whose messages carry no sequence number: {', '.join(self.unproven)}; the numbers "
                       "they take are never seen, so the loss by sequence includes them")
        if self.ends is not None and self.ends.beyond:
            why.append(f"numbers above what {plural(self.ends.beyond, 'worker')} sent arrived (forged, or another "
                       "run's streams of the same names): the gaps before them are not loss")
        if self.ends is not None and self.ends.streams_never_seen:
            n = self.ends.streams_never_seen
            why.append(f"{self.ends.never_seen:,} events of {n:,} stream{'s' if n != 1 else ''} never seen by the sink "
                       "(another receiver on its ports, or all of it lost)")
        return why

    @property
    def lost(self) -> int | None:
        """Every event sent and not received, when it can be known: lost by sequence, and the numbers
        before the first or after the last one received (the sink read everything there was)."""
        if self.sink is None or self.unknown:
            return None
        return self.sink.lost + (self.ends.before + self.ends.after if self.ends else 0)

    @property
    def loss_percent(self) -> float | None:
        lost = self.lost
        return None if lost is None else 100.0 * lost / self.sent if self.sent else 0.0

    @classmethod
    def of(cls, snapshots: list[SlotSnapshot], seconds: float, target: str, rate: float,
           ports: tuple[int, ...] = (), cpus: tuple[int, ...] = (), peak_memory: int = 0, memory_limit: int = 0,
           sink: SinkTotals | None = None, streams: list[list[int]] | None = None,
           planned: int | None = None, profile: str = "", live_changes: int = 0,
           paused_seconds: float = 0.0) -> RunTotals:
        rows = []
        sequenced = sink is not None and streams is not None and sink.unsequenced < sink.received
        ends = Ends() if sequenced else None
        for i, s in enumerate(snapshots):
            received = lost = None
            outliers = before = after = 0
            if sink is not None and streams is not None and i < len(streams):
                row = streams[i]
                received, lost, outliers = row[C.STREAM_RECEIVED], stream_lost(row), row[C.STREAM_OUTLIERS]
                if row[C.STREAM_FIRST]:
                    before, after = row[C.STREAM_FIRST] - 1, max(0, s.sent - row[C.STREAM_NEXT])
                elif ends is not None and s.sent:
                    ends = Ends(ends.before, ends.after, ends.never_seen + s.sent, ends.streams_never_seen + 1,
                                ends.beyond)
                if ends is not None:
                    beyond = int(row[C.STREAM_NEXT] > s.sent)
                    ends = Ends(ends.before + before, ends.after + after, ends.never_seen, ends.streams_never_seen,
                                ends.beyond + beyond)
            rows.append(WorkerTotals(
                index=i, port=ports[i % len(ports)] if ports else None, cpu=cpus[i % len(cpus)] if cpus else None,
                state=s.state_name, sent=s.sent, bytes=s.bytes, errors=dict(zip(ERROR_KINDS, s.errors)),
                restarts=s.restarts, received=received, lost=lost, forgiven=s.forgiven, down_seconds=s.down_ns / 1e9,
                blocked_seconds=s.blocked_ns / 1e9, reconnects=s.reconnects,
                possibly_lost=possibly_lost(s), unsent_at_close=s.unsent_at_close,
                disconnected_seconds=s.disconnected_ns / 1e9, outliers=outliers, before=before, after=after))
        sums = SlotSums.of(snapshots)
        return cls(target=target, rate=rate, seconds=seconds, sent=sums.sent, bytes=sums.bytes, errors=sums.errors,
                   restarts=sums.restarts, transport=transports(snapshots),
                   peak_memory=peak_memory, memory_limit=memory_limit, workers=tuple(rows), sink=sink,
                   planned=planned, profile=profile, live_changes=live_changes, paused_seconds=paused_seconds,
                   ends=ends)

    def document(self) -> dict[str, Any]:
        """The summary as data (``--summary-json``, the perftest report)."""
        return {
            "target": self.target, "rate": self.rate, "seconds": self.seconds, "sent": self.sent,
            "bytes": self.bytes, "mean_rate": self.mean_rate, "planned": self.planned, "shortfall": self.shortfall,
            "forgiven": self.forgiven, "errors": self.errors, "restarts": self.restarts,
            "refused_by_port": {str(port): n for port, n in self.refused_by_port.items()},
            "sent_to_unanswered_ports": {str(port): n for port, n in self.unanswered.items()},
            "blocked_seconds": round(self.blocked_seconds, 3), "reconnects": self.reconnects,
            "possibly_lost": self.possibly_lost, "unsent_at_close": self.unsent_at_close,
            "disconnected_seconds": round(self.disconnected_seconds, 3),
            "peak_memory_bytes": self.peak_memory, "transport": self.transport or "-",
            "workers": [{**w.document(), "lost": None} if self.unknown else w.document() for w in self.workers],
            "sink": self.sink.document() if self.sink is not None else None,
            "sent_minus_received": self.sent_minus_received, "profile": self.profile or None,
            "scenario_messages": {"in_their_stream": self.numbered_injected, "unnumbered": self.unnumbered_injected}
            if self.numbered_injected or self.unnumbered_injected else None,
            "timing": self.timing or None,
            "live_changes": self.live_changes, "live_last": self.live_last or None,
            "paused_seconds": round(self.paused_seconds, 3),
            "instance": self.instance, "instances": self.instances, "fleet_rate": self.fleet_rate,
            "run_id": self.run_id, "start": self.start.document() if self.start is not None else None,
            "lost": self.lost, "loss_percent": self.loss_percent,
            "loss_verdict": None if self.sink is None else "unknown" if self.unknown else "counted",
            "loss_unknown_because": self.unknown,
            "not_seen_by_sequence": None if self.ends is None else {
                "before_first": self.ends.before, "after_last": self.ends.after, "streams_never_seen":
                self.ends.streams_never_seen, "events_of_streams_never_seen": self.ends.never_seen},
            **self.extra,
        }
