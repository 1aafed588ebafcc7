"""The worker: pace -> send a batch -> count, until stopped, retired or its part of the run is done.

``Worker(spec, slot, plan)`` does nothing to the process; the process that will run it calls
``init_process()`` (signals, CPU affinity, parent-death signal, name) and then ``run()``:

1. ``setup``: render the pool, open the socket, pick the transport (a failure is a boot failure).
2. ``take_slot``: at a reload the worker it replaces is still sending; this one waits, set up, in
   standby (``STANDBY_PID``) until that one has stopped, then takes the slot over and continues
   its stream at the slot's ``SENT``. Then it waits (``STATE_READY``) until the plan has started
   and counts it in (a worker added by a reload waits for the plan that adds it).
3. ``loop``: per batch, one clock read, one pacer grant, one ``sender.send`` and three counter
   stores (``STARTED_NS`` once, right after the first send); the timestamp is patched when the
   wall clock's second changes (and once before the first send, so no message carries a stale
   second after a restart); every ``TICK_SECONDS`` the heartbeat and error counters are
   published. The plan's generation (one 8-byte read) is
   looked at per batch and the plan re-read when it moved, so a live rate change (``loggend ctl``)
   applies from the next burst: a worker that went on for a tick at the old rate after a cut to a
   tenth of it would stay silent most of a second, until the new due count caught up.

After set-up the garbage collector is frozen and disabled: the loop makes no reference cycles.

Imports: the standard library, ``loggend.engine`` and the import-free ``loggend.errors`` only
(a test holds this).
"""

from __future__ import annotations

import gc
import math
import os
import time
import zlib
from collections.abc import Callable

from loggend.engine import counters as C
from loggend.engine.journal import ERR, NOTICE, WARNING, Log
from loggend.engine.pacing import Pacer
from loggend.engine.process import init_child, log_stderr
from loggend.engine.render import Corpus, build_pool, frame_cap
from loggend.engine.schedule import PlanSource
from loggend.engine.spec import WorkerSpec
from loggend.engine.stream import StreamSender, open_stream
from loggend.engine.syscalls import release_free_memory
from loggend.engine.transport import Sender, Sending, TransportError, choose, fall_back, open_socket
from loggend.errors import EXIT_BOOT_FAILED, EXIT_OK

TICK_SECONDS = 0.1            # heartbeat / error / plan publication interval
COUNT_GRACE = 1.0             # a timed run may overrun its end this long to finish its count
ERROR_BACKOFF = 0.001         # pause after a failed send, so a dead target never spins a core
STANDBY_POLL = 0.002          # a replacement looks this often whether the worker it replaces stopped
START_POLL = 0.002            # a set-up worker looks this often whether the plan has started


def process_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie not yet reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


