"""What the web process reads and what it made of it: the sampler thread and its latest frame.

A sampler thread reads the shared counters and the run board once per interval and builds one
snapshot document; ``/api/metrics`` returns the latest, every ``/ws`` client is sent each new one
from its own thread (a slow client only delays itself and skips to the newest frame).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psutil

from loggend.engine.counters import SlotSnapshot
from loggend.report.sources import Sources
from loggend.report.totals import RunTotals, SinkTotals, SlotSums, merge_streams, named_streams, unheard_instances
from loggend.web.metrics import (
    FULL_SECOND,
    History,
    ProcFigures,
    Rates,
    SystemFigures,
    sink_document,
    snapshot_document,
    stream_documents,
    summary_document,
)

WS_WAIT_FACTOR = 5               # a /ws client hears something at least every 5 intervals


class ProcSampler:
    """CPU and memory of the worker processes and of the machine, through psutil."""

    def __init__(self) -> None:
        self.procs: dict[int, psutil.Process] = {}
        self.last: dict[int, tuple[float, float]] = {}     # pid -> (time, cpu seconds)
        psutil.cpu_percent()                               # primes the system-wide figure

    def workers(self, pids: list[int]) -> dict[int, ProcFigures]:
        out: dict[int, ProcFigures] = {}
        now = time.monotonic()
        for pid in dict.fromkeys(pids):     # a process serving several workers is sampled once
            try:
                proc = self.procs.get(pid) or self.procs.setdefault(pid, psutil.Process(pid))
                with proc.oneshot():
                    times = proc.cpu_times()
                    rss = proc.memory_info().rss
            except psutil.Error:
                self.procs.pop(pid, None)
                continue
            cpu = times.user + times.system
            then, before = self.last.get(pid, (now, cpu))
            self.last[pid] = (now, cpu)
            percent = 100.0 * (cpu - before) / (now - then) if now > then else 0.0
            out[pid] = ProcFigures(cpu_seconds=cpu, cpu_percent=percent, rss_bytes=rss)
        for gone in set(self.procs) - set(pids):
            self.procs.pop(gone, None)
            self.last.pop(gone, None)
        return out

    @staticmethod
    def system() -> SystemFigures:
        mem = psutil.virtual_memory()
        return SystemFigures(cpu_percent=psutil.cpu_percent(), memory_percent=mem.percent,
                             memory_used_bytes=mem.total - mem.available, memory_total_bytes=mem.total,
                             processes=len(psutil.pids()))


class WebState:
    """The sampler thread and what it produced, shared by the request threads."""

    def __init__(self, sources: Sources, interval: float, clock: Callable[[], float] = time.monotonic,
                 wallclock: Callable[[], float] = time.time) -> None:
        self.sources = sources
        self.interval = interval
        self.clock = clock
        self.wallclock = wallclock
        self.rates = Rates()
        self.sink_rates = Rates()
        self.refusals = Rates()             # the slots' refused counts: which workers are refused now
        self.history = History()
        self.sampler = ProcSampler()
        self.procs: dict[int, ProcFigures] = {}
        self.frame: dict[str, Any] = {}
        self.frame_json = "{}"
        self.frame_number = 0
        self.changed = threading.Condition()
        self._stop = threading.Event()

    def slots(self, board: dict[str, Any]) -> list[SlotSnapshot]:
        return self.sources.block.snapshots(int(board.get("slots", board.get("workers", 1))))

    def sink_rows(self, board: dict[str, Any] | None = None) -> list[list[int]]:
        board = self.sources.board.read() if board is None else board
        count = int(board.get("sink_slots", 0))
        if self.sources.sink_block is None or not count:
            return []
        return self.sources.sink_block.rows(count)

    def sink_source(self) -> tuple[list[list[int]], dict[str, Any]]:
        """The sink slots and the board they are labelled from (the sink's Prometheus collector)."""
        board = self.sources.board.read()
        return self.sink_rows(board), board

    def stream_rows(self, board: dict[str, Any], slots: list[SlotSnapshot]) -> list[list[int]] | None:
        """Per worker: what the sink processes got of its stream, added up over their ranges."""
        if self.sources.stream_block is None or not int(board.get("sink_slots", 0)) or board.get("mode") == "sink":
            return None
        width = int(board.get("stream_width", len(slots)))
        return merge_streams(self.sources.stream_block, int(board["sink_slots"]), width, len(slots))

    def named_streams(self, board: dict[str, Any] | None = None) -> dict[str, list[int]]:
        """Stream name -> what the sink processes got of it: a run's announced streams, or the streams a
        sink on its own named (each process in its own range)."""
        board = self.sources.board.read() if board is None else board
        block, sinks = self.sources.stream_block, int(board.get("sink_slots", 0))
        if block is None or not sinks:
            return {}
        width = int(board.get("stream_width", 0)) or block.slots // max(1, sinks)
        if board.get("mode") == "sink":
            return named_streams(block, sinks, width)
        count = int(board.get("slots", board.get("workers", 0)))
        rows = merge_streams(block, sinks, width, count)
        return {name.decode("utf-8", "replace"): rows[i] for i, name in block.named(min(count, width))}

    def sink_totals(self, board: dict[str, Any]) -> SinkTotals | None:
        rows = self.sink_rows(board)
        if not rows:
            return None
        totals = SinkTotals.of(rows)
        expected = int(board.get("expect_instances", 0))
        if expected:                          # `loggend sink --expect-instances`: who has not been heard from yet
            unheard = () if totals.overflow else unheard_instances(self.named_streams(board), expected)
            totals = replace(totals, standalone=True, unheard=unheard, expected=expected)
        return totals

    def sink(self, board: dict[str, Any], slots: list[SlotSnapshot]) -> dict[str, Any] | None:
        sent = SlotSums.of(slots).sent if int(board.get("workers", 0)) else None     # None: a sink on its own
        return sink_document(self.sink_totals(board), sent, self.sink_rates.rate(1))

    def sample(self) -> None:
        board = self.sources.board.read()
        slots = self.slots(board)
        now, wall = self.clock(), self.wallclock()
        self.rates.add(now, [s.sent for s in slots])
        self.refusals.add(now, [s.errors[0] for s in slots])
        self.sink_rates.add(now, [row[0] for row in self.sink_rows(board)])
        self.procs = self.sampler.workers([s.pid for s in slots if s.pid])
        frame = snapshot_document(slots, board, self.rates, self.procs, self.sampler.system(), wall,
                                  time.monotonic_ns(), self.sink(board, slots), self.stream_rows(board, slots),
                                  self.refusals)
        if board.get("mode") == "sink":             # a sink on its own: its streams, for its own view
            streams = self.named_streams(board)
            frame["streams"] = stream_documents(streams)
            frame["streams_not_shown"] = max(0, len(streams) - len(frame["streams"]))
        own = board.get("mode") == "sink" and frame["sink"] is not None      # a sink's chart is what it received
        rates = self.sink_rates if own else self.rates
        if len(rates.times) > 1:
            eps = frame["sink"]["events_per_second"] if own else frame["events_per_second"]["1s"]
            self.history.add(wall, eps, frame["target"]["events_per_second"], per_second=rates.span(1) >= FULL_SECOND)
        with self.changed:
            self.frame = frame
            self.frame_json = json.dumps(frame)
            self.frame_number += 1
            self.changed.notify_all()

    def run(self) -> None:
        next_at = self.clock()
        while not self._stop.is_set():
            self.sample()
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - self.clock()))

    def start(self) -> None:
        self.sample()
        threading.Thread(target=self.run, name="sampler", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def latest(self) -> tuple[int, str]:
        with self.changed:
            return self.frame_number, self.frame_json

    def wait_frame(self, after: int) -> tuple[int, str]:
        with self.changed:
            self.changed.wait_for(lambda: self.frame_number > after, timeout=self.interval * WS_WAIT_FACTOR)
            return self.frame_number, self.frame_json

    def collector_source(self) -> tuple[list[SlotSnapshot], dict[str, Any], dict[int, ProcFigures]]:
        board = self.sources.board.read()
        return self.slots(board), board, self.procs

    def totals(self) -> RunTotals:
        """The run so far, from the counters and the board."""
        board = self.sources.board.read()
        slots = self.slots(board)
        started = float(board.get("started_unix", 0.0)) or self.wallclock()
        seconds = max(0.0, self.wallclock() - started)
        return RunTotals.of(slots, seconds, board.get("target", ""), float(board.get("rate", 0.0)),
                            peak_memory=int(board.get("peak_memory_bytes", 0)),
                            memory_limit=int(board.get("memory_limit", 0)), sink=self.sink_totals(board))

    def summary(self) -> dict[str, Any]:
        board = self.sources.board.read()
        slots = self.slots(board)
        started = float(board.get("started_unix", 0.0)) or self.wallclock()
        return summary_document(self.totals(), started, self.history, self.sink(board, slots))

    def history_points(self) -> list[tuple[float, float, float]]:
        return list(self.history.points)
