"""A reload's hand-over from the running workers to new ones, as a state the loop advances.

Nothing here waits: each turn of the supervisor loop calls ``HandOver.advance``, which does what
is due in the state it is in and says how soon it is worth a look again, so signals, the control
socket and the systemd watchdog are served all through a hand-over of any size.

``RENDERING``
    When the new config sends other messages, its corpus is rendered ``RENDER_STEP`` seconds a turn
    (a mix of 40 workers' pools is seconds of work) while the old workers go on sending.
``SPAWNING``
    The new worker processes are forked, ``SPAWN_BATCH`` a turn. Each one sets up and waits,
    standing by, until the worker of its index has stopped, then continues that stream.
``STANDING_BY``
    Until every new process stands by (or one of them died: the reaper restarts it), at most
    ``HANDOVER_TIMEOUT``; then the old plan is settled. Until the new plan is out, whether a new
    or an old worker is hung is the hand-over's to say (``minds``), not the boot limit's.
``SETTLING``
    Leaving an unlimited rate that runs: a plan with nothing more due is published and the loop
    waits (``SETTLE_TIMEOUT`` at most) until every sending worker has read it, so the new plan is
    rebased on counts that no longer move. Other plans settle at once.
``RETIRING``
    The new plan is out; the old workers have had SIGTERM and are reaped by the loop (their exits
    mean nothing: ``owns``); whoever is left after ``GRACEFUL_TIMEOUT`` gets SIGKILL. When all
    are gone, what retired indexes owe is carried over (``Workers.carry_retired``): ``DONE``.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from loggend.config import Config
from loggend.control.children import GRACEFUL_TIMEOUT, WORKER, Child, ChildSet, kill_quietly
from loggend.control.workers import SETTLE_TIMEOUT, Workers
from loggend.engine import counters as C
from loggend.engine.schedule import Plan

HANDOVER_TIMEOUT = 30.0          # replacements not ready by then: the old workers are stopped anyway
SPAWN_BATCH = 2                  # new worker processes forked per turn of the loop (a fork: ms each, more when busy)
RENDER_STEP = 0.02               # seconds of corpus rendering per turn of the loop
LOOK_SECONDS = 0.05              # while a state waits on the workers, look this often (an exit wakes the loop)

RENDERING, SPAWNING, STANDING_BY, SETTLING, RETIRING, DONE = \
    "rendering", "spawning", "standing by", "settling", "retiring", "done"


class HandOver:
    def __init__(self, workers: Workers, new: Config, children: ChildSet,
                 between: Callable[[], object] = lambda: None) -> None:
        """Start replacing every worker with one built from ``new`` (nothing is forked yet);
        ``between`` runs after each fork (the loop's watchdog ping: a fork of a busy parent is slow)."""
        self.workers, self.children, self.between = workers, children, between
        children.cancel(lambda key: key[0] != WORKER)       # a dead process's streams go to the new ones:
        self.old = {c.pid: c.index for c in children.of_kind(WORKER)}   # restarted as well, it would send twice
        self.old_profile = workers.config.profile()
        self.old_config = workers.config
        workers.config = new
        self.building = workers.corpus_build()
        pids = [workers.shared.block.slot(i)[C.PID] for i in range(new.workers)]
        workers.takes_over = {i: pid if pid in self.old else 0 for i, pid in enumerate(pids)}
        self.fresh: list[Child] = []
        self.state = SPAWNING if self.building is None else RENDERING
        self.since = children.clock()        # when the current state began
        self.held: Plan | None = None        # SETTLING: the plan that holds the workers
        self.t_ns = 0                        # the moment the new plan continues the old one from
        self.retiring = range(0)             # indexes the new plan has no more (fewer workers)

    def owns(self, pid: int) -> bool:
        """Whether ``pid`` is an old worker this hand-over retires (its exit means nothing)."""
        return pid in self.old

    def minds(self, pid: int) -> bool:
        """Whether ``pid`` is hung is this hand-over's to say (its own timeouts): an old worker,
        or a new one until the new plan is out (standing by, it has no heartbeat of its own yet)."""
        return pid in self.old or (self.state in (RENDERING, SPAWNING, STANDING_BY, SETTLING)
                                   and any(c.pid == pid for c in self.fresh))

    @property
    def sending(self) -> Config:
        """The config the workers send by until the hand-over is done: the old one (the old workers send
        until they are gone; the new ones begin as they go)."""
        return self.old_config

    @property
    def done(self) -> bool:
        return self.state == DONE

    def _enter(self, state: str) -> None:
        self.state, self.since = state, self.children.clock()

    def _waited(self, limit: float) -> bool:
        return self.children.clock() - self.since >= limit

    def advance(self) -> float:
        """Do what is due now; returns the seconds until it is worth a look again (0: at once)."""
        step = {RENDERING: self._render, SPAWNING: self._spawn, STANDING_BY: self._stand_by, SETTLING: self._settle,
                RETIRING: self._retire}.get(self.state)
        return step() if step is not None else float("inf")

    def _render(self) -> float:
        assert self.building is not None
        corpus = self.building.step(RENDER_STEP)
        if corpus is None:
            return 0.0
        self.workers.adopt(corpus)
        self.building = None
        self._enter(SPAWNING)
        return 0.0

    def _spawn(self) -> float:
        new = self.workers.config
        for process in range(len(self.fresh), min(len(self.fresh) + SPAWN_BATCH, new.worker_processes)):
            self.fresh.append(self.children.spawn(WORKER, process))
            self.between()
        if len(self.fresh) < new.worker_processes:
            return 0.0
        self._enter(STANDING_BY)
        return self._stand_by()

    def _stand_by(self) -> float:
        gone = any(c.pid not in self.children.children for c in self.fresh)    # reaped: the loop restarts it
        if not gone and not all(self.workers.standing_by(c) for c in self.fresh) \
                and not self._waited(HANDOVER_TIMEOUT):
            return LOOK_SECONDS
        self.t_ns = self.children.clock_ns()
        plan = self.workers.plan
        if not plan.started or plan.pause is not None or not plan.unlimited:
            return self._publish(plan)
        self.held = plan.rebased(self.t_ns, self.workers.accounted_all(plan.workers))
        self.workers.publish(self.held)
        self._enter(SETTLING)
        return self._settle()

    def _settle(self) -> float:
        assert self.held is not None
        if not self.workers.all_seen(self.held) and not self._waited(SETTLE_TIMEOUT):
            return LOOK_SECONDS
        return self._publish(self.held.rebased(self.t_ns, self.workers.accounted_all(self.held.workers)))

    def _publish(self, settled: Plan) -> float:
        """The new plan goes out and the old workers get SIGTERM."""
        w, new, t = self.workers, self.workers.config, self.t_ns
        carried = {i: w.accounted(i) for i in range(new.workers) if i >= w.plan.workers}
        w.retired.update({i: settled.due(i, t) for i in range(new.workers, settled.workers)})
        plan = settled.with_workers(new.workers, t, carried)
        if plan.started:
            if new.profile() != self.old_profile:
                plan = plan.with_profile(new.profile(), t)
            plan = plan.with_end(w.end_ns(new.duration, plan))
        w.publish(plan)
        w.takes_over = {}
        self.retiring = range(new.workers, settled.workers)
        for pid in self.old:
            kill_quietly(pid, signal.SIGTERM)
        self._enter(RETIRING)
        return self._retire()

    def _retire(self) -> float:
        left = self.children.alive(self.old)
        if left and not self._waited(GRACEFUL_TIMEOUT):
            return LOOK_SECONDS
        if left:                                  # SIGKILL: the loop reaps them at the SIGCHLD it brings
            for pid in left:
                kill_quietly(pid, signal.SIGKILL)
            return LOOK_SECONDS
        self.workers.carry_retired(self.retiring)
        self._enter(DONE)
        return float("inf")
