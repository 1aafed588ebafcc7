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

The profile is a list of segments (``constant``, ``ramp``, ``steps``, ``burst``, ``sine``), each
with its integral in closed form, then repeated or held at its last rate: a timed run with a
profile sends exactly ``floor(P(duration))`` events.

A rate change (a reload, ``loggend ctl``, SIGUSR1/SIGUSR2) replaces the profile from a moment
``t_c``, at a *phase* of the new one (0 for a new profile, the current one for a scaled one):
its origin becomes ``t_c - phase``, ``g0 = events(t_c)`` and ``p0 = P'(phase)``, so every
worker's due count is continuous through it. A pause is the zero profile ``PAUSED`` from ``t_c``
with the paused profile, its phase and what is left of a timed run kept in ``pause``; the
resume puts that profile back at that phase (its origin shifted by the time paused). A change
of the worker count starts a new *epoch*: the profile keeps its origin (a ramp goes on where it
was), ``p0 = P(t_c - start_ns)`` and ``g0 = 0``, and the ``bases`` are each index's due count at
``t_c``. ``end_ns`` (0 = none) ends a timed run: each worker's quota is its due count then.
``start_ns = 0`` means "not started": workers set up and wait for it.

Plain data and pure functions (JSON round trip for the board); the hot path evaluates ``due``
once per wake-up.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

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


def _encode(value: float) -> float | str:
    return value if math.isfinite(value) else "inf"


def _decode(value: float | str) -> float:
    return math.inf if value in ("inf", "unlimited") else float(value)


class Segment:
    """One piece of a rate profile, ``seconds`` long (``math.inf``: for ever; the last piece only).

    Rates are events/s of the whole run. ``events(dt)`` is the exact integral of ``rate_at`` over
    ``[0, dt]`` for ``0 <= dt <= seconds``, in closed form (the hot path asks once per wake-up);
    ``end_rate`` is the rate the piece ends on, which a profile holds after its last piece.
    ``FIELDS`` name the piece's values in its document (the names of the config syntax).
    """

    kind: ClassVar[str] = ""
    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = ()     # (document key, attribute)
    RATES: ClassVar[tuple[str, ...]] = ()                  # the attributes that are rates (scaled together)
    seconds: float

    def events(self, dt: float) -> float:
        raise NotImplementedError

    def rate_at(self, dt: float) -> float:
        raise NotImplementedError

    @property
    def end_rate(self) -> float:
        return self.rate_at(self.seconds)

    def scaled(self, factor: float) -> Segment:
        """The same shape with every rate times ``factor``."""
        return replace(self, **{a: getattr(self, a) * factor for a in self.RATES})  # type: ignore[type-var]

    def document(self) -> dict[str, Any]:
        return {"kind": self.kind, **{key: _encode(getattr(self, attr)) for key, attr in self.FIELDS}}


@dataclass(frozen=True)
class Constant(Segment):
    """``rate`` events/s (``math.inf``: unlimited, as fast as possible; 0: nothing)."""

    rate: float
    seconds: float = math.inf
    kind: ClassVar[str] = "constant"
    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("rate", "rate"), ("for", "seconds"))
    RATES: ClassVar[tuple[str, ...]] = ("rate",)

    def events(self, dt: float) -> float:
        return self.rate * dt

    def rate_at(self, dt: float) -> float:
        return self.rate

    @property
    def end_rate(self) -> float:
        return self.rate


@dataclass(frozen=True)
class Ramp(Segment):
    """From ``start`` to ``stop`` events/s in a straight line over ``seconds``."""

    start: float
    stop: float
    seconds: float
    kind: ClassVar[str] = "ramp"
    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("from", "start"), ("to", "stop"), ("for", "seconds"))
    RATES: ClassVar[tuple[str, ...]] = ("start", "stop")

    def events(self, dt: float) -> float:
        return self.start * dt + (self.stop - self.start) * dt * dt / (2 * self.seconds)

    def rate_at(self, dt: float) -> float:
        return self.start + (self.stop - self.start) * min(dt, self.seconds) / self.seconds

    @property
    def end_rate(self) -> float:
        return self.stop


