"""The worker: pace -> send a batch -> count, until stopped, retired or its part of the run is done.

``Worker(spec, slot, plan)`` is one stream (one slot, one socket, one pool) and does nothing to the
process: ``loggend.engine.group`` runs one or several of them in a worker process. Its phases:

1. ``setup``: render the pool, open the socket, pick the transport (a failure is a boot failure).
2. Taking the slot (``stand_by``, ``predecessor_gone``, ``end_standby``, ``take_over``,
   ``plan_has_me``): at a reload the worker it replaces is
   still sending; this one waits, set up, in standby (``STANDBY_PID``) until that one has stopped,
   then takes the slot over and continues its stream at the slot's ``SENT``. Then it waits
   (``STATE_READY``) until the plan has started and counts it in (a worker added by a reload
   waits for the plan that adds it).
3. ``begin``, then ``step(now)`` per look, then ``finish``: per look, one pacer grant, at most one
   ``sender.send`` and three counter stores (``STARTED_NS`` once, right after the first send); it
   returns how long until the next look, so one process can serve several workers. The timestamp
   is patched when the wall clock's second changes (and once in ``begin``, so no message carries
   a stale second after a restart); every ``TICK_SECONDS`` the heartbeat and error counters are
   published. The plan's generation (one 8-byte read) is looked at per look and the plan re-read
   when it moved, so a live rate change (``loggend ctl``) applies from the next burst: a worker
   that went on for a tick at the old rate after a cut to a tenth of it would stay silent most of
   a second, until the new due count caught up.

Imports: the standard library, ``loggend.engine`` and the import-free ``loggend.errors`` only
(a test holds this).
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Callable

from loggend.engine import counters as C
from loggend.engine.journal import ERR, NOTICE, WARNING, Log
from loggend.engine.pacing import Pacer
from loggend.engine.procsetup import log_stderr
from loggend.engine.render import Corpus, build_pool, frame_cap
from loggend.engine.schedule import Plan, PlanSource
from loggend.engine.spec import WorkerSpec
from loggend.engine.stream import RESET, UNCLEAR, StreamSender, open_stream
from loggend.engine.syscalls import release_free_memory
from loggend.engine.transport import Sender, Sending, TransportError, choose, fall_back, open_socket

TICK_SECONDS = 0.1            # heartbeat / error / plan publication interval
COUNT_GRACE = 1.0             # a timed run may overrun its end this long to finish its count
SETTLE_SECONDS = 1.0          # TCP/TLS at the end: at most this long for the kernel's queue to empty
DROPPED = ("it may also have dropped messages its kernel had acknowledged and it had not read, which no TCP "
           "sender can count")
RESET_NOTES = {RESET: f" (reset by the receiver: {DROPPED})",
               UNCLEAR: f" (the receiver ended the connection without ending TLS, closed or reset: if reset, "
                        f"{DROPPED})"}
ERROR_BACKOFF = 0.001         # no look for this long after a failed send: a dead target never spins a core


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
        self.base_disconnected = self.base_unsent = 0
        self.current: Plan = plan.plan      # the plan as last read
        # the loop's state (``begin``): counts so far and at the start, the pace, the next looks
        self.sent = self.base_bytes = self.base_calls = 0
        self.base_errors: list[int] = []
        self.pacer = Pacer(self.current, spec.index)
        self.quota: int | None = None
        self.stop_at = self.next_second = self.next_tick = 0.0
        self.first = True

    # --- per-process set-up ----------------------------------------------------------------------

    def setup(self) -> Sending | None:
        """Render the pool, open the socket (connect), pick the transport; None (logged) when that fails."""
        spec, slot = self.spec, self.slot
        if not spec.takes_over:
            self.progress()
            slot[C.PID] = os.getpid()
            slot[C.STATE] = C.STATE_STARTING
        try:
            plan = self.plan.read()
            cap = frame_cap(plan.profile.peak / plan.instances / max(1, plan.workers))
            pool = build_pool(spec.messages, spec.index, spec.stream, self.wallclock(), self.corpus, cap)
            self.corpus = None              # the shared pages are not needed any more
            pool.set_time(self.wallclock())     # the stamps current now: ``begin`` has a second's patch left
            release_free_memory()           # what building the pool left on the heap goes back to the system
            sender: Sending
            if spec.protocol == "udp":
                sender, why = choose(spec.transport, open_socket(spec.host, spec.port), pool)
            else:
                sender, why = open_stream(pool, spec.host, spec.port, spec.target_name,   # a run under way:
                                          spec.tls if spec.protocol == "tls" else None,    # no boot failure
                                          connect=not plan.started)
        except (OSError, TransportError, ValueError, EOFError, zlib.error) as err:   # a replay file gone bad
            self.log(f"worker {spec.index}: cannot start sending to {spec.host}:{spec.port}: {err}", ERR)
            if not spec.takes_over:
                slot[C.STATE] = C.STATE_FAILED
            return None
        first_rung = "gso" if spec.transport in ("auto", "gso") else spec.transport
        if spec.index == 0 or (spec.protocol == "udp" and sender.mode != first_rung):
            self.log(f"worker {spec.index}: transport {why}")      # once, and for each worker that fell back
        if pool.replay is not None:
            r = pool.replay
            r.warn = lambda line: self.log(f"worker {spec.index}: {line}", WARNING)
            skipped = f", {r.source.too_long:,} longer than a datagram skipped" if r.source.too_long else ""
            share = (f"its {r.source.share_lines:,} lines of the file, repeated to fill a pass of "
                     f"{r.lines:,}" if r.source.fits else f"{r.lines:,} lines in its first pass")
            self.log(f"worker {spec.index}: replay: {share}, {r.unstamped:,} without a valid timestamp of "
                     f"their own (their text sent unchanged){skipped}")
        self.sender = sender
        if not spec.takes_over:
            self.progress()
        return sender

    def progress(self) -> None:
        """A sign of life while setting up (``STATE_STARTING``): the supervisor judges a process that
        sets up many workers by its latest one, not by how long ago it was forked."""
        self.slot[C.HEARTBEAT_NS] = time.monotonic_ns()

    # --- taking the slot: in phases, so that a process of several workers waits for them all at once --

    def stand_by(self) -> None:
        """At a reload: say this one is set up and waits for the worker it replaces."""
        if self.spec.takes_over:
            self.slot[C.STANDBY_PID] = os.getpid()

    def predecessor_gone(self) -> bool:
        slot, old = self.slot, self.spec.takes_over
        return (not old or slot[C.PID] != old or process_gone(old)
                or slot[C.STATE] in (C.STATE_STOPPED, C.STATE_FAILED))

    def end_standby(self) -> None:
        if self.spec.takes_over:
            self.slot[C.STANDBY_PID] = 0

    def take_over(self) -> None:
        """The slot is this process's: its stream goes on at the slot's count; ready for the start."""
        slot = self.slot
        assert self.sender is not None
        self.sender.track(slot[C.SENT:C.SENT + 1])              # SENT is stored after every system call
        slot[C.PID] = os.getpid()
        slot[C.TRANSPORT] = C.TRANSPORT_CODES[self.sender.mode]
        if slot[C.SENT]:
            self.sender.seek(slot[C.SENT])      # a restart carries on the stream's sequence numbers
        slot[C.HEARTBEAT_NS] = time.monotonic_ns()
        slot[C.STATE] = C.STATE_READY

    def plan_has_me(self) -> bool:
        """The plan has started and counts this worker in (one added by a reload waits for that plan)."""
        if self.plan.changed() or not self.current.started:
            self._read_plan()
        return self.current.started and self.spec.index < self.current.workers

    # --- the loop --------------------------------------------------------------------------------------

    def begin(self) -> None:
        """Ready to send: the slot's counts are the base, the pace is the plan's, the time is now."""
        assert self.sender is not None
        slot, sender = self.slot, self.sender
        slot[C.HEARTBEAT_NS] = time.monotonic_ns()
        slot[C.STARTED_NS] = 0                              # set by the first send (see step)
        slot[C.STATE] = C.STATE_RUNNING
        self.sent, self.base_bytes, self.base_calls = slot[C.SENT], slot[C.BYTES], slot[C.CALLS]
        self.base_errors = [slot[f] for f in C.ERROR_FIELDS]
        self.base_blocked, self.base_reconnects = slot[C.BLOCKED_NS], slot[C.RECONNECTS]
        self.base_possibly_lost = slot[C.POSSIBLY_LOST]
        self.base_disconnected, self.base_unsent = slot[C.DISCONNECTED_NS], slot[C.UNSENT_AT_CLOSE]
        self._read_plan()
        self.pacer = Pacer(self.current, self.spec.index, slot[C.FORGIVEN], sum(self.base_errors))
        self._follow_plan()
        wall = self.wallclock()
        sender.pool.set_time(wall)                          # the current second from the first datagram on
        self.next_second = math.floor(wall) + 1
        self.next_tick = 0.0
        self.first = True

    def _read_plan(self) -> Plan:
        """Read the plan, and say which one this worker follows now (``PLAN_SEEN``)."""
        self.current = self.plan.read()
        self.slot[C.PLAN_SEEN] = self.current.generation
        return self.current

    def _follow_plan(self) -> None:
        self.quota = self.pacer.quota()
        self.stop_at = self.pacer.end + (COUNT_GRACE if self.quota is not None else 0.0)   # a quota may need the grace

    def step(self, now: float) -> float | None:
        """Send a burst if one is due at ``now``; the seconds until the next look, None when done
        (retired by a reload, its share sent, or the run over)."""
        sender, pacer, slot = self.sender, self.pacer, self.slot
        assert sender is not None
        if now >= self.next_tick or self.plan.changed():
            slot[C.HEARTBEAT_NS] = time.monotonic_ns()
            slot[C.FORGIVEN] = pacer.forgiven
            self.publish_link(sender)
            self.next_tick = now + TICK_SECONDS
            if self.plan.changed():
                pacer.set_plan(self._read_plan())
                self._follow_plan()
            if self.spec.index >= self.current.workers:
                return None                                 # retired by a reload
            if now >= self.stop_at:
                self._last_burst(sender, pacer, now)
                return None                                 # the run is over
        quota, sent = self.quota, self.sent
        if now >= self.stop_at:
            self._last_burst(sender, pacer, now)
            return None
        if quota is not None and sent >= quota and now >= pacer.end:
            return None                                     # a timed run lasts its duration: the rate may rise
        wall = self.wallclock()
        if wall >= self.next_second:                        # the pool in hand: a replay's is new every pass
            sender.pool.set_time(wall)
            self.next_second = math.floor(wall) + 1
        budget = pacer.grant(now, sent)
        if quota is not None:
            budget = min(budget, quota - sent)
        if budget <= 0:
            return min(pacer.wait(now), TICK_SECONDS) or 0.0001
        n = sender.send(budget)                             # the sender stores SENT as it goes
        if self.first and n:                                # when sending really began (a fleet's start,
            slot[C.STARTED_NS] = time.monotonic_ns()        # a replacement's first send after down time)
            self.first = False
        self.sent = sent + n
        slot[C.BYTES] = self.base_bytes + sender.bytes
        slot[C.CALLS] = self.base_calls + sender.calls
        if sender.refused:
            return self._after_error(sender, pacer)
        wait = pacer.wait_after(now, n)                     # the next burst's time is known: no second look;
        return min(wait, TICK_SECONDS) if wait > 0 else 0.0  # not woken for the tick: at most 20 ms late

    def _last_burst(self, sender: Sending, pacer: Pacer, now: float) -> None:
        """Woken past the end's grace with part of a timed run's count unsent (a starved box did not run
        this process for a second or more): what is due goes out in one call, as at the end of any timed
        run, debt older than a second forgiven as after any stall, and the run is over. What the call
        cannot take (a receiver that holds TCP back) stays due, and the summary says so."""
        if self.quota is None:
            return
        budget = pacer.last(now, self.sent)
        if budget <= 0:
            return
        n = sender.send(budget)
        self.sent += n
        self.slot[C.BYTES] = self.base_bytes + sender.bytes
        self.slot[C.CALLS] = self.base_calls + sender.calls
        if sender.refused:
            self._after_error(sender, pacer)

    def finish(self, done: bool) -> None:
        """The slot says stopped (after a crash in the loop too); the socket is closed, after a moment
        for what is still queued to go (TCP/TLS), and what did not is counted."""
        slot, sender = self.slot, self.sender
        assert sender is not None
        if done:
            self._settle(sender)
            sender.close()
            slot[C.FORGIVEN] = self.pacer.forgiven
            slot[C.BYTES] = self.base_bytes + sender.bytes          # a held TLS write finished counts
            slot[C.CALLS] = self.base_calls + sender.calls
            self.publish_link(sender)
        slot[C.HEARTBEAT_NS] = time.monotonic_ns()
        slot[C.STATE] = C.STATE_STOPPED
        sender.close()

    def _settle(self, sender: Sending) -> None:
        """TCP/TLS: a held TLS write finished, the kernel's queue given ``SETTLE_SECONDS`` to empty
        (heartbeats going)."""
        if not isinstance(sender, StreamSender):
            return
        deadline = self.clock() + SETTLE_SECONDS
        while not sender.settle() and self.clock() < deadline:
            self.slot[C.HEARTBEAT_NS] = time.monotonic_ns()

    def publish_link(self, sender: Sending) -> None:
        """Push-back time, and for TCP/TLS reconnections and what a drop may have lost (logged once)."""
        slot = self.slot
        slot[C.BLOCKED_NS] = self.base_blocked + sender.blocked_ns
        if not isinstance(sender, StreamSender):
            return
        slot[C.RECONNECTS] = self.base_reconnects + sender.reconnects
        slot[C.POSSIBLY_LOST] = self.base_possibly_lost + sender.possibly_lost
        slot[C.LINK_DOWN] = sender.sock is None and not sender.closed
        slot[C.DISCONNECTED_NS] = self.base_disconnected + sender.disconnected_ns()
        slot[C.UNSENT_AT_CLOSE] = self.base_unsent + sender.unsent_at_close
        self._log_link(sender)

    def _log_link(self, sender: StreamSender) -> None:
        """One line when the connection goes down, when an attempt fails for a new reason, when it is back."""
        where = f"worker {self.spec.index}: {sender.mode} to {sender.host}:{sender.port}"
        if sender.sock is not None:
            if self.link.startswith("down"):
                self.log(f"{where} {'reconnected' if sender.reconnects else 'connected'} "
                         f"({sender.reconnects} reconnects)", NOTICE)
            self.link = "up"
            return
        if sender.closed or sender.dial is None and not sender.down_since:
            return                                          # closed at the end, or not dialled yet
        link = f"down: {sender.down_reason}"
        if link == self.link:
            return
        if self.link == "up":
            self.log(f"{where} lost ({sender.down_reason}); {sender.possibly_lost:,} messages possibly lost "
                     f"so far{RESET_NOTES.get(sender.reset, '')}; reconnecting", WARNING)
        elif sender.down_reason:
            self.log(f"{where}: {sender.down_reason}; trying again with back-off (what is due meanwhile is "
                     "counted as refused)", WARNING)
        self.link = link if sender.down_reason or self.link == "up" else self.link

    def _after_error(self, sender: Sending, pacer: Pacer) -> float:
        """Count and charge a failed send, or switch transport if GSO turned out unusable; the pause
        before the next look (a dead target never spins a core)."""
        replacement = fall_back(sender) if isinstance(sender, Sender) else None
        if replacement is not None:
            sender, why = replacement
            self.log(f"worker {self.spec.index}: transport {why}", NOTICE)
            self.sender = sender
            self.slot[C.TRANSPORT] = C.TRANSPORT_CODES[sender.mode]
            return 0.0
        pacer.charge(sender.refused)
        for field, base, count in zip(C.ERROR_FIELDS, self.base_errors, sender.errors):
            self.slot[field] = base + count
        self.quota = pacer.quota()
        return ERROR_BACKOFF
