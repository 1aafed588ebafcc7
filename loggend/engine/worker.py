"""The worker: pace -> send a batch -> count, until stopped or the duration is over.

``Worker(spec, slot)`` does nothing to the process; the process that will run it calls
``init_process()`` (signals, CPU affinity, parent-death signal) and then ``run()``, which renders
the pool, opens the socket, picks the transport and loops. Per batch the loop makes one clock
read, one bucket grant, one ``sender.send`` and three counter stores; the timestamp is patched
when the wall clock's second changes; the heartbeat and error counters are published every
``TICK_SECONDS``. After set-up the garbage collector is frozen and disabled: the loop makes no
reference cycles.

Imports: the standard library, ``loggend.engine`` and the import-free ``loggend.errors`` only
(a test holds this).
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable

from loggend.engine import counters as C
from loggend.engine.pacing import TokenBucket
from loggend.engine.process import init_child, log_stderr
from loggend.engine.render import Corpus, build_pool, timestamp_at
from loggend.engine.spec import WorkerSpec
from loggend.engine.transport import (
    Sender,
    TransportError,
    choose,
    fall_back,
    open_socket,
)
from loggend.errors import EXIT_BOOT_FAILED, EXIT_OK

TICK_SECONDS = 0.05           # heartbeat / error publication interval
COUNT_GRACE = 1.0             # a counted run may overrun its duration this long to finish its count
ERROR_BACKOFF = 0.001         # pause after a failed send, so a dead target never spins a core

Log = Callable[[str], None]


class Worker:
    def __init__(
        self,
        spec: WorkerSpec,
        slot: memoryview,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        log: Log = log_stderr,
        corpus: Corpus | None = None,
    ) -> None:
        self.spec = spec
        self.corpus = corpus
        self.slot = slot
        self.clock = clock
        self.wallclock = wallclock
        self.sleep = sleep
        self.log = log
        self.alive = True
        self.sender: Sender | None = None

    # --- per-process set-up ----------------------------------------------------------------------

    def init_process(self) -> None:
        init_child(f"loggend-w{self.spec.index}", self._handle_stop, self.spec.cpu)

    def _handle_stop(self, signum: int, frame: object) -> None:
        self.alive = False

    # --- the loop --------------------------------------------------------------------------------------

    def run(self) -> int:
        """Set up, then send until stopped; the exit status for the process."""
        if self.setup() is None:
            return EXIT_BOOT_FAILED
        self.loop()
        return EXIT_OK

    def setup(self) -> Sender | None:
        """Render the pool, open the socket, pick the transport; None (logged) when that fails."""
        spec, slot = self.spec, self.slot
        slot[C.STATE] = C.STATE_STARTING
        slot[C.PID] = os.getpid()
        try:
            pool = build_pool(spec.messages, spec.index, spec.stream, self.wallclock(), self.corpus)
            self.corpus = None              # the shared pages are not needed any more
            sock = open_socket(spec.host, spec.port)
            sender, why = choose(spec.transport, sock, pool)
        except (OSError, TransportError) as err:
            self.log(f"worker {spec.index}: cannot start sending to {spec.host}:{spec.port}: {err}")
            slot[C.STATE] = C.STATE_FAILED
            return None
        if slot[C.SENT]:
            sender.seek(slot[C.SENT])       # a restart carries on the stream's sequence numbers
        self.log(f"worker {spec.index}: transport {why}")
        self.sender = sender
        slot[C.TRANSPORT] = C.TRANSPORT_CODES[sender.mode]
        return sender

    def loop(self) -> None:
        """Send until stopped or the duration is over (after ``setup``)."""
        assert self.sender is not None
        slot = self.slot
        gc.disable()          # no collection ever: it would touch (and copy) every page shared with the parent
        gc.freeze()
        slot[C.STARTED_NS] = slot[C.HEARTBEAT_NS] = time.monotonic_ns()
        slot[C.STATE] = C.STATE_RUNNING
        try:
            self._loop(self.sender)
        finally:
            slot[C.STATE] = C.STATE_STOPPED
            self.sender.close()

    def _loop(self, sender: Sender) -> None:
        spec, slot, clock, wallclock, sleep = self.spec, self.slot, self.clock, self.wallclock, self.sleep
        utc = spec.messages.timezone == "utc"
        pool = sender.pool
        base_sent, base_bytes, base_calls = slot[C.SENT], slot[C.BYTES], slot[C.CALLS]
        base_errors = [slot[f] for f in C.ERROR_FIELDS]
        bucket = TokenBucket(spec.rate, clock)
        start = bucket.start
        # With a count, send until the slot's total reaches it (exactly rate * duration in a run);
        # the last events fall due right at the end, so the end only bounds a run that falls behind.
        if spec.count:
            remaining = max(0, spec.count - base_sent)
        else:
            remaining = round(spec.rate * spec.duration) if spec.rate and spec.duration else -1
        end = start + spec.duration + (COUNT_GRACE if remaining >= 0 else 0) if spec.duration else math.inf
        next_tick = start
        next_second = math.floor(wallclock()) + 1
        sent = 0
        while self.alive:
            now = clock()
            if now >= next_tick:
                if now >= end:
                    break
                slot[C.HEARTBEAT_NS] = time.monotonic_ns()
                next_tick = now + TICK_SECONDS
            wall = wallclock()
            if wall >= next_second:
                pool.set_stamp(timestamp_at(wall, utc))
                next_second = math.floor(wall) + 1
            budget = bucket.available(now)
            if not budget:
                wait = bucket.delay(now)
                if wait:
                    sleep(min(wait, next_tick - now, TICK_SECONDS))
                continue
            if remaining >= 0:
                if remaining == 0:
                    break
                budget = min(budget, remaining)
            n = sender.send(budget)
            sent += n
            slot[C.SENT] = base_sent + sent
            slot[C.BYTES] = base_bytes + sender.bytes
            slot[C.CALLS] = base_calls + sender.calls
            bucket.take(n)
            if remaining >= 0:
                remaining -= n
            if sender.refused:
                sender = self._after_error(sender, bucket, base_errors)
        slot[C.HEARTBEAT_NS] = time.monotonic_ns()

    def _after_error(self, sender: Sender, bucket: TokenBucket, base_errors: list[int]) -> Sender:
        """Charge, count and pace a failed send; switch transport if GSO turned out unusable."""
        replacement = fall_back(sender)
        if replacement is not None:
            sender, why = replacement
            self.log(f"worker {self.spec.index}: transport {why}")
            self.sender = sender
            self.slot[C.TRANSPORT] = C.TRANSPORT_CODES[sender.mode]
            return sender
        bucket.take(sender.refused)
        for field, base, count in zip(C.ERROR_FIELDS, base_errors, sender.errors):
            self.slot[field] = base + count
        self.sleep(ERROR_BACKOFF)
        return sender
