"""The search for the highest rate a receiver keeps up with (RFC 2544 throughput, FD.io MLRsearch).

Free of processes and clocks of its own: ``Search`` asks a ``run_trial(rate, seconds, confirm)``
function for trials and decides from their verdicts, so it is tested with a simulated receiver.

1. **Rise**: trials at ``start_rate``, then twice the rate each time (never above ``max_rate``),
   until one does not pass. If the very first does not pass, there is no limit to report.
2. **Bisect** between the highest rate that passed (``lo``) and the lowest that did not (``hi``)
   until ``hi - lo <= precision * lo``: the true limit is then within ``precision`` above ``lo``.
3. **Confirm**: one longer trial (``confirm`` seconds) at ``lo``. If it passes, ``lo`` is the
   limit. If not, the short trials were too lenient there (a receiver's buffers absorb more of a
   short trial), so the search goes on with confirmation-length trials only: down from ``lo`` in
   steps of ``precision``, doubling, until one passes, then a bisection between the two; every
   pass is then itself a confirmation.

Every trial is judged by a list of *criteria* (``Criterion``), each returning None (satisfied)
or a ``(verdict, reason)``; the first objection decides. ``fail`` means the receiver did not keep
up; ``short`` means loggen could not offer the rate (the sender is the limit there, so the search
treats it as an upper bound and says so). Over UDP the criteria are ``OfferedCriterion`` (loggen
sent what the plan asked, else ``short``) and ``LossCriterion`` (loss at most ``--loss`` percent).
Over TCP and TLS the receiver pushes back instead of dropping, so ``PushBackCriterion`` takes the
place of the first: a trial fails when the workers were blocked (waiting for the receiver to read)
more than ``--max-blocked`` percent of the time, or when the reached rate is under the offered one;
the loss criterion still counts what never arrived (``criteria_for``).

The search stops early when the next trial would overrun ``max_time`` or when ``run_trial``
raises ``Interrupted`` (Ctrl-C); the ``Outcome`` then says what is known.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

PASS, FAIL, SHORT = "pass", "fail", "short"
OFFERED_FRACTION = 0.99        # loggen must send at least this part of what the plan made due


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM) during a trial: the search stops and reports what it knows."""


@dataclass(frozen=True)
class Settings:
    start_rate: float
    max_rate: float
    precision: float              # a fraction: 0.02 for 2 %
    loss_percent: float
    trial: float                  # seconds
    confirm: float
    pause: float
    max_time: float
    max_blocked: float = 1.0      # percent of the workers' time (TCP, TLS)

    def document(self) -> dict[str, Any]:
        return {"start_rate": self.start_rate, "max_rate": self.max_rate, "precision_percent": self.precision * 100,
                "loss_percent": self.loss_percent, "trial_seconds": self.trial, "confirm_seconds": self.confirm,
                "pause_seconds": self.pause, "max_time_seconds": self.max_time,
                "max_blocked_percent": self.max_blocked}


