"""The rate plan of a run: how many events are due by any moment, for the run and for each worker.

The supervisor owns the plan and publishes it in shared memory (a ``Board``); every worker reads
it when its generation changes (checked once per tick) and paces itself against it. Pacing is
against *due counts*, never against intervals, so nothing drifts, a restarted worker knows
exactly what it missed, and every count adds up to the event:

* ``events(t)``: the epoch's cumulative events due at time ``t`` (CLOCK_MONOTONIC ns, the same
  clock in every process): ``g0 + P(t - start_ns) - p0``, where ``P`` is the profile's integral.
* worker ``i`` of ``workers``, in instance ``I`` of ``N``: ``due_i(t) = base_i +
  share(share(floor(events(t)), I, N), i, workers)``. ``share`` splits a whole number into parts
  that differ by at most one and add up to it exactly, and is monotonic in the whole, so the
  workers' counts always add up to the run's and never go backwards.

A rate change (a reload, ``loggend ctl``) replaces the profile from a moment ``t_c`` (its new
origin) with ``g0 = events(t_c)``: every worker's due count is continuous through it. A change
of the worker count starts a new *epoch*: the profile keeps its origin (a ramp goes on where it
was), ``p0 = P(t_c - start_ns)`` and ``g0 = 0``, and the ``bases`` are each index's due count at
``t_c``. ``end_ns`` (0 = none) ends a timed run: each worker's quota is its due count then.
``start_ns = 0`` means "not started": workers set up and wait for it.

Plain data and pure functions (JSON round trip for the board); the hot path evaluates ``due``
once per wake-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from loggend.engine.counters import Board

NS = 1_000_000_000
PLAN_READ_RETRIES = 3
UNLIMITED = math.inf
ROUNDING = 1e-9               # events: absorbs float error at exact deadlines


def share(total: int, index: int, parts: int) -> int:
    """Part ``index`` of ``total`` split into ``parts`` whole parts that add up to ``total`` exactly.

    Part ``i`` counts the events ``k < total`` with ``k % parts == i``: it never goes down as
    ``total`` grows, and grows by one exactly when ``total`` passes one of its own events.
    """
    return total // parts + (1 if index < total % parts else 0)


@dataclass(frozen=True)
class Segment:
    """One piece of a rate profile: ``seconds`` long (``math.inf``: for ever) at a constant rate.

    Rates are events/s of the whole run; ``math.inf`` is unlimited (as fast as possible) and
    0 is a pause.
    """

    rate: float
    seconds: float = math.inf

    def events(self, dt: float) -> float:
        return self.rate * dt

    def rate_at(self, dt: float) -> float:
        return self.rate

    def document(self) -> dict[str, Any]:
        return {"kind": "constant", "rate": self.rate if math.isfinite(self.rate) else "unlimited",
                "seconds": self.seconds if math.isfinite(self.seconds) else "inf"}


def segment_from(doc: dict[str, Any]) -> Segment:
    rate = math.inf if doc["rate"] == "unlimited" else float(doc["rate"])
    return Segment(rate, math.inf if doc["seconds"] == "inf" else float(doc["seconds"]))


@dataclass(frozen=True)
class Profile:
    """Segments run in order; after the last one the profile ``repeat``\\ s or holds its last rate."""

    segments: tuple[Segment, ...]
    repeat: bool = False

    def __post_init__(self) -> None:
        # the common case, one constant rate for ever, is computed without a walk (the hot path asks per wake-up)
        object.__setattr__(self, "_flat", self.segments[0].rate if len(self.segments) == 1 else None)
        object.__setattr__(self, "_period", sum(s.seconds for s in self.segments))

    @classmethod
    def constant(cls, rate: float) -> Profile:
        """``rate`` events/s for ever; 0 means unlimited, as everywhere in the config."""
        return cls((Segment(UNLIMITED if rate == 0 else rate),))

    @property
    def unlimited(self) -> bool:
        return any(math.isinf(s.rate) for s in self.segments)

    @property
    def period(self) -> float:
        return float(self._period)      # type: ignore[attr-defined]

    def _locate(self, dt: float) -> tuple[float, Segment, float]:
        """(events before the segment, the segment, seconds into it) at ``dt`` seconds in."""
        before = 0.0
        period = self.period
        if self.repeat and math.isfinite(period) and period > 0 and dt >= period:
            cycles = math.floor(dt / period)
            before = cycles * sum(s.events(s.seconds) for s in self.segments)
            dt -= cycles * period
        for seg in self.segments[:-1]:
            if dt < seg.seconds:
                return before, seg, dt
            before += seg.events(seg.seconds)
            dt -= seg.seconds
        return before, self.segments[-1], dt

    def events(self, dt: float) -> float:
        """Events due ``dt`` seconds into the profile (its integral)."""
        if dt <= 0:
            return 0.0
        flat: float | None = self._flat     # type: ignore[attr-defined]
        if flat is not None:
            return flat * dt
        before, seg, into = self._locate(dt)
        return before + seg.events(into)

    def rate_at(self, dt: float) -> float:
        flat: float | None = self._flat     # type: ignore[attr-defined]
        if flat is not None:
            return flat
        _, seg, into = self._locate(max(0.0, dt))
        return seg.rate_at(into)

    def document(self) -> dict[str, Any]:
        return {"segments": [s.document() for s in self.segments], "repeat": self.repeat}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Profile:
        return cls(tuple(segment_from(d) for d in doc["segments"]), bool(doc["repeat"]))


@dataclass(frozen=True)
class Plan:
    profile: Profile
    workers: int
    start_ns: int = 0                 # CLOCK_MONOTONIC of the profile's origin; 0 = not started yet
    g0: float = 0.0                   # events added: what was already due when the profile changed
    p0: float = 0.0                   # profile events subtracted: what it had done before this epoch
    bases: tuple[int, ...] = ()       # per worker index: its due count when the epoch began
    end_ns: int = 0                   # the run ends here (0 = until stopped)
    instance: int = 0                 # this instance's part of a fleet
    instances: int = 1
    generation: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def started(self) -> bool:
        return self.start_ns > 0

    @property
    def unlimited(self) -> bool:
        return self.profile.unlimited

    def events(self, t_ns: int) -> float:
        """The epoch's events due at ``t_ns`` (for this whole run, before the instance split)."""
        if not self.started:
            return self.g0
        if self.end_ns and t_ns > self.end_ns:
            t_ns = self.end_ns
        return self.g0 + self.profile.events((t_ns - self.start_ns) / NS) - self.p0

    def due(self, index: int, t_ns: int) -> int:
        """Worker ``index``'s due count at ``t_ns``: what it should have sent by then in all."""
        mine = share(math.floor(self.events(t_ns) + ROUNDING), self.instance, self.instances)
        base = self.bases[index] if index < len(self.bases) else 0
        return base + share(mine, index, self.workers)

    def quota(self, index: int) -> int | None:
        """What worker ``index`` sends in all when the run has an end (and a rate); None otherwise."""
        return self.due(index, self.end_ns) if self.end_ns and self.started and not self.unlimited else None

    def worker_rate(self, t_ns: int) -> float:
        """Events/s one worker is due at ``t_ns`` (``inf``: unlimited; 0: paused or over)."""
        if self.end_ns and t_ns >= self.end_ns:
            return 0.0
        dt = (t_ns - self.start_ns) / NS if self.started else 0.0
        return self.profile.rate_at(dt) / self.instances / self.workers

    def rate_now(self, t_ns: int) -> float:
        """This instance's target events/s at ``t_ns``."""
        return self.worker_rate(t_ns) * self.workers

    # --- changes (the supervisor's side) ----------------------------------------------------------------

    def start(self, t_ns: int, duration: float) -> Plan:
        """The run begins at ``t_ns`` and ends ``duration`` seconds later (0: until stopped)."""
        end = t_ns + round(duration * NS) if duration else 0
        return replace(self, start_ns=t_ns, end_ns=end, generation=self.generation + 1)

    def with_profile(self, profile: Profile, t_ns: int) -> Plan:
        """The same epoch with a new profile from ``t_ns`` on: every due count is continuous."""
        if not self.started:
            return replace(self, profile=profile, generation=self.generation + 1)
        return replace(self, profile=profile, start_ns=t_ns, g0=self.events(t_ns), p0=0.0,
                       generation=self.generation + 1)

    def with_workers(self, workers: int, t_ns: int, carried: dict[int, int]) -> Plan:
        """A new epoch from ``t_ns`` with ``workers`` workers: each index starts from its due count
        now (``carried`` gives the counts of indexes that had no worker in this epoch)."""
        bases = tuple(self.due(i, t_ns) if i < self.workers else carried.get(i, 0) for i in range(workers))
        if not self.started:
            return replace(self, workers=workers, bases=bases, generation=self.generation + 1)
        p0 = self.profile.events((min(t_ns, self.end_ns or t_ns) - self.start_ns) / NS)
        return replace(self, workers=workers, bases=bases, g0=0.0, p0=p0, generation=self.generation + 1)

    def with_end(self, end_ns: int) -> Plan:
        return replace(self, end_ns=end_ns, generation=self.generation + 1)

    def document(self) -> dict[str, Any]:
        return {"profile": self.profile.document(), "workers": self.workers, "start_ns": self.start_ns,
                "g0": self.g0, "p0": self.p0, "bases": list(self.bases), "end_ns": self.end_ns,
                "instance": self.instance, "instances": self.instances, "generation": self.generation,
                "extra": self.extra}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Plan:
        return cls(profile=Profile.from_document(doc["profile"]), workers=int(doc["workers"]),
                   start_ns=int(doc["start_ns"]), g0=float(doc["g0"]), p0=float(doc["p0"]),
                   bases=tuple(int(b) for b in doc["bases"]), end_ns=int(doc["end_ns"]),
                   instance=int(doc["instance"]), instances=int(doc["instances"]),
                   generation=int(doc["generation"]), extra=dict(doc.get("extra", {})))


class PlanSource:
    """Where a worker reads its plan: fixed (tests, the bench) or the run's board (``BoardPlan``)."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def changed(self) -> bool:
        return False

    def read(self) -> Plan:
        return self.plan


class BoardPlan(PlanSource):
    """The plan the supervisor publishes on a ``Board``; re-read only when its generation moved."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.seen = -1
        super().__init__(Plan(Profile.constant(0), 1))

    def changed(self) -> bool:
        return self.board.generation() != self.seen

    def read(self) -> Plan:
        for _ in range(PLAN_READ_RETRIES):
            seen = self.board.generation()
            doc = self.board.read()
            if doc:
                self.seen, self.plan = seen, Plan.from_document(doc)
                break
        return self.plan