@dataclass(frozen=True)
class Steps(Segment):
    """``start``, ``start + step``, ... up (or down) to ``stop``, each held ``each`` seconds; the
    last step is ``stop`` itself when ``step`` does not divide the distance."""

    start: float
    stop: float
    step: float
    each: float
    kind: ClassVar[str] = "steps"
    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("from", "start"), ("to", "stop"), ("step", "step"),
                                                     ("each", "each"))
    RATES: ClassVar[tuple[str, ...]] = ("start", "stop", "step")

    @property
    def count(self) -> int:
        return math.ceil(abs(self.stop - self.start) / self.step - ROUNDING) + 1

    @property
    def seconds(self) -> float:           # type: ignore[override]
        return self.count * self.each

    def _level(self, k: int) -> float:
        if k >= self.count - 1:
            return self.stop
        return self.start + math.copysign(self.step, self.stop - self.start) * k

    def events(self, dt: float) -> float:
        k = min(math.floor(dt / self.each), self.count - 1)
        # the steps before k are below the last one, so none of them is clipped: an arithmetic series
        done = k * self.start + math.copysign(self.step, self.stop - self.start) * k * (k - 1) / 2
        return done * self.each + self._level(k) * (dt - k * self.each)

    def rate_at(self, dt: float) -> float:
        return self._level(math.floor(dt / self.each))

    @property
    def end_rate(self) -> float:
        return self.stop


@dataclass(frozen=True)
class Burst(Segment):
    """``base`` events/s with a burst of ``peak`` for ``peak_for`` seconds at the start of every
    ``every`` seconds."""

    base: float
    peak: float
    peak_for: float
    every: float
    seconds: float = math.inf
    kind: ClassVar[str] = "burst"
    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("base", "base"), ("peak", "peak"), ("peak_for", "peak_for"),
                                                     ("every", "every"), ("for", "seconds"))
    RATES: ClassVar[tuple[str, ...]] = ("base", "peak")

    def events(self, dt: float) -> float:
        cycles = math.floor(dt / self.every)
        into = dt - cycles * self.every
        cycle = self.peak * self.peak_for + self.base * (self.every - self.peak_for)
        return cycles * cycle + self.peak * min(into, self.peak_for) + self.base * max(0.0, into - self.peak_for)

    def rate_at(self, dt: float) -> float:
        return self.peak if dt - math.floor(dt / self.every) * self.every < self.peak_for else self.base

    @property
    def end_rate(self) -> float:
        into = self.seconds - math.floor(self.seconds / self.every) * self.every
        return self.peak if 0 < into <= self.peak_for else self.base      # the rate just before the end


@dataclass(frozen=True)
class Sine(Segment):
    """A wave between ``low`` and ``high`` events/s of ``period`` seconds, starting at ``low``:
    ``mid - amp * cos(2 pi t / period)``."""

    low: float
    high: float
    period: float
    seconds: float = math.inf
    kind: ClassVar[str] = "sine"
    FIELDS: ClassVar[tuple[tuple[str, str], ...]] = (("min", "low"), ("max", "high"), ("period", "period"),
                                                     ("for", "seconds"))
    RATES: ClassVar[tuple[str, ...]] = ("low", "high")

    def events(self, dt: float) -> float:
        mid, amp = (self.high + self.low) / 2, (self.high - self.low) / 2
        return mid * dt - amp * self.period / (2 * math.pi) * math.sin(2 * math.pi * dt / self.period)

    def rate_at(self, dt: float) -> float:
        mid, amp = (self.high + self.low) / 2, (self.high - self.low) / 2
        return mid - amp * math.cos(2 * math.pi * dt / self.period)


KINDS: dict[str, type[Segment]] = {k.kind: k for k in (Constant, Ramp, Steps, Burst, Sine)}


