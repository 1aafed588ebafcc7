"""Workers as a child kind: their spawner, the run's rate plan, the start, reloads and down time.

* **The plan.** ``Plan`` (``loggend.engine.schedule``) is published on the shared plan board; the
  workers pace against it and pick up every change within a tick. A rate or duration change is
  a new plan: no process restarts, every count continuous.
* **The start.** Workers set up (pool, socket, transport) and wait; once every one of them is
  ready the plan starts, so 40 workers begin together instead of the first one running 1.5 s
  ahead of the last (and nobody starts behind). With a start time (``--start-at``, the fleet's
  common start) the plan goes out ``START_LEAD_NS`` before that wall-clock moment, converted to
  CLOCK_MONOTONIC then, and the supervisor sleeps until then instead of polling.
* **The instance.** In a fleet the plan carries this instance's index and count, so its due
  counts are exactly its share of the fleet's (``Plan.due``).
* **Hand-over.** Any other reload (the target, the messages, the worker count...) starts the new
  workers first; each waits, set up, until the worker of its index has stopped and then
  continues that stream. Only when every replacement is ready does the new plan go out and the
  old workers get SIGTERM, so the run never stops sending (``loggend.control.handover``: a
  state the supervisor loop advances, never a wait).
* **Processes.** Worker process ``p`` of ``worker_processes`` serves workers ``p``, ``p + P``...
  (``loggend.engine.group``); the child set knows processes by ``p``, the counters know workers by
  index. A process that dies takes all its workers down and its replacement carries all of them
  on; a hung one is found by the oldest heartbeat of its workers.
* **Down time.** From a worker's death to its replacement's first send, the index sends nothing:
  the time is added to the slot's ``DOWN_NS`` and the replacement makes up what it can
  (``loggend.engine.pacing``); the summary says what it could not.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from typing import TextIO

from loggend.config import Config
from loggend.content import mix
from loggend.control.children import Child, fork_child
from loggend.control.shared import SharedRun
from loggend.engine import counters as C
from loggend.engine.group import WorkerGroup, members
from loggend.engine.journal import WARNING, Log
from loggend.engine.render import CORPUS_CHUNK, CORPUS_SIZE, Corpus, CorpusBuild
from loggend.engine.schedule import NS, BoardPlan, Plan
from loggend.engine.worker import COUNT_GRACE, Worker, process_gone
from loggend.fleet import format_time

START_DELAY_NS = 5_000_000       # the plan starts this long after the last worker is ready
START_LEAD_NS = 50_000_000       # with a start time: the plan goes out this long before it
START_POLL_SECONDS = 0.005       # until every worker is ready, look this often
SETTLE_TIMEOUT = 1.0             # leaving an unlimited rate: at most this long for every worker to stop
SETTLE_POLL = 0.002              # a live change (``loggend ctl``) looks this often meanwhile
READY_STATES = (C.STATE_READY, C.STATE_RUNNING)


class Workers:
    """The run's workers: how they are forked, the plan they follow, their start and down time."""

    def __init__(self, config: Config, shared: SharedRun, log: Log,
                 outputs: tuple[TextIO, ...], start_at: float | None = None,
                 wallclock: Callable[[], float] = time.time) -> None:
        self.config, self.shared, self.log, self.outputs = config, shared, log, outputs
        self.start_at, self.wallclock = start_at, wallclock     # the fleet's start (unix seconds), or None
        self.corpus: Corpus | None = None
        self.too_long: dict[str, int] = {}            # the mix's messages over max_length, by source
        self.plan = Plan(config.profile(), config.workers, instance=config.instance, instances=config.instances)
        self.requested_start_ns = 0                   # the start time on CLOCK_MONOTONIC, once converted
        self.takes_over: dict[int, int] = {}          # index -> pid of the worker a replacement waits for
        self.down_since: dict[int, int] = {}          # index -> CLOCK_MONOTONIC ns it stopped sending
        self.retired: dict[int, int] = {}             # index -> its due count when a reload retired it
        self.run_start_ns = 0                         # when the plan first started
        self.close_in_child: tuple[socket.socket, ...] = ()     # the parent's sockets a worker must not keep

    def corpus_size(self) -> int:
        """Messages the workers' windows reach: all of ``CORPUS_SIZE`` only when they need it.

        The corpus is rendered in chunks from one seed, so a shorter one is a prefix of the full
        one and every window within it is the same: 2 workers of 10,000 start 5 times sooner
        (which is what lets a fleet's instances be ready well before their start time).
        """
        need = self.config.messages.pool_size * self.config.workers
        return min(CORPUS_SIZE, -(-need // CORPUS_CHUNK) * CORPUS_CHUNK)

    def render_corpus(self) -> None:
        """The config's corpus, rendered at once (at the start, before any worker forks)."""
        building = self.corpus_build()
        if building is not None:
            self.adopt(building.step())

    def corpus_build(self) -> CorpusBuild | None:
        """The rendering the config needs, to be stepped (a reload's, in the loop's turns), or None
        when the corpus in hand serves it (or a replay, whose workers read their own lines)."""
        size = self.corpus_size()
        spec = self.config.messages
        if spec.replay is not None:
            self.corpus = None
            return None
        if self.corpus is not None and self.corpus.spec == spec and len(self.corpus) >= size:
            return None
        self.too_long = {}
        if not spec.sources:
            return CorpusBuild(spec, self.wallclock(), size)
        return mix.corpus_build(spec, self.wallclock(), size, self.too_long)

    def adopt(self, corpus: Corpus | None) -> None:
        """A rendered corpus becomes the one new workers take their windows of."""
        assert corpus is not None
        self.corpus = corpus
        for name, count in self.too_long.items():
            self.log(f"sources: {count:,} {name} messages longer than max_length {corpus.spec.max_length:,} were "
                     f"left out (others drawn instead); a larger --max-length sends them", WARNING)

    def members(self, process: int) -> range:
        """The worker indexes worker process ``process`` serves."""
        return members(process, self.config.workers, self.config.worker_processes)

    def count_restart(self, process: int) -> None:
        """Worker process ``process`` is restarted: its workers' RESTARTS count it."""
        for index in self.members(process):
            self.shared.block.slot(index)[C.RESTARTS] += 1

    def label(self, process: int) -> str:
        """How the log names a worker process: ``worker 3``, or ``worker process 1 (workers 1, 3, 5)``."""
        served = self.members(process)
        if self.config.worker_processes >= self.config.workers:
            return f"worker {process}"
        shown = ", ".join(str(i) for i in served) if len(served) <= 4 else \
            f"{served[0]}, {served[1]} ... {served[-1]}: {len(served)}"
        return f"worker process {process} (workers {shown})"

    def spawn(self, process: int) -> int:
        """Fork worker process ``process``; it carries its workers' counts and streams on."""
        workers = []
        for index in self.members(process):
            spec = self.config.worker_spec(index, self.takes_over.get(index, 0))
            self.shared.stream_block.set_name(index, spec.stream.encode())       # announced to the local sink
            workers.append(Worker(spec, self.shared.block.slot(index), BoardPlan(self.shared.plan_board),
                                  corpus=self.corpus))
        shared = self.config.worker_processes < self.config.workers
        group = WorkerGroup(workers, workers[0].spec.cpu, f"loggend-p{process}" if shared else "")
        close = self.close_in_child

        def body() -> int:
            for sock in close:      # the dashboard's listening socket: it must not outlive the supervisor
                sock.close()
            group.init_process()
            return group.run()
        return fork_child(body, self.outputs)

    def publish(self, plan: Plan) -> None:
        self.plan = plan
        self.shared.plan_board.publish(plan.document())

    # --- the start and the end -------------------------------------------------------------------------

    def ready(self, indexes: range) -> bool:
        return all(self.shared.block.slot(i)[C.STATE] in READY_STATES for i in indexes)

    def start_when_ready(self, now_ns: int) -> float:
        """Start the plan once every worker is set up (and its start time is near); returns the
        seconds until it is worth looking again (``math.inf`` once started)."""
        if self.plan.started:
            return math.inf
        if not self.ready(range(self.config.workers)):
            return START_POLL_SECONDS
        at_ns = now_ns + START_DELAY_NS
        if self.start_at is not None:
            requested = now_ns + round((self.start_at - self.wallclock()) * NS)
            if not self.requested_start_ns:
                self.log(f"every worker is ready; the run starts at {format_time(self.start_at)} "
                         f"(in {(requested - now_ns) / NS:.3f} s)")
            self.requested_start_ns = requested
            if requested - START_LEAD_NS > now_ns:
                return (requested - START_LEAD_NS - now_ns) / NS
            at_ns = max(requested, at_ns)
        self.run_start_ns = at_ns
        self.publish(self.plan.start(self.run_start_ns, self.config.duration))
        return math.inf

    def over(self, now_ns: int) -> bool:
        """A timed run past its end and the grace to finish: nobody is restarted any more."""
        return bool(self.plan.end_ns) and now_ns > self.plan.end_ns + COUNT_GRACE * NS

    def wanted(self, child: Child, now_ns: int) -> bool:
        return child.index < self.config.worker_processes and not self.over(now_ns)

    def planned(self, now_ns: int) -> int | None:
        """What the plan made due up to now (or its end), over every index; None when unlimited."""
        if not self.plan.started or self.plan.unlimited:
            return None
        t = min(now_ns, self.plan.end_ns) if self.plan.end_ns else now_ns
        return sum(self.plan.due(i, t) for i in range(self.plan.workers)) + sum(self.retired.values())

    def target_rate(self, now_ns: int) -> float:
        """The run's rate due now (it follows the profile; 0: unlimited, paused or over)."""
        if self.plan.unlimited:
            return 0.0
        return self.plan.rate_now(now_ns) if self.plan.started else self.plan.profile.rate_at(0.0)

    # --- down time -----------------------------------------------------------------------------------

    def died(self, child: Child, now_ns: int) -> None:
        """A worker process that will be restarted has died: each of its workers is down since its
        last heartbeat (a hung one stopped sending long before it was killed)."""
        if not self.plan.started:
            return
        for index in self.members(child.index):
            if index not in self.down_since:
                slot = self.shared.block.slot(index)
                beat = slot[C.HEARTBEAT_NS] if slot[C.PID] == child.pid else 0
                self.down_since[index] = min(now_ns, beat) if beat else now_ns

    def account_down(self, now_ns: int, final: bool = False) -> None:
        """Close the down periods whose replacement sends again (all of them at the end)."""
        for index, since in list(self.down_since.items()):
            slot = self.shared.block.slot(index)
            back = slot[C.STARTED_NS] if slot[C.STARTED_NS] > since else (now_ns if final else 0)
            if back:
                slot[C.DOWN_NS] += back - since
                del self.down_since[index]

    def heartbeat(self, child: Child) -> int | None:
        """A worker process's oldest heartbeat of its running workers; once all of them have stopped
        (it is exiting), the last one's; None while none runs yet (hung detection)."""
        beats, final = [], []
        for index in self.members(child.index):
            slot = self.shared.block.slot(index)
            if slot[C.PID] == child.pid:
                state = slot[C.STATE]
                if state in READY_STATES:
                    beats.append(slot[C.HEARTBEAT_NS])
                elif state == C.STATE_STOPPED:
                    final.append(slot[C.HEARTBEAT_NS])
        if beats:
            return min(beats)
        return max(final) if final else None

    def setup_progress(self, child: Child) -> int:
        """A worker process's latest sign of life while it sets up its workers (0: none yet)."""
        beats = [self.shared.block.slot(i)[C.HEARTBEAT_NS] for i in self.members(child.index)
                 if self.shared.block.slot(i)[C.PID] == child.pid
                 and self.shared.block.slot(i)[C.STATE] == C.STATE_STARTING]
        return max(beats, default=0)

    # --- reloads -------------------------------------------------------------------------------------

    def change_in_place(self, new: Config, now_ns: int) -> None:
        """A new rate, profile and/or duration from now on, for the workers that run. A rate set live
        (``loggend ctl``, SIGUSR1) stays unless the file's rate or profile changed; a pause stays."""
        plan = self.plan
        if new.profile() != self.config.profile():
            plan = plan.with_profile(new.profile(), now_ns)
        if new.duration != self.config.duration and plan.started:
            plan = plan.with_end(self.end_ns(new.duration, plan))
        self.config = new
        self.publish(plan)

    def end_ns(self, duration: float, plan: Plan) -> int:
        """The end of a run of ``duration`` seconds of sending from the plan's start (0: none); the
        time spent paused does not count."""
        return self.run_start_ns + round(duration * NS) + plan.paused_ns if duration else 0

    def carry_retired(self, indexes: range) -> None:
        """Workers retired by a reload stop when they see the new plan, up to a burst short of their
        due count: the new workers take that on, and the retired count what they really did."""
        owed = 0
        for i in indexes:
            done = self.accounted(i)
            owed += max(0, self.retired[i] - done)
            self.retired[i] = min(self.retired[i], done)
        if owed and self.plan.started and not self.plan.unlimited:
            self.publish(self.plan.with_events(owed))

    def standing_by(self, child: Child) -> bool:
        """A hand-over's new worker process is set up: each of its workers that takes over an index
        waits for the old one (``STANDBY_PID``), the others are ready."""
        for index in self.members(child.index):
            slot = self.shared.block.slot(index)
            if self.takes_over.get(index):
                if slot[C.STANDBY_PID] != child.pid:
                    return False
            elif slot[C.PID] != child.pid or slot[C.STATE] not in READY_STATES:
                return False
        return True

    def settled(self, plan: Plan, t_ns: int) -> Plan:
        """``plan``, rebased on what every index has done when it is an unlimited one that runs
        (its due counts are infinite, so no other profile could continue from them): held (see
        ``all_seen``), waiting up to ``SETTLE_TIMEOUT``. For a live change; a reload's hand-over
        does the same as states of the loop."""
        if not plan.started or plan.pause is not None or not plan.unlimited:
            return plan
        held = plan.rebased(t_ns, self.accounted_all(plan.workers))
        self.publish(held)
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not self.all_seen(held) and time.monotonic() < deadline:
            time.sleep(SETTLE_POLL)
        return held.rebased(t_ns, self.accounted_all(plan.workers))

    def all_seen(self, plan: Plan) -> bool:
        """Every worker that is sending (a live process) has read ``plan`` (``PLAN_SEEN``).

        Leaving an unlimited plan that runs, the hand-over publishes one with nothing more due and
        rebases the new plan once every running worker has read it, on counts that no longer move:
        rebased on the first counts only, what they sent meanwhile was more than planned, and a
        worker that found itself past its quota ended a timed run early."""
        for i in range(plan.workers):
            slot = self.shared.block.slot(i)
            if (slot[C.STATE] == C.STATE_RUNNING and slot[C.PLAN_SEEN] < plan.generation
                    and not process_gone(slot[C.PID])):
                return False
        return True

    def accounted(self, index: int) -> int:
        """Everything an index has sent, forgiven or had refused: where a new epoch starts it."""
        v = self.shared.block.values(index)
        return v[C.SENT] + v[C.FORGIVEN] + sum(v[f] for f in C.ERROR_FIELDS)

    def accounted_all(self, workers: int) -> tuple[int, ...]:
        return tuple(self.accounted(i) for i in range(workers))
