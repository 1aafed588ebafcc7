"""One worker's pace: how many events to send now, against its due count in the run's plan.

The plan (``loggend.engine.schedule``) says how many events worker ``i`` should have sent by any
moment; the pacer compares that with what it has sent and grants the difference in *bursts*:

* A burst is at least ``FRAMES_PER_BURST`` full GSO frames (``FRAME`` events each) whenever the
  worker's rate allows them within ``MAX_BURST_SECONDS``, and at least ``MIN_BURST_SECONDS`` of
  traffic: few wake-ups per second whatever the worker count (a worker of 40 at 200k ev/s wakes
  50 times a second, not a thousand), and a fast worker still sends a millisecond at a time,
  so a receiver's queue never takes more than a few hundred kilobytes at once from one worker.
* A burst is never more than ``MAX_BURST_SECONDS`` (20 ms) of the worker's traffic, nor more than
  ``MAX_BURST_EVENTS``: at a rate no worker reaches (400M asked of one), 20 ms would be 8 million
  events in one send, seconds of it, past the end of a timed run.
* Behind (after a stall or a restart), it catches up at most ``MAX_LAG_SECONDS`` of traffic, at up
  to ``CATCHUP_SPEEDUP`` times its rate, never in one flood; older debt is *forgiven* and counted
  (``forgiven``), so the summary can say what was not made up.
* Events the kernel refused (nobody listening, queue full after waiting) are *charged*: they
  count against the due count like sent ones, so a refusing target costs errors at the rate,
  not a retry storm; the stream does not skip them (they go out later under the same numbers).
* At the end of a timed run (the due count stops growing) whatever is left goes out at once; a
  worker the machine did not run until past the end's grace sends it when it runs (``last``).

Unlimited rate: every grant is ``UNLIMITED_GRANT`` events and nobody waits.
"""

from __future__ import annotations

import math

from loggend.engine.schedule import NS, Plan

FRAME = 64                   # messages in a full UDP GSO frame (UDP_MAX_SEGMENTS)
FRAMES_PER_BURST = 4         # the smallest worthwhile burst, when the rate allows it
MIN_BURST_SECONDS = 0.001    # a burst is at least this much traffic...
MAX_BURST_SECONDS = 0.020    # ...and never more than this
MAX_LAG_SECONDS = 1.0        # debt older than this is forgiven, not caught up
CATCHUP_SPEEDUP = 2.0        # while catching up, up to this many times the rate
UNLIMITED_GRANT = 4096
MAX_BURST_EVENTS = 8 * UNLIMITED_GRANT   # 27 ms of a worker at full speed (1.2M ev/s)
IDLE_WAIT = 0.05             # nothing due at all (paused, not started, over): look again this soon


class Pacer:
    def __init__(self, plan: Plan, index: int, forgiven: int = 0, charged: int = 0) -> None:
        self.index = index
        self.forgiven = forgiven          # events given up for good (this slot's total, carried on)
        self.charged = charged            # events refused by the kernel (this slot's total, carried on)
        self.not_before = 0.0             # while catching up: no burst before this time
        self.behind = 0
        self.rate = 0.0                   # the rate the bursts were sized for
        self.current = 0.0                # the rate due right now (0: paused or over)
        self.min_burst = self.max_burst = 1
        self.max_lag = 1
        self.set_plan(plan)

    def set_plan(self, plan: Plan) -> None:
        self.plan = plan
        self.unlimited = plan.unlimited
        self.end = plan.end_ns / NS if plan.end_ns else math.inf
        self.not_before = 0.0

    def _size(self, rate: float) -> None:
        """Burst sizes and the lag bound for a worker rate (recomputed when the rate changes)."""
        self.rate = rate
        self.min_burst = min(MAX_BURST_EVENTS, max(1, math.floor(rate * MIN_BURST_SECONDS),
                                                   min(FRAMES_PER_BURST * FRAME, math.floor(rate * MAX_BURST_SECONDS))))
        self.max_burst = min(MAX_BURST_EVENTS, max(self.min_burst, math.floor(rate * MAX_BURST_SECONDS)))
        self.max_lag = max(self.max_burst, math.floor(rate * MAX_LAG_SECONDS))

    def quota(self) -> int | None:
        """This worker's total for a timed run, net of what was forgiven; None without an end."""
        quota = self.plan.quota(self.index)
        return None if quota is None else quota - self.forgiven - self.charged

    def charge(self, refused: int) -> None:
        self.charged += refused

    def grant(self, now: float, sent: int) -> int:
        """Events to send now, given ``sent`` so far (the slot's total); 0 means wait."""
        plan = self.plan
        if not plan.started:
            return 0
        t_ns = int(now * NS)
        if self.unlimited:
            return UNLIMITED_GRANT if now < self.end else 0
        rate = self.current = plan.worker_rate(t_ns)
        if rate != self.rate and rate > 0:
            self._size(rate)
        behind = plan.due(self.index, t_ns) - self.forgiven - self.charged - sent
        if behind > self.max_lag:
            self.forgiven += behind - self.max_lag           # too old to make up: say so, don't flood
            behind = self.max_lag
        self.behind = behind
        if behind <= 0:
            return 0
        if behind < self.min_burst and now < self.end and rate > 0:
            return 0                                         # a whole burst is not due yet
        if now < self.not_before:
            return 0
        n = min(behind, self.max_burst)
        if behind > 2 * self.max_burst:                      # really behind (not a late wake-up): catching up,
            self.not_before = now + n / (self.rate * CATCHUP_SPEEDUP)       # at most CATCHUP_SPEEDUP x the rate
        return n

    def last(self, now: float, sent: int) -> int:
        """Past a timed run's end and its grace: all that is still due, at most ``MAX_LAG_SECONDS`` of it
        (older debt forgiven and counted, as in ``grant``)."""
        if not self.plan.started or self.unlimited:
            return 0
        behind = self.plan.due(self.index, int(now * NS)) - self.forgiven - self.charged - sent
        if behind > self.max_lag:
            self.forgiven += behind - self.max_lag
            behind = self.max_lag
        return max(0, behind)

    def wait_after(self, now: float, sent: int) -> float:
        """Seconds until the next burst is due, right after ``sent`` of the last grant went out."""
        if self.unlimited or self.current <= 0:
            return 0.0
        self.behind -= sent
        return self.wait(now)

    def wait(self, now: float) -> float:
        """Seconds until a burst is likely due (after a grant of 0)."""
        if not self.plan.started or self.current <= 0 or self.unlimited:
            return IDLE_WAIT
        if self.not_before > now:
            return self.not_before - now
        return max(0.0, (self.min_burst - self.behind) / self.rate)