@dataclass
class Trial:
    """One trial: ``rate`` asked for ``seconds``; what the plan made due, what was sent, what the
    receiver counted; the verdict and why."""

    number: int
    rate: float
    seconds: float
    planned: int
    sent: int
    counted: int
    confirmation: bool = False
    started: float = 0.0                      # unix time
    figures: dict[str, int] = field(default_factory=dict)   # feedback extras (the sink's loss...)
    verdict: str = ""
    reason: str = ""
    blocked_ns: int = 0                        # the workers' time waiting for the receiver, summed
    workers: int = 1
    injected: tuple[str, ...] = ()             # scenario instances injected at its start
    injected_messages: int = 0                 # scenario messages sent in it (left out of ``counted``)

    @property
    def blocked_percent(self) -> float:
        """Of the workers' time in the trial, the part spent blocked by the receiver (push-back)."""
        return 100.0 * self.blocked_ns / (self.workers * self.seconds * 1e9) if self.seconds else 0.0

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.counted)

    @property
    def loss_percent(self) -> float:
        return 100.0 * self.lost / self.sent if self.sent else 0.0

    @property
    def sent_eps(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def delivered_eps(self) -> float:
        return min(self.counted, self.sent) / self.seconds if self.seconds else 0.0

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def document(self) -> dict[str, Any]:
        return {"number": self.number, "rate": self.rate, "seconds": round(self.seconds, 3),
                "confirmation": self.confirmation, "started": self.started, "planned": self.planned,
                "sent": self.sent, "received": self.counted, "lost": self.lost,
                "loss_percent": round(self.loss_percent, 6), "sent_eps": round(self.sent_eps, 1),
                "delivered_eps": round(self.delivered_eps, 1), "verdict": self.verdict, "reason": self.reason,
                "blocked_percent": round(self.blocked_percent, 3), "figures": self.figures,
                "injected": list(self.injected), "injected_messages": self.injected_messages}


class Criterion(Protocol):
    def judge(self, trial: Trial) -> tuple[str, str] | None: ...


@dataclass(frozen=True)
class LossCriterion:
    """The receiver kept up: it counted all but at most ``max_percent`` of what was sent."""

    max_percent: float

    def judge(self, trial: Trial) -> tuple[str, str] | None:
        if trial.loss_percent > self.max_percent:
            return FAIL, f"loss {trial.loss_percent:.4f} % > {self.max_percent:g} %"
        return None


@dataclass(frozen=True)
class OfferedCriterion:
    """loggen really offered the rate: it sent at least ``fraction`` of what its plan made due."""

    fraction: float = OFFERED_FRACTION

    def judge(self, trial: Trial) -> tuple[str, str] | None:
        if trial.planned and trial.sent < self.fraction * trial.planned:
            return SHORT, (f"loggen sent only {100.0 * trial.sent / trial.planned:.1f} % of the rate "
                           "(its own limit here, not the receiver's)")
        return None


@dataclass(frozen=True)
class PushBackCriterion:
    """TCP and TLS: the receiver kept up without pushing back: the workers were blocked at most
    ``max_blocked_percent`` of the time and sent what the plan asked."""

    max_blocked_percent: float
    fraction: float = OFFERED_FRACTION

    def judge(self, trial: Trial) -> tuple[str, str] | None:
        if trial.blocked_percent > self.max_blocked_percent:
            return FAIL, (f"pushed back: workers blocked {trial.blocked_percent:.1f} % of the time > "
                          f"{self.max_blocked_percent:g} %")
        if trial.planned and trial.sent < self.fraction * trial.planned:
            return FAIL, f"pushed back: loggen sent only {100.0 * trial.sent / trial.planned:.1f} % of the rate"
        return None


def criteria_for(protocol: str, loss_percent: float, max_blocked_percent: float) -> list[Criterion]:
    """The verdict of a trial over ``protocol``: the first of these that objects decides."""
    first: Criterion = OfferedCriterion() if protocol == "udp" else PushBackCriterion(max_blocked_percent)
    return [first, LossCriterion(loss_percent)]


def judge(trial: Trial, criteria: Sequence[Criterion]) -> Trial:
    """Set the trial's verdict: the first criterion that objects decides, else it passed."""
    for criterion in criteria:
        objection = criterion.judge(trial)
        if objection is not None:
            trial.verdict, trial.reason = objection
            return trial
    trial.verdict, trial.reason = PASS, ""
    return trial


@dataclass
class Outcome:
    limit: float | None = None          # the highest rate that passed (confirmed or not)
    confirmed: bool = False
    upper: float | None = None          # the lowest rate that did not pass
    ceiling: bool = False               # the upper bound is loggen's own (a SHORT trial), not the receiver's
    at_max_rate: bool = False           # max_rate itself passed: the receiver's limit is above it
    stopped: str = ""                   # "": finished; else why it stopped early
    trials: list[Trial] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.limit is not None and self.confirmed

    def summary(self) -> str:
        """The final line."""
        def r(rate: float | None) -> str:
            return f"{rate:,.0f} ev/s" if rate is not None else "-"
        if self.found:
            confirm = next(t for t in reversed(self.trials) if t.confirmation and t.passed)
            where = (f"; the receiver kept up with --max-rate {r(self.limit)}, its limit is higher" if self.at_max_rate
                     else f"; loggen itself could not offer {r(self.upper)} here" if self.ceiling
                     else f"; {r(self.upper)} did not pass" if self.upper else "")
            return (f"limit: {r(self.limit)} (confirmed for {confirm.seconds:.0f} s, loss "
                    f"{confirm.loss_percent:.4f} %{where})")
        why = f" ({self.stopped})" if self.stopped else ""
        if self.limit is not None:
            above = f", {r(self.upper)} did not" if self.upper is not None else "; no higher rate was tried"
            return f"no confirmed limit{why}: {r(self.limit)} passed{above}"
        first = self.trials[0] if self.trials else None
        if first is not None and not first.passed:
            return f"no limit: even the start rate {r(first.rate)} did not pass ({first.reason})"
        return f"no limit{why}"


class Search:
    def __init__(self, settings: Settings, run_trial: Callable[[float, float, bool], Trial],
                 elapsed: Callable[[], float]) -> None:
        self.settings, self.run_trial, self.elapsed = settings, run_trial, elapsed
        self.outcome = Outcome()

    def time_left(self) -> float:
        return self.settings.max_time - self.elapsed()

    def _trial(self, rate: float, confirmation: bool = False) -> Trial | None:
        """One trial at ``rate`` (whole events/s), or None when there is no time left for it."""
        seconds = self.settings.confirm if confirmation else self.settings.trial
        if seconds + self.settings.pause > (left := self.time_left()):
            s = self.settings
            self.outcome.stopped = (f"--max-time {s.max_time:g} s reached" if self.outcome.trials else
                                    f"--max-time {s.max_time:g} s: {max(0.0, left):.1f} s left, too little for a "
                                    f"{seconds:g} s trial and its {s.pause:g} s pause")
            return None
        trial = self.run_trial(float(round(rate)), seconds, confirmation)
        self.outcome.trials.append(trial)
        if not trial.passed and (self.outcome.upper is None or trial.rate <= self.outcome.upper):
            self.outcome.upper, self.outcome.ceiling = trial.rate, trial.verdict == SHORT
        return trial

    def run(self) -> Outcome:
        try:
            self._search()
        except Interrupted:
            self.outcome.stopped = "interrupted"
        return self.outcome

    def _search(self) -> None:
        s, out = self.settings, self.outcome
        rate = s.start_rate
        while True:                                                    # 1. rise
            trial = self._trial(rate)
            if trial is None:
                return
            if not trial.passed:
                break
            out.limit = trial.rate
            if trial.rate >= s.max_rate:
                out.at_max_rate = True
                break
            rate = min(trial.rate * 2, s.max_rate)
        if out.limit is None or not self._bisect(confirmation=False):  # 2. bisect (nothing passed: no limit)
            return
        trial = self._trial(out.limit, confirmation=True)              # 3. confirm
        if trial is None:
            return
        if trial.passed:
            out.confirmed = True
            return
        out.at_max_rate = False
        if self._descend() and self._bisect(confirmation=True):
            out.confirmed = True

    def _descend(self) -> bool:
        """Down from a failed confirmation with confirmation-length trials, in steps of ``precision``
        that double, until one passes (it is the new lower bound); False when none can."""
        out = self.outcome
        assert out.upper is not None
        step = max(1.0, self.settings.precision * out.upper)
        while (rate := out.upper - step) >= 1:
            trial = self._trial(rate, confirmation=True)
            if trial is None:
                return False
            if trial.passed:
                out.limit = trial.rate
                return True
            step *= 2
        out.limit, out.stopped = None, "every confirmation-length trial failed"
        return False

    def _bisect(self, confirmation: bool) -> bool:
        """Narrow ``limit`` .. ``upper`` down to the precision; False when out of time."""
        out, precision = self.outcome, self.settings.precision
        while (out.limit is not None and out.upper is not None
               and out.upper - out.limit > max(1.0, precision * out.limit)):
            mid = math.floor((out.limit + out.upper) / 2)
            if mid <= out.limit:
                break
            trial = self._trial(mid, confirmation)
            if trial is None:
                return False
            if trial.passed:
                out.limit = trial.rate
        return True
