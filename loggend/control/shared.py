"""A run's shared memory as the parent sees it: the counter blocks, the board, and the totals.

The parent creates every block before it forks (layouts in ``loggend.engine.counters``); children
write their slots, the web process reads them (``Sources``), and the parent adds them up into
``RunTotals`` for the live line and every summary.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from loggend.config import MAX_SINK_PROCESSES, MAX_WORKERS, Config
from loggend.content import mix
from loggend.engine.counters import Board, CounterBlock, SlotSnapshot
from loggend.parsers import format_ports
from loggend.profiles import format_profile
from loggend.report.sources import Sources
from loggend.report.totals import RunTotals, SinkTotals, Start, merge_streams

STREAM_WIDTH = MAX_WORKERS           # stream slots per sink process: one per worker index


class SharedRun:
    def __init__(self) -> None:
        self.block = CounterBlock(MAX_WORKERS)                   # worker slots
        self.sink_block = CounterBlock(MAX_SINK_PROCESSES)       # sink process slots
        # what each local sink process got of each stream (sink k: slots from k * STREAM_WIDTH); names in
        # the first STREAM_WIDTH (an anonymous mapping: only the pages written cost memory)
        self.stream_block = CounterBlock(STREAM_WIDTH * MAX_SINK_PROCESSES)
        self.board = Board()
        self.plan_board = Board()                                # the rate plan the workers follow
        self.slots_used = 0              # worker slots that ever had a worker (a reload may shrink the pool)
        self.sink_slots = 0
        self.started = 0.0               # the parent's clock at the start
        self.started_unix = 0.0
        self.first_send_ns = 0           # CLOCK_MONOTONIC of the run's first send
        self.first_send_unix = 0.0       # the same on the wall clock

    @property
    def sources(self) -> Sources:
        return Sources(self.block, self.board, self.sink_block, self.stream_block)

    def start(self, now: float, workers: int) -> None:
        self.started, self.started_unix = now, time.time()
        self.slots_used = workers

    def snapshots(self) -> list[SlotSnapshot]:
        return self.block.snapshots(self.slots_used)

    def sink_totals(self) -> SinkTotals | None:
        return SinkTotals.of(self.sink_block.rows(self.sink_slots)) if self.sink_slots else None

    def note_first_send(self) -> None:
        """Remember when the run's first event went out (a worker's STARTED_NS is its first send)."""
        if self.first_send_ns:
            return
        first = min((s.started_ns for s in self.snapshots() if s.started_ns and s.sent), default=0)
        if first:
            self.first_send_ns = first
            self.first_send_unix = time.time() - (time.monotonic_ns() - first) / 1e9

    def totals(self, config: Config, peak_memory: int, now: float, planned: int | None = None,
               start_at: float | None = None, requested_ns: int = 0, run_id: str = "", live_changes: int = 0,
               paused_seconds: float = 0.0) -> RunTotals:
        """The run so far; its time runs from the first send of the run to the last heartbeat.
        ``start_at``/``requested_ns``: the start time asked for (unix / CLOCK_MONOTONIC), if any."""
        snaps = self.snapshots()
        self.note_first_send()
        last = max((s.heartbeat_ns for s in snaps), default=0)
        seconds = (last - self.first_send_ns) / 1e9 if self.first_send_ns and last else now - self.started
        c = config
        totals = RunTotals.of(snaps, max(0.0, seconds), c.target, c.instance_rate, c.ports, c.cpus, peak_memory,
                              c.memory_limit, self.sink_totals(),
                              self.stream_rows() if self.sink_slots else None, planned,
                              format_profile(c.profile_spec) if c.profile_spec else "", live_changes,
                              paused_seconds)
        start = None
        if self.first_send_ns:
            late = (self.first_send_ns - requested_ns) / 1e6 if requested_ns else None
            start = Start(start_at, self.first_send_unix, late)
        return replace(totals, timing=c.rate_text if c.replay_timing else "", instance=c.instance,
                       instances=c.instances, fleet_rate=c.rate, run_id=run_id, start=start,
                       unproven=tuple(mix.unproven(c.messages)))

    def stream_rows(self) -> list[list[int]]:
        """Per worker: what the local sink processes got of its stream, added up."""
        return merge_streams(self.stream_block, self.sink_slots, STREAM_WIDTH, self.slots_used)

    def publish(self, config: Config, **state: Any) -> None:
        """The board: the config in force and what the parent measured (memory, restarts...)."""
        c = config
        self.board.publish({
            "target": c.target, "host": c.host, "ports": list(c.ports), "ports_text": format_ports(c.ports),
            "rate": c.instance_rate, "fleet_rate": c.rate, "instance": c.instance, "instances": c.instances,
            "workers": c.workers, "slots": self.slots_used, "cpus": list(c.cpus),
            "transport": c.transport, "duration": c.duration, "started_unix": self.started_unix,
            "memory_limit": c.memory_limit, "source": c.source, "sink_slots": self.sink_slots,
            "profile": format_profile(c.profile_spec) if c.profile_spec else None, "stream_width": STREAM_WIDTH,
            "mode": "run", **state,
        })