class Worker:
    def __init__(
        self,
        spec: WorkerSpec,
        slot: memoryview,
        plan: PlanSource,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        log: Log = log_stderr,
        corpus: Corpus | None = None,
    ) -> None:
        self.spec = spec
        self.slot = slot
        self.plan = plan
        self.clock = clock
        self.wallclock = wallclock
        self.sleep = sleep
        self.log = log
        self.corpus = corpus
        self.alive = True
        self.sender: Sending | None = None
        self.link = ""                    # TCP/TLS: the connection's state as last logged
        self.base_blocked = self.base_reconnects = self.base_possibly_lost = 0     # a previous life's counts

    # --- per-process set-up ----------------------------------------------------------------------

    def init_process(self) -> None:
        init_child(f"loggend-w{self.spec.index}", self._handle_stop, self.spec.cpu)

    def _handle_stop(self, signum: int, frame: object) -> None:
        self.alive = False

    def run(self) -> int:
        """Set up, take the slot, send until done; the exit status for the process."""
        if self.setup() is None:
            return EXIT_BOOT_FAILED
        if self.take_slot():
            self.loop()
        elif self.sender is not None:
            self.sender.close()
        return EXIT_OK

    def setup(self) -> Sending | None:
        """Render the pool, open the socket (connect), pick the transport; None (logged) when that fails."""
        spec, slot = self.spec, self.slot
        if not spec.takes_over:
            slot[C.STATE] = C.STATE_STARTING
            slot[C.PID] = os.getpid()
        try:
            plan = self.plan.read()
            cap = frame_cap(plan.profile.peak / plan.instances / max(1, plan.workers))
            pool = build_pool(spec.messages, spec.index, spec.stream, self.wallclock(), self.corpus, cap)
            self.corpus = None              # the shared pages are not needed any more
            release_free_memory()           # what building the pool left on the heap goes back to the system
            sender: Sending
            if spec.protocol == "udp":
                sender, why = choose(spec.transport, open_socket(spec.host, spec.port), pool)
            else:
                sender, why = open_stream(pool, spec.host, spec.port, spec.target_name,
                                          spec.tls if spec.protocol == "tls" else None)
        except (OSError, TransportError, ValueError, EOFError, zlib.error) as err:   # a replay file gone bad
            self.log(f"worker {spec.index}: cannot start sending to {spec.host}:{spec.port}: {err}", ERR)
            if not spec.takes_over:
                slot[C.STATE] = C.STATE_FAILED
            return None
        self.log(f"worker {spec.index}: transport {why}")
        if pool.replay is not None:
            r = pool.replay
            r.warn = lambda line: self.log(f"worker {spec.index}: {line}", WARNING)
            skipped = f", {r.source.too_long:,} longer than a datagram skipped" if r.source.too_long else ""
            share = (f"its {r.source.share_lines:,} lines of the file, repeated to fill a pass of "
                     f"{r.lines:,}" if r.source.fits else f"{r.lines:,} lines in its first pass")
            self.log(f"worker {spec.index}: replay: {share}, {r.unstamped:,} without a timestamp loggen rewrites "
                     f"(sent unchanged){skipped}")
        self.sender = sender
        return sender

    def take_slot(self) -> bool:
        """Wait for the worker this one replaces, take the slot over, wait for the plan's start.
        False when stopped meanwhile."""
        slot, old = self.slot, self.spec.takes_over
        if old:
            slot[C.STANDBY_PID] = os.getpid()
            while self.alive and slot[C.PID] == old and not process_gone(old) \
                    and slot[C.STATE] not in (C.STATE_STOPPED, C.STATE_FAILED):
                self.sleep(STANDBY_POLL)
            slot[C.STANDBY_PID] = 0
            if not self.alive:
                return False
        assert self.sender is not None
        self.sender.track(slot[C.SENT:C.SENT + 1])              # SENT is stored after every system call
        slot[C.PID] = os.getpid()
        slot[C.TRANSPORT] = C.TRANSPORT_CODES[self.sender.mode]
        if slot[C.SENT]:
            self.sender.seek(slot[C.SENT])      # a restart carries on the stream's sequence numbers
        slot[C.HEARTBEAT_NS] = time.monotonic_ns()
        slot[C.STATE] = C.STATE_READY
        plan = self.plan.read()
        while self.alive and (not plan.started or self.spec.index >= plan.workers):   # until the plan has it
            self.sleep(START_POLL)
            slot[C.HEARTBEAT_NS] = time.monotonic_ns()
            if self.plan.changed():
                plan = self.plan.read()
        return self.alive

    # --- the loop --------------------------------------------------------------------------------------

    def loop(self) -> None:
        """Send until stopped, retired or done (after ``setup`` and ``take_slot``)."""
        assert self.sender is not None
        slot = self.slot
        gc.disable()          # no collection ever: it would touch (and copy) every page shared with the parent
        gc.freeze()
        slot[C.HEARTBEAT_NS] = time.monotonic_ns()
        slot[C.STARTED_NS] = 0                              # set by the first send (see _loop)
        slot[C.STATE] = C.STATE_RUNNING
        try:
            self._loop(self.sender)
        finally:
            slot[C.HEARTBEAT_NS] = time.monotonic_ns()
            slot[C.STATE] = C.STATE_STOPPED
            self.sender.close()

    def _loop(self, sender: Sending) -> None:
        spec, slot, clock, wallclock, sleep = self.spec, self.slot, self.clock, self.wallclock, self.sleep
        plan_changed = self.plan.changed
        index = spec.index
        base_sent, base_bytes, base_calls = slot[C.SENT], slot[C.BYTES], slot[C.CALLS]
        base_errors = [slot[f] for f in C.ERROR_FIELDS]
        self.base_blocked, self.base_reconnects = slot[C.BLOCKED_NS], slot[C.RECONNECTS]
        self.base_possibly_lost = slot[C.POSSIBLY_LOST]
        plan = self.plan.read()
        pacer = Pacer(plan, index, slot[C.FORGIVEN], sum(base_errors))
        quota = pacer.quota()
        stop_at = pacer.end + (COUNT_GRACE if quota is not None else 0.0)    # a quota may need the grace
        wall = wallclock()
        sender.pool.set_time(wall)                          # the current second from the first datagram on
        next_second = math.floor(wall) + 1
        next_tick = 0.0
        sent = base_sent
        first = True
        while self.alive:
            now = clock()
            if now >= next_tick or plan_changed():
                slot[C.HEARTBEAT_NS] = time.monotonic_ns()
                slot[C.FORGIVEN] = pacer.forgiven
                self.publish_link(sender)
                next_tick = now + TICK_SECONDS
                if self.plan.changed():
                    plan = self.plan.read()
                    pacer.set_plan(plan)
                    quota = pacer.quota()
                    stop_at = pacer.end + (COUNT_GRACE if quota is not None else 0.0)
                if index >= plan.workers or now >= stop_at:
                    break                                   # retired by a reload, or the run is over
            if (quota is not None and sent >= quota) or now >= stop_at:
                break
            wall = wallclock()
            if wall >= next_second:                         # the pool in hand: a replay's is new every pass
                sender.pool.set_time(wall)
                next_second = math.floor(wall) + 1
            budget = pacer.grant(now, sent)
            if quota is not None:
                budget = min(budget, quota - sent)
            if budget <= 0:
                sleep(min(pacer.wait(now), TICK_SECONDS) or 0.0001)
                continue
            n = sender.send(budget)                         # the sender stores SENT as it goes
            if first and n:                                 # when sending really began (a fleet's start,
                slot[C.STARTED_NS] = time.monotonic_ns()    # a replacement's first send after down time)
                first = False
            sent += n
            slot[C.BYTES] = base_bytes + sender.bytes
            slot[C.CALLS] = base_calls + sender.calls
            if sender.refused:
                sender = self._after_error(sender, pacer, base_errors)
                quota = pacer.quota()
            else:                                           # the next burst's time is known: no second look
                wait = pacer.wait_after(now, n)
                if wait > 0:                                # not woken for the tick: it waits for the next
                    sleep(min(wait, TICK_SECONDS))          # burst (at most 20 ms late), saving a wake-up
        slot[C.FORGIVEN] = pacer.forgiven
        self.publish_link(sender)

    def publish_link(self, sender: Sending) -> None:
        """Push-back time, and for TCP/TLS reconnections and what a drop may have lost (logged once)."""
        slot = self.slot
        slot[C.BLOCKED_NS] = self.base_blocked + sender.blocked_ns
        if not isinstance(sender, StreamSender):
            return
        slot[C.RECONNECTS] = self.base_reconnects + sender.reconnects
        slot[C.POSSIBLY_LOST] = self.base_possibly_lost + sender.possibly_lost
        link = "up" if sender.sock is not None else "down"
        if link != self.link:
            where = f"worker {self.spec.index}: {sender.mode} to {sender.host}:{sender.port}"
            if link == "down":
                self.log(f"{where} lost ({sender.down_reason}); {sender.possibly_lost:,} messages possibly lost "
                         f"so far; reconnecting", WARNING)
            elif self.link:
                self.log(f"{where} reconnected ({sender.reconnects} reconnects)", NOTICE)
        self.link = link

    def _after_error(self, sender: Sending, pacer: Pacer, base_errors: list[int]) -> Sending:
        """Count and charge a failed send; switch transport if GSO turned out unusable."""
        replacement = fall_back(sender) if isinstance(sender, Sender) else None
        if replacement is not None:
            sender, why = replacement
            self.log(f"worker {self.spec.index}: transport {why}", NOTICE)
            self.sender = sender
            self.slot[C.TRANSPORT] = C.TRANSPORT_CODES[sender.mode]
            return sender
        pacer.charge(sender.refused)
        for field, base, count in zip(C.ERROR_FIELDS, base_errors, sender.errors):
            self.slot[field] = base + count
        self.sleep(ERROR_BACKOFF)
        return sender
