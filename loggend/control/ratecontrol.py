"""Rate control of a running instance: ``loggend ctl`` requests and SIGUSR1 / SIGUSR2.

Every change is a new plan from now on (``loggend.engine.schedule``), published to the workers
like a reload's: nobody restarts, every count stays continuous and exact.

* ``rate R`` / ``profile SPEC``: a constant rate (0 = unlimited, as ``--rate``; else at least
  1 ev/s) or a profile from its start, from now on. While paused, it is what the resume will continue with.
* ``pause``: nothing more is due; the profile is frozen where it was (its phase, and what is left
  of a timed run). ``resume``: it continues from exactly there, ``RESUME_LEAD`` from now: a paused
  worker looks at the plan every ``IDLE_WAIT``, so by then every one has it and they all start
  together, instead of the late ones catching up with a burst (which a receiver would pay for).
* SIGUSR1 doubles and SIGUSR2 halves every rate of the profile in force (as syslog-ng's loggen
  does), at the same point of it; SIGUSR1 stops at ``max_rate``.
* ``reload``: what SIGHUP does, from the control socket (``--force`` lets it raise the rate).
* **Bounds.** A change (``rate``, ``profile``, a reload) to a rate above ``max_rate``, or more than
  ``JUMP`` times the rate in force, is refused unless the request says ``--force``: a typo (100m
  for 100k) does not flood the receiver.
* ``status``: the state, the target now, the profile, sent and planned so far.

Each change is logged with who asked for it. A request arrives as one line from the control
socket (``loggend.control.ctlsocket``) and gets one reply document.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from loggend.control.ctlsocket import Peer
from loggend.control.workers import Workers
from loggend.engine.journal import NOTICE, WARNING, Log
from loggend.engine.pacing import IDLE_WAIT
from loggend.engine.schedule import NS, Plan, Profile
from loggend.errors import UsageError
from loggend.parsers import MAX_RATE, MIN_RATE, parse_rate
from loggend.profiles import format_profile, parse_profile

COMMANDS = ("status", "rate", "profile", "pause", "resume", "reload")
FORCE = "--force"
JUMP = 10.0                                      # a change raising the rate more than this many times needs --force
RESUME_LEAD_NS = round(2 * IDLE_WAIT * NS)       # a resume starts this long after it is asked for
SCALE_NAMES = {2.0: "doubled", 0.5: "halved"}

Counters = Callable[[int], dict[str, Any]]


def describe(profile: Profile) -> str:
    """``250,000 ev/s``, ``unlimited`` or ``profile ramp:10k-200k/1m``."""
    flat = profile.flat
    if flat is not None:
        return "unlimited" if flat == float("inf") else f"{flat:,.0f} ev/s"
    return f"profile {format_profile(profile)}"


def over_bound(before: Profile, after: Profile, top: float) -> str:
    """Why going from ``before`` to ``after`` needs --force: above ``top`` (max_rate; 0: none), or
    more than ``JUMP`` times the peak in force; "" when it does not."""
    if top and after.peak > top:
        return f"{describe(after)} is above max_rate {top:,.0f} ev/s"
    if not before.unlimited and 0 < before.peak and after.peak > JUMP * before.peak:
        return f"{describe(after)} is more than {JUMP:g} times the rate in force ({describe(before)})"
    return ""


class RateControl:
    def __init__(self, pool: Workers, log: Log, counters: Counters,
                 now_ns: Callable[[], int] = time.monotonic_ns, reloader: Callable[[], None] = lambda: None) -> None:
        self.pool, self.log, self.counters, self.now_ns = pool, log, counters, now_ns
        self.changes = 0                  # live changes so far (the summary says how many)
        self.reloader = reloader          # the supervisor's reload (as at SIGHUP)
        self.force_reload = False         # the next reload may raise the rate past the bounds
        self.reload_outcome: tuple[bool, str] | None = None    # what the last reload did (read_reload says)

    def take_force(self) -> bool:
        """Whether this reload was forced (``loggend ctl reload --force``): once, for the reload that reads it
        (one deferred until a hand-over is done keeps it; a later one does not inherit it)."""
        forced, self.force_reload = self.force_reload, False
        return forced

    def reload_bound(self, running: Profile, new: Profile, top: float, forced: bool = False) -> str:
        """Why a reload from the file's ``running`` profile to ``new`` is refused ("" when it is not:
        the file's rate did not change, or the reload was forced)."""
        return "" if forced or new == running else over_bound(self.following(), new, top)

    # --- what the plan is now ----------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        return self.pool.plan

    def following(self) -> Profile:
        """The profile in force, or the one a paused run will resume."""
        return self.plan.pause.profile if self.plan.pause else self.plan.profile

    def state(self, now_ns: int) -> str:
        plan = self.plan
        if not plan.started:
            return "starting"
        if plan.pause is not None:
            return "paused"
        return "over" if plan.end_ns and now_ns >= plan.end_ns else "running"

    def paused_seconds(self, now_ns: int) -> float:
        plan = self.plan
        ongoing = now_ns - plan.pause.since_ns if plan.pause else 0
        return (plan.paused_ns + ongoing) / NS

    def status(self, now_ns: int | None = None) -> dict[str, Any]:
        now_ns = self.now_ns() if now_ns is None else now_ns
        plan, profile = self.plan, self.following()
        return {
            "state": self.state(now_ns), "target_rate": self.pool.target_rate(now_ns),
            "unlimited": profile.unlimited, "following": describe(profile),
            "profile": format_profile(profile),
            "phase_seconds": round(plan.pause.phase if plan.pause else max(0.0, plan.phase(now_ns)), 3),
            "paused_seconds": round(self.paused_seconds(now_ns), 3), "changes": self.changes,
            "end_in_seconds": round((plan.end_ns - now_ns) / NS, 3) if plan.end_ns else None,
            **self.counters(now_ns),
        }

    # --- changes -----------------------------------------------------------------------------------

    def _apply(self, plan: Plan, line: str, by: str) -> str:
        self.changes += 1
        self.pool.publish(plan)
        self.log(f"{line} ({by})", NOTICE)
        return line

    def _refusal(self, now_ns: int) -> str | None:
        state = self.state(now_ns)
        if state == "starting":
            return "the run has not started yet (workers are setting up); try again in a moment"
        if state == "over":
            return "the run is over (its duration has passed)"
        return None

    def set_profile(self, profile: Profile, by: str, force: bool = False) -> tuple[bool, str]:
        now = self.now_ns()
        if (why := self._refusal(now)) is not None:
            return False, why
        if not force and (why := over_bound(self.following(), profile, self.pool.config.max_rate)):
            self.log(f"{by}: refused: {why}", WARNING)
            return False, f"refused: {why}; add {FORCE} if you mean it"
        before = describe(self.following())
        paused = self.plan.pause is not None
        plan = self.pool.settled(self.plan, now).with_profile(profile, now)
        what = f"rate: {describe(profile)} (was {before})"
        return True, self._apply(plan, what + ("; paused: it applies on resume" if paused else ""), by)

    def pause(self, by: str) -> tuple[bool, str]:
        now = self.now_ns()
        if (why := self._refusal(now)) is not None:
            return False, why
        if self.plan.pause is not None:
            return True, "already paused"
        before = self.plan                  # settling an unlimited plan publishes one of its own
        phase = before.phase(now)
        settled = self.pool.settled(before, now)
        plan = settled.paused_at(now)
        if settled is not before and plan.pause is not None:       # an unlimited run resumes unlimited
            plan = replace(plan, pause=replace(plan.pause, profile=before.profile, phase=phase))
        return True, self._apply(plan, f"paused: {describe(before.profile)} frozen {phase:.1f} s in", by)

    def resume(self, by: str) -> tuple[bool, str]:
        now = self.now_ns()
        held = self.plan.pause
        if held is None:
            return True, "not paused"
        seconds = (now - held.since_ns) / NS
        return True, self._apply(self.plan.resumed_at(now + RESUME_LEAD_NS), f"resumed: {describe(held.profile)} from "
                                                            f"{held.phase:.1f} s in, after {seconds:.1f} s paused", by)

    def scale(self, factor: float, by: str) -> tuple[bool, str]:
        """Every rate times ``factor`` (SIGUSR1: 2, SIGUSR2: 0.5), at the same point of the profile."""
        now = self.now_ns()
        if (why := self._refusal(now)) is not None:
            self.log(f"{by}: ignored: {why}", WARNING)
            return False, why
        profile = self.following()
        if profile.unlimited:
            self.log(f"{by}: ignored: the rate is unlimited", WARNING)
            return False, "the rate is unlimited"
        top = self.pool.config.max_rate
        if top and factor > 1 and profile.peak * factor > top:          # SIGUSR1 stops at max_rate
            if profile.peak >= top:
                self.log(f"{by}: ignored: the rate is at max_rate {top:,.0f} ev/s already", WARNING)
                return False, "the rate is at max_rate already"
            factor = top / profile.peak
        base = self.pool.config.profile()                       # without max_rate: at most JUMP times the config's
        if factor > 1 and not top and not base.unlimited and 0 < base.peak < profile.peak * factor / JUMP:
            why = (f"the rate would be more than {JUMP:g} times the configured {describe(base)} (loggend ctl rate R "
                   f"{FORCE} goes past it)")
            self.log(f"{by}: ignored: {why}", WARNING)
            return False, why
        scaled = profile.scaled(factor)
        why = (f"the rate would be over {MAX_RATE:,.0f} ev/s, the most a rate may be" if scaled.peak > MAX_RATE
               else f"a rate would be under {MIN_RATE:g} ev/s, the least a rate may be but 0"
               if scaled.lowest < MIN_RATE else "")
        if why:
            self.log(f"{by}: ignored: {why}", WARNING)
            return False, why
        verb = SCALE_NAMES.get(factor, f"scaled x{factor:.3g} (to max_rate)" if top and scaled.peak >= top
                               else f"scaled x{factor:g}")
        return True, self._apply(self.plan.scaled(factor, now), f"rate {verb}: {describe(scaled)} "
                                                                f"(was {describe(profile)})", by)

    # --- requests ----------------------------------------------------------------------------------

    def command(self, line: str, peer: Peer) -> dict[str, Any]:
        """One request line from the control socket -> its reply document."""
        verb, _, arg = line.strip().partition(" ")
        words = arg.split()
        force, arg = FORCE in words, " ".join(w for w in words if w != FORCE)
        by = f"ctl, pid {peer.pid} uid {peer.uid}"
        try:
            if verb not in COMMANDS:
                raise UsageError(f"{verb!r} is not a command; expected one of {', '.join(COMMANDS)}")
            if verb in ("status", "pause", "resume", "reload") and arg:
                raise UsageError(f"{verb}: takes no value (got {arg!r})")
            if force and verb not in ("rate", "profile", "reload"):
                raise UsageError(f"{verb}: {FORCE} is for rate, profile and reload")
            if verb == "status":
                ok, message = True, "ok"
            elif verb == "reload":
                self.force_reload, self.reload_outcome = force, None
                self.reloader()                  # read at once (the force taken), or after a hand-over under way
                ok, message = self.reload_outcome or (True, "reload: it follows the hand-over under way (the run's "
                                                            "log says what it did)")
            elif verb == "rate":
                ok, message = self.set_profile(Profile.constant(parse_rate("rate", arg)), by, force)
            elif verb == "profile":
                profile = parse_profile("profile", arg)
                if profile is None:
                    raise UsageError("profile: needs segments, e.g. ramp:10k-200k/60s")
                ok, message = self.set_profile(profile, by, force)
            else:
                ok, message = getattr(self, verb)(by)
        except UsageError as err:
            return {"ok": False, "usage": True, "message": str(err)}
        return {"ok": ok, "message": message, "status": self.status()}
