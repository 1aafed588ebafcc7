"""Every shared-memory layout of a run, and every state code: the one place that defines them.

All blocks are anonymous shared ``mmap``\\ s created by the parent before it forks, so every
process of one run sees the same bytes. Each value has exactly one writer; aligned 8-byte stores
are atomic on the platforms we run on, so readers take snapshots without locks (a snapshot may
mix values a microsecond apart, never torn ones). Slots are keyed by index, never by pid, so a
restarted process carries its predecessor's counts on and totals never go down.

``CounterBlock`` (worker slots, sink slots and stream slots all use it)::

    offset 0                slot 0: SLOT_FIELDS unsigned 64-bit little-endian integers
    offset SLOT_BYTES       slot 1
    ...

A slot is 256 bytes (four cache lines) so two writers never share a line.

**Worker slot** (one per worker index; the worker writes every field but ``RESTARTS`` and
``DOWN_NS``, which the supervisor owns, and ``STANDBY_PID``, which a replacement waiting to take
the slot over writes): ``SENT`` events accepted by the kernel, ``BYTES``, ``CALLS`` (system
calls), the four ``ERROR_FIELDS`` (events refused, by ``ERROR_KINDS``), ``HEARTBEAT_NS`` and
``STARTED_NS`` (CLOCK_MONOTONIC; ``STARTED_NS`` is the worker's first send, 0 until then),
``PID``, ``STATE`` (``STATE_*``), ``TRANSPORT``
(``TRANSPORT_CODES``), ``FORGIVEN`` (events due while the worker was down or stalled that were
too old to make up), ``DOWN_NS`` (time the index had no worker sending, after the start),
``BLOCKED_NS`` (time spent waiting for the receiver: push-back), ``RECONNECTS`` and
``POSSIBLY_LOST`` (TCP/TLS: connections re-opened, and messages still in the kernel's send queue
when a connection dropped), ``LINK_DOWN`` (TCP/TLS, a gauge: 1 while the worker has no connection),
``DISCONNECTED_NS`` (TCP/TLS: time it had none, while it ran), ``UNSENT_AT_CLOSE`` (TCP/TLS:
messages still in the kernel's send queue when it closed its connection at the end) and
``PLAN_SEEN`` (the generation of the last plan it read: the supervisor waits on it to rebase an
unlimited run on what was really sent).

**Sink slot** (one per sink process; the sink process writes it): ``SINK_RECEIVED`` datagrams,
``SINK_BYTES``, ``SINK_GAPS`` (sequence numbers found missing when a later one arrived),
``SINK_LATE`` (of those, arrived after all), ``SINK_DUPLICATES``, ``SINK_UNSEQUENCED`` (without
``stream=/seq=``), ``SINK_KERNEL_DROPS`` (the kernel's drop counter for the sink's sockets),
``SINK_STREAMS``, ``SINK_HEARTBEAT_NS``, ``SINK_PID``, ``SINK_STATE`` (``STATE_*``),
``SINK_CALLS``; for TCP and TLS also ``SINK_CONNECTIONS`` (accepted), ``SINK_OPEN`` (open now),
``SINK_TORN`` (messages cut by a connection's end, not counted as received) and
``SINK_TLS_FAILURES`` (handshakes that failed) and ``SINK_REJECTED`` (connections closed for
sending something that is not syslog framing). What the sink could not count, or counted apart
(``loggend.sink.accounting``): ``SINK_OUTLIERS`` (a gauge: numbers too far from their stream to be
gaps), ``SINK_STALE`` (arrived below forgotten gap ranges), ``SINK_GAPS_FORGOTTEN`` (ranges over
the caps), ``SINK_OVERFLOW`` (messages of streams beyond the stream cap), ``SINK_FOREIGN`` and
``SINK_FOREIGN_STREAMS`` (messages and streams the run did not announce; never in the figures
above), ``SINK_BACKLOG_BYTES`` (a gauge: bytes queued for it in the kernel, read once a second),
``SINK_UNREAD`` (datagrams it read without accounting them at its stop, out of time) and
``SINK_UNREAD_BYTES`` (bytes still queued when it gave up). The parent owns three fields:
``SINK_ABANDONED`` (times a sink process ended without accounting its queue: killed, crashed),
``SINK_ABANDONED_BYTES`` (what was queued for it then) and ``SINK_OTHER_SOCKETS`` (sockets of
others receiving on its ports; slot 0 only). ``SINK_DROPPED_CAP`` (TCP/TLS connections refused,
or closed silent, at the cap of connections per process), ``SINK_DROPPED_IDLE`` (closed after
too long without a byte) and ``SINK_EMPTY`` (empty frames and blank lines: no events, not in
``SINK_RECEIVED``). Net loss is always ``gaps - late``; nothing else is
called "lost".

**Stream slot** (what one sink process got of one stream; written by that process):
``STREAM_RECEIVED``, ``STREAM_GAPS``, ``STREAM_DUPLICATES``, ``STREAM_LATE``, ``STREAM_OUTLIERS``,
``STREAM_STALE``, ``STREAM_FIRST`` (the lowest number received, plus one; 0: none yet) and
``STREAM_NEXT`` (one past the highest in order), and from field ``STREAM_NAME`` on the stream's
name (``STREAM_NAME_BYTES``, UTF-8, NUL-padded). Each sink process has its own range of slots
(sink process ``k`` from ``k * width``), since one stream may reach two of them (a restarted
worker's new source port hashes to another): readers add the ranges up (``loggend.report.totals``).
Under a run the supervisor announces worker ``i``'s stream name in slot ``i`` (the first range):
a sink maps a stream to ``k * width + i`` by this table, never by guessing from the name, and a
stream nobody announced is not a worker's. A standalone sink (``loggend sink``) has no
announcements: each of its processes names the first ``STREAM_SLOTS_PER_SINK`` streams it sees in
its own range (``width = STREAM_SLOTS_PER_SINK``), so a dashboard can show them.

**Board**: one JSON document with a sequence lock (layout in ``Board``).
"""