def segment_from(doc: dict[str, Any]) -> Segment:
    kind = KINDS[doc["kind"]]
    return kind(**{attr: _decode(doc[key]) for key, attr in kind.FIELDS})


@dataclass(frozen=True)
class Profile:
    """Segments run in order; after the last one the profile ``repeat``\\ s or holds its last rate.

    Where each piece starts (in seconds and in events) is computed once, so a rate or an integral
    is one bisection and one closed form; one constant rate for ever is one multiplication.
    """

    segments: tuple[Segment, ...]
    repeat: bool = False

    def __post_init__(self) -> None:
        segs = self.segments
        if not segs or any(not s.seconds > 0 for s in segs):
            raise ValueError("a profile needs one or more segments, each longer than 0 s")
        if any(math.isinf(s.seconds) for s in segs[:-1]) or (self.repeat and math.isinf(segs[-1].seconds)):
            raise ValueError("only the last segment of a profile that does not repeat may last for ever")
        held = self.repeat or math.isinf(segs[-1].seconds)
        walk = segs if held else (*segs, Constant(segs[-1].end_rate))
        starts, before = [0.0], [0.0]
        for seg in walk[:-1]:
            starts.append(starts[-1] + seg.seconds)
            before.append(before[-1] + seg.events(seg.seconds))
        rates = {s.rate for s in walk if isinstance(s, Constant)}
        flat = rates.pop() if len(rates) == 1 and all(isinstance(s, Constant) for s in walk) else None
        last = walk[-1]
        cycle = before[-1] + last.events(last.seconds) if self.repeat else 0.0
        for name, value in (("_walk", walk), ("_starts", tuple(starts)), ("_before", tuple(before)),
                            ("_flat", flat), ("_period", sum(s.seconds for s in segs)), ("_cycle", cycle)):
            object.__setattr__(self, name, value)

    @classmethod
    def constant(cls, rate: float) -> Profile:
        """``rate`` events/s for ever; 0 means unlimited, as everywhere in the config."""
        return cls((Constant(UNLIMITED if rate == 0 else rate),))

    @property
    def unlimited(self) -> bool:
        return any(isinstance(s, Constant) and math.isinf(s.rate) for s in self.segments)

    @property
    def peak(self) -> float:
        """The highest rate any piece reaches (``inf`` when unlimited; at most the true peak of a
        ``steps``, whose ``step`` counts as one of its rates)."""
        return float(max(max(getattr(s, a) for a in s.RATES) for s in self.segments))

    @property
    def lowest(self) -> float:
        """The lowest rate above 0 any piece is written with (``inf`` when every one is 0)."""
        return float(min((r for s in self.segments for a in s.RATES if (r := getattr(s, a)) > 0), default=math.inf))

    @property
    def flat(self) -> float | None:
        """The rate, when it is one constant rate for ever; None otherwise."""
        flat: float | None = self._flat     # type: ignore[attr-defined]
        return flat

    @property
    def period(self) -> float:
        return float(self._period)      # type: ignore[attr-defined]

    def _locate(self, dt: float) -> tuple[float, Segment, float]:
        """(events before the piece, the piece, seconds into it) at ``dt`` seconds in."""
        before = 0.0
        if self.repeat and dt >= self.period:
            cycles = math.floor(dt / self.period)
            before = cycles * self._cycle          # type: ignore[attr-defined]
            dt -= cycles * self.period
        starts: tuple[float, ...] = self._starts   # type: ignore[attr-defined]
        i = max(0, bisect_right(starts, dt) - 1)
        return before + self._before[i], self._walk[i], dt - starts[i]     # type: ignore[attr-defined]

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

    def scaled(self, factor: float) -> Profile:
        return Profile(tuple(s.scaled(factor) for s in self.segments), self.repeat)

    def document(self) -> dict[str, Any]:
        return {"segments": [s.document() for s in self.segments], "repeat": self.repeat}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Profile:
        return cls(tuple(segment_from(d) for d in doc["segments"]), bool(doc["repeat"]))


