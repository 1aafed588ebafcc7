"""Shared-memory counter slots: workers write, the supervisor and the web process read.

It lives in the engine because the hot path writes it; it imports nothing but the standard library.

The block is an anonymous shared ``mmap`` created before the children are forked, so every
process of one run sees the same bytes. Layout::

    offset 0                 slot 0: SLOT_FIELDS unsigned 64-bit little-endian integers
    offset SLOT_BYTES        slot 1
    ...

One slot per worker index (never per pid), so a restarted worker continues its predecessor's
counts and totals never go down. A slot is 128 bytes (two cache lines) so two writers never share
a line. Each field has exactly one writer: the worker owns everything but ``RESTARTS``, which the
supervisor owns. Aligned 8-byte stores are atomic on the platforms we run on, so readers take
snapshots without locks; a snapshot may mix values a microsecond apart, never torn ones.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass

# Field indices within a slot.
SENT, BYTES, CALLS, ERR_REFUSED, ERR_QUEUE_FULL, ERR_UNREACHABLE, ERR_OTHER, HEARTBEAT_NS, \
    PID, STATE, RESTARTS, STARTED_NS, TRANSPORT = range(13)
ERROR_FIELDS = (ERR_REFUSED, ERR_QUEUE_FULL, ERR_UNREACHABLE, ERR_OTHER)
SLOT_FIELDS = 16
SLOT_BYTES = SLOT_FIELDS * 8

# Values of STATE.
STATE_EMPTY, STATE_STARTING, STATE_RUNNING, STATE_STOPPED, STATE_FAILED = range(5)
STATE_NAMES = ("empty", "starting", "running", "stopped", "failed")
# Values of TRANSPORT (0 = not chosen yet).
TRANSPORT_CODES = {"gso": 1, "sendmmsg": 2, "sendto": 3}
TRANSPORT_NAMES = {v: k for k, v in TRANSPORT_CODES.items()}


@dataclass(frozen=True)
class SlotSnapshot:
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

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state] if self.state < len(STATE_NAMES) else "unknown"


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
        """The raw fields of one slot (for blocks whose slots hold something else, e.g. sinks)."""
        return self.slot(index).tolist()

    def snapshot(self, index: int) -> SlotSnapshot:
        v = self.slot(index).tolist()
        return SlotSnapshot(
            sent=v[SENT], bytes=v[BYTES], calls=v[CALLS],
            errors=(v[ERR_REFUSED], v[ERR_QUEUE_FULL], v[ERR_UNREACHABLE], v[ERR_OTHER]),
            heartbeat_ns=v[HEARTBEAT_NS], pid=v[PID], state=v[STATE], restarts=v[RESTARTS],
            started_ns=v[STARTED_NS], transport=TRANSPORT_NAMES.get(v[TRANSPORT], ""),
        )

    def snapshots(self, count: int | None = None) -> list[SlotSnapshot]:
        """Slots ``0 .. count-1`` (all of them by default)."""
        return [self.snapshot(i) for i in range(self.slots if count is None else min(count, self.slots))]