from __future__ import annotations

import json
import mmap
import struct
import time
from dataclasses import dataclass
from typing import Any

SLOT_FIELDS = 32
SLOT_BYTES = SLOT_FIELDS * 8

# States, shared by every kind of child (worker, sink process). READY: set up, waiting for the
# plan to start (or for the worker it replaces to stop).
STATE_EMPTY, STATE_STARTING, STATE_RUNNING, STATE_STOPPED, STATE_FAILED, STATE_READY = range(6)
STATE_NAMES = ("empty", "starting", "running", "stopped", "failed", "ready")

# --- worker slot ---------------------------------------------------------------------------------
SENT, BYTES, CALLS, ERR_REFUSED, ERR_QUEUE_FULL, ERR_UNREACHABLE, ERR_OTHER, HEARTBEAT_NS, \
    PID, STATE, RESTARTS, STARTED_NS, TRANSPORT, FORGIVEN, DOWN_NS, STANDBY_PID, BLOCKED_NS, RECONNECTS, \
    POSSIBLY_LOST, LINK_DOWN, DISCONNECTED_NS, UNSENT_AT_CLOSE, PLAN_SEEN = range(23)
ERROR_FIELDS = (ERR_REFUSED, ERR_QUEUE_FULL, ERR_UNREACHABLE, ERR_OTHER)
ERROR_KINDS = ("refused", "queue_full", "unreachable", "other")     # the kinds, in ERROR_FIELDS order
# Values of TRANSPORT (0 = not chosen yet).
TRANSPORT_CODES = {"gso": 1, "sendmmsg": 2, "sendto": 3, "tcp": 4, "tls": 5}
TRANSPORT_NAMES = {v: k for k, v in TRANSPORT_CODES.items()}