PAUSED = Profile((Constant(0.0),))       # nothing due: what a paused run follows


@dataclass(frozen=True)
class Pause:
    """A paused run: the profile it was following, how far in (``phase`` seconds), since when, and
    how much of a timed run was left (``end_left_ns``; -1: no end). Resuming continues exactly there."""

    since_ns: int
    phase: float
    profile: Profile
    end_left_ns: int = -1

    def document(self) -> dict[str, Any]:
        return {"since_ns": self.since_ns, "phase": self.phase, "profile": self.profile.document(),
                "end_left_ns": self.end_left_ns}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Pause:
        return cls(int(doc["since_ns"]), float(doc["phase"]), Profile.from_document(doc["profile"]),
                   int(doc["end_left_ns"]))


@dataclass(frozen=True)
class Plan:
    profile: Profile
    workers: int
    start_ns: int = 0                 # CLOCK_MONOTONIC of the profile's origin; 0 = not started yet
    g0: float = 0.0                   # events added: what was already due when the profile changed
    p0: float = 0.0                   # profile events subtracted: what it had done before this epoch
    bases: tuple[int, ...] = ()       # per worker index: its due count when the epoch began
    m0: int = 0                       # this instance's events already in the bases when the epoch began
    end_ns: int = 0                   # the run ends here (0 = until stopped)
    instance: int = 0                 # this instance's part of a fleet
    instances: int = 1
    generation: int = 0
    pause: Pause | None = None        # paused: what to resume (the profile is PAUSED meanwhile)
    paused_ns: int = 0                # time spent in pauses that have ended
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
        mine = share(math.floor(self.events(t_ns) + ROUNDING), self.instance, self.instances) - self.m0
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

    def phase(self, t_ns: int) -> float:
        """Seconds into the profile at ``t_ns`` (where a new profile or a resume continues from)."""
        if not self.started:
            return 0.0
        if self.end_ns and t_ns > self.end_ns:
            t_ns = self.end_ns
        return (t_ns - self.start_ns) / NS

    # --- changes (the supervisor's side) ----------------------------------------------------------------

    def start(self, t_ns: int, duration: float) -> Plan:
        """The run begins at ``t_ns`` and ends ``duration`` seconds later (0: until stopped)."""
        end = t_ns + round(duration * NS) if duration else 0
        return replace(self, start_ns=t_ns, end_ns=end, generation=self.generation + 1)

    def with_profile(self, profile: Profile, t_ns: int, phase: float = 0.0) -> Plan:
        """The same epoch with ``profile`` from ``t_ns`` on, ``phase`` seconds into it: every due
        count is continuous. A paused plan keeps it for its resume instead."""
        if self.pause is not None:
            return replace(self, pause=replace(self.pause, profile=profile, phase=phase),
                           generation=self.generation + 1)
        if not self.started:
            return replace(self, profile=profile, generation=self.generation + 1)
        origin = t_ns - round(phase * NS)
        return replace(self, profile=profile, start_ns=origin, g0=self.events(t_ns),
                       p0=profile.events((t_ns - origin) / NS), generation=self.generation + 1)

    def rebased(self, t_ns: int, counts: tuple[int, ...]) -> Plan:
        """A new epoch at ``t_ns`` from what each worker index has done (``counts``), nothing more
        due yet. An unlimited plan's due counts are infinite: it is rebased on what was really sent
        before it takes a profile with a rate (a pause, ``ctl rate``, a reload)."""
        return replace(self, profile=Profile((Constant(0.0),)), start_ns=t_ns, g0=0.0, p0=0.0, bases=counts, m0=0,
                       generation=self.generation + 1)

    def scaled(self, factor: float, t_ns: int) -> Plan:
        """Every rate of the profile times ``factor`` from ``t_ns`` on, at the same point of it."""
        if self.pause is not None:
            return self.with_profile(self.pause.profile.scaled(factor), t_ns, self.pause.phase)
        return self.with_profile(self.profile.scaled(factor), t_ns, self.phase(t_ns))

    def paused_at(self, t_ns: int) -> Plan:
        """Nothing more is due from ``t_ns`` on; the profile's phase and what is left of a timed run
        are kept for ``resumed_at``. A timed run has no end while it is paused."""
        if self.pause is not None or not self.started:
            return self
        left = self.end_ns - t_ns if self.end_ns else -1
        held = Pause(t_ns, self.phase(t_ns), self.profile, max(0, left) if self.end_ns else -1)
        return replace(self.with_profile(PAUSED, t_ns), pause=held, end_ns=0)

    def resumed_at(self, t_ns: int) -> Plan:
        """Continue where the pause began: the same profile at the same phase, the same time left."""
        held = self.pause
        if held is None:
            return self
        plan = replace(self, pause=None, paused_ns=self.paused_ns + max(0, t_ns - held.since_ns))
        plan = plan.with_profile(held.profile, t_ns, held.phase)
        return replace(plan, end_ns=t_ns + held.end_left_ns if held.end_left_ns >= 0 else 0)

    def with_workers(self, workers: int, t_ns: int, carried: dict[int, int]) -> Plan:
        """A new epoch from ``t_ns`` with ``workers`` workers: each index starts from its due count
        now (``carried`` gives the counts of indexes that had no worker in this epoch). The run's
        event count goes on (the part of an event not yet due, and which instance of a fleet the
        next event is for), so the epochs add up to the profile's integral: restarting it at 0 made
        a timed run one event short per reload."""
        bases = tuple(self.due(i, t_ns) if i < self.workers else carried.get(i, 0) for i in range(workers))
        if not self.started:
            return replace(self, workers=workers, bases=bases, generation=self.generation + 1)
        p0 = self.profile.events((min(t_ns, self.end_ns or t_ns) - self.start_ns) / NS)
        g0 = self.events(t_ns)
        m0 = share(math.floor(g0 + ROUNDING), self.instance, self.instances)
        return replace(self, workers=workers, bases=bases, g0=g0, p0=p0, m0=m0, generation=self.generation + 1)

    def with_events(self, extra: int) -> Plan:
        """``extra`` more events due to this instance at once (what workers retired by a reload
        still owed), shared by its workers from their next look on."""
        return replace(self, g0=self.g0 + extra * self.instances, generation=self.generation + 1)

    def with_end(self, end_ns: int) -> Plan:
        """The run ends at ``end_ns`` (0: never); a paused plan keeps what would be left of it."""
        if self.pause is not None:
            left = max(0, end_ns - self.pause.since_ns) if end_ns else -1
            return replace(self, pause=replace(self.pause, end_left_ns=left), generation=self.generation + 1)
        return replace(self, end_ns=end_ns, generation=self.generation + 1)

    def document(self) -> dict[str, Any]:
        return {"profile": self.profile.document(), "workers": self.workers, "start_ns": self.start_ns,
                "g0": self.g0, "p0": self.p0, "bases": list(self.bases), "m0": self.m0, "end_ns": self.end_ns,
                "instance": self.instance, "instances": self.instances, "generation": self.generation,
                "pause": self.pause.document() if self.pause else None, "paused_ns": self.paused_ns,
                "extra": self.extra}

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Plan:
        pause = doc.get("pause")
        return cls(profile=Profile.from_document(doc["profile"]), workers=int(doc["workers"]),
                   start_ns=int(doc["start_ns"]), g0=float(doc["g0"]), p0=float(doc["p0"]),
                   bases=tuple(int(b) for b in doc["bases"]), m0=int(doc.get("m0", 0)), end_ns=int(doc["end_ns"]),
                   instance=int(doc["instance"]), instances=int(doc["instances"]),
                   generation=int(doc["generation"]), pause=Pause.from_document(pause) if pause else None,
                   paused_ns=int(doc.get("paused_ns", 0)), extra=dict(doc.get("extra", {})))


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
