"""Token bucket on absolute deadlines: event ``k`` is due at ``start + k / rate``.

Grants are computed from the time since the (re)start of the bucket, never by adding intervals,
so rounding and scheduling jitter do not accumulate into drift. A grant is at most one *burst*:
``BURST_SECONDS`` of traffic, so the stream is spread in bursts of about a millisecond, never one
burst per second. When the sender falls behind (a stall, a slow machine) it may catch up at most
``MAX_LAG_SECONDS`` of traffic; older debt is forgiven so a hiccup never turns into a flood.

Rate 0 means unlimited: every grant is ``UNLIMITED_GRANT`` events and nobody waits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

BURST_SECONDS = 0.001
MAX_LAG_SECONDS = 1.0
UNLIMITED_GRANT = 4096
MIN_SLEEP = 0.0002           # below this, sleeping costs more precision than it saves
ROUNDING = 1e-6              # events: absorbs float error at exact deadlines


class TokenBucket:
    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.set_rate(rate)

    def set_rate(self, rate: float) -> None:
        """Start a new schedule from now at ``rate`` events/s (0 = unlimited)."""
        self.rate = float(rate)
        self.start = self.clock()
        self.granted = 0                      # events taken since start
        self.burst = max(1, math.floor(self.rate * BURST_SECONDS)) if rate else UNLIMITED_GRANT
        self.max_lag = max(self.burst, math.floor(self.rate * MAX_LAG_SECONDS))

    def available(self, now: float) -> int:
        """One burst when a whole burst is due, else 0 (the caller waits ``delay``)."""
        if not self.rate:
            return UNLIMITED_GRANT
        due = math.floor((now - self.start) * self.rate + ROUNDING) + 1     # event 0 is due at start
        behind = due - self.granted
        if behind > self.max_lag:
            self.granted = due - self.max_lag
            behind = self.max_lag
        return self.burst if behind >= self.burst else 0

    def take(self, events: int) -> None:
        self.granted += events

    def delay(self, now: float) -> float:
        """Seconds until a burst's worth is due (0 when some is due now)."""
        if not self.rate:
            return 0.0
        due_at = self.start + (self.granted + self.burst - 1) / self.rate
        wait = due_at - now
        return wait if wait > MIN_SLEEP else 0.0