# --- sink slot -----------------------------------------------------------------------------------
SINK_RECEIVED, SINK_BYTES, SINK_GAPS, SINK_LATE, SINK_DUPLICATES, SINK_UNSEQUENCED, SINK_KERNEL_DROPS, \
    SINK_STREAMS, SINK_HEARTBEAT_NS, SINK_PID, SINK_STATE, SINK_CALLS, SINK_CONNECTIONS, SINK_OPEN, SINK_TORN, \
    SINK_TLS_FAILURES, SINK_REJECTED, SINK_OUTLIERS, SINK_STALE, SINK_GAPS_FORGOTTEN, SINK_OVERFLOW, SINK_FOREIGN, \
    SINK_FOREIGN_STREAMS, SINK_BACKLOG_BYTES, SINK_UNREAD, SINK_UNREAD_BYTES, SINK_ABANDONED, \
    SINK_ABANDONED_BYTES, SINK_OTHER_SOCKETS, SINK_DROPPED_CAP, SINK_DROPPED_IDLE, SINK_EMPTY = range(32)
SINK_PARENT_FIELDS = (SINK_ABANDONED, SINK_ABANDONED_BYTES, SINK_OTHER_SOCKETS)     # the parent writes these

# --- stream slot ---------------------------------------------------------------------------------
STREAM_RECEIVED, STREAM_GAPS, STREAM_DUPLICATES, STREAM_LATE, STREAM_OUTLIERS, STREAM_STALE, STREAM_FIRST, \
    STREAM_NEXT = range(8)
STREAM_SLOTS_PER_SINK = 64                    # a standalone sink process names this many streams
STREAM_NAME = 24                              # fields 24..31: the announced name
STREAM_NAME_BYTES = (SLOT_FIELDS - STREAM_NAME) * 8


def state_name(state: int) -> str:
    return STATE_NAMES[state] if state < len(STATE_NAMES) else "unknown"


@dataclass(frozen=True)
class SlotSnapshot:
    """One worker slot, read at once."""

    sent: int
    bytes: int
    calls: int
    errors: tuple[int, int, int, int]
    heartbeat_ns: int
    pid: int
    state: int
    restarts: int
    started_ns: int             # CLOCK_MONOTONIC when sending began, like heartbeat_ns
    transport: str
    forgiven: int = 0
    down_ns: int = 0
    blocked_ns: int = 0
    reconnects: int = 0
    possibly_lost: int = 0
    link_down: bool = False
    disconnected_ns: int = 0
    unsent_at_close: int = 0

    @property
    def state_name(self) -> str:
        return state_name(self.state)


class CounterBlock:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, max(1, slots) * SLOT_BYTES)
        self._view = memoryview(self._map).cast("Q")

    def slot(self, index: int) -> memoryview:
        """The writable 64-bit fields of one slot."""
        if not 0 <= index < self.slots:
            raise IndexError(f"slot {index} outside 0..{self.slots - 1}")
        return self._view[index * SLOT_FIELDS:(index + 1) * SLOT_FIELDS]

    def values(self, index: int) -> list[int]:
        """The raw fields of one slot (sink and stream slots are read this way)."""
        return self.slot(index).tolist()

    def set_name(self, index: int, name: bytes) -> None:
        """Announce ``name`` in slot ``index`` (stream slots); at most STREAM_NAME_BYTES."""
        if len(name) > STREAM_NAME_BYTES:
            raise ValueError(f"stream name {name!r} is longer than {STREAM_NAME_BYTES} bytes")
        start = index * SLOT_BYTES + STREAM_NAME * 8
        self._map[start:start + STREAM_NAME_BYTES] = name.ljust(STREAM_NAME_BYTES, b"\0")

    def name(self, index: int) -> bytes:
        start = index * SLOT_BYTES + STREAM_NAME * 8
        return self._map[start:start + STREAM_NAME_BYTES].rstrip(b"\0")

    def named(self, count: int | None = None) -> list[tuple[int, bytes]]:
        """(slot, name) of every named slot among the first ``count`` (all by default)."""
        count = self.slots if count is None else min(count, self.slots)
        raw = self._map[:count * SLOT_BYTES]
        out = []
        for i in range(count):
            start = i * SLOT_BYTES + STREAM_NAME * 8
            name = raw[start:start + STREAM_NAME_BYTES].rstrip(b"\0")
            if name:
                out.append((i, name))
        return out

    def names(self, count: int | None = None) -> dict[bytes, int]:
        """The announced name -> slot table (of the first ``count`` slots; all by default)."""
        return {name: i for i, name in self.named(count)}

    def rows(self, count: int) -> list[list[int]]:
        """The raw fields of slots ``0 .. count-1``."""
        return [self.values(i) for i in range(min(count, self.slots))]

    def snapshot(self, index: int) -> SlotSnapshot:
        v = self.slot(index).tolist()
        return SlotSnapshot(
            sent=v[SENT], bytes=v[BYTES], calls=v[CALLS],
            errors=(v[ERR_REFUSED], v[ERR_QUEUE_FULL], v[ERR_UNREACHABLE], v[ERR_OTHER]),
            heartbeat_ns=v[HEARTBEAT_NS], pid=v[PID], state=v[STATE], restarts=v[RESTARTS],
            started_ns=v[STARTED_NS], transport=TRANSPORT_NAMES.get(v[TRANSPORT], ""),
            forgiven=v[FORGIVEN], down_ns=v[DOWN_NS], blocked_ns=v[BLOCKED_NS], reconnects=v[RECONNECTS],
            possibly_lost=v[POSSIBLY_LOST], link_down=bool(v[LINK_DOWN]), disconnected_ns=v[DISCONNECTED_NS],
            unsent_at_close=v[UNSENT_AT_CLOSE],
        )

    def snapshots(self, count: int | None = None) -> list[SlotSnapshot]:
        """Worker slots ``0 .. count-1`` (all of them by default)."""
        return [self.snapshot(i) for i in range(self.slots if count is None else min(count, self.slots))]


BOARD_BYTES = 64 << 10
BOARD_HEADER = struct.Struct("<QQ")
BOARD_READ_RETRIES = 100


class Board:
    """The run board: what the run *is* (config in force, start time, memory), for the web process.

    Written only by the supervisor (or the standalone sink's parent), read by the web process,
    with a sequence lock instead of a mutex::

        offset 0   u64 generation   odd while a write is in progress
        offset 8   u64 length       bytes of JSON that follow
        offset 16  JSON, UTF-8      at most BOARD_BYTES - 16

    A reader copies the document and retries when the generation was odd or changed meanwhile.
    """

    def __init__(self, size: int = BOARD_BYTES) -> None:
        self.size = size
        self._map = mmap.mmap(-1, size)
        self.publish({})

    def publish(self, document: dict[str, Any]) -> None:
        data = json.dumps(document, separators=(",", ":")).encode()
        if len(data) > self.size - BOARD_HEADER.size:
            raise ValueError(f"board document of {len(data)} bytes does not fit in {self.size}")
        generation, _ = BOARD_HEADER.unpack_from(self._map, 0)
        BOARD_HEADER.pack_into(self._map, 0, generation + 1, 0)                  # odd: being written
        self._map[BOARD_HEADER.size:BOARD_HEADER.size + len(data)] = data
        BOARD_HEADER.pack_into(self._map, 0, generation + 2, len(data))          # even: complete

    def generation(self) -> int:
        """Changes with every publish: a reader re-reads the document only when this moved."""
        return int(BOARD_HEADER.unpack_from(self._map, 0)[0])

    def read(self) -> dict[str, Any]:
        for _ in range(BOARD_READ_RETRIES):
            generation, length = BOARD_HEADER.unpack_from(self._map, 0)
            data = self._map[BOARD_HEADER.size:BOARD_HEADER.size + length]
            again, _ = BOARD_HEADER.unpack_from(self._map, 0)
            if generation % 2 == 0 and again == generation:
                result: dict[str, Any] = json.loads(data) if data else {}
                return result
            time.sleep(0.0001)
        return {}
