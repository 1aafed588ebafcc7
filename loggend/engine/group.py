"""A worker process: one or several workers (streams) served by one loop.

A worker is a stream: its slot, its target port, its socket and its pool. A process serves one
or several: the supervisor runs ``worker_processes`` of them (by default, over UDP, one per CPU
the run may use and never more than the workers; over TCP and TLS one per worker), process ``p``
serving workers ``p``, ``p + P``, ``p + 2P``... and pinned to the CPU of worker ``p``. A process
of one worker is named ``loggend-w<index>``, process ``p`` of several ``loggend-p<p>``. Why: with
more workers than CPUs (the default 40 on a small box), 40 processes that each wake 50 times a
second to send 100 messages cost about 1.7x the CPU per event of two workers, because every
wake-up of another process starts on cold caches and a fresh context; two processes serving 20
streams each cost about what two workers do (README, "Figures").

The loop: every worker says when it wants its next look (``Worker.step``); the process sleeps
until the earliest, then gives a look to each worker whose time has come, up to
``COALESCE_SECONDS`` late when it serves several, so workers of one rate, due a fraction of a
millisecond apart, share one wake-up (a burst is still at most 20 ms of a worker's traffic: the
pacer caps it). A worker that is done (its share sent, retired by a reload) says so in its slot
at once; the process ends when all are done or it is told to stop. After set-up the garbage collector is
frozen and disabled: the loop makes no reference cycles.

One worker's push-back (a full queue, a slow TCP receiver) delays its process's other workers
by the wait (at most ``transport.BLOCK_TIMEOUT`` per send); their pacers make up the delay.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from loggend.engine import counters as C
from loggend.engine.procsetup import init_child
from loggend.engine.worker import Worker
from loggend.errors import EXIT_BOOT_FAILED, EXIT_OK

COALESCE_SECONDS = 0.001      # several workers: a look may come this late, so near-due ones share a wake-up
STANDBY_POLL = 0.002          # a replacement looks this often whether the worker it replaces stopped
START_POLL = 0.002            # set up, it looks this often whether the plan has started


def members(process: int, workers: int, processes: int) -> range:
    """The worker indexes process ``process`` of ``processes`` serves."""
    return range(process, workers, processes)


class WorkerGroup:
    def __init__(self, workers: list[Worker], cpu: int | None, name: str = "",
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.workers, self.cpu, self.clock, self.sleep = workers, cpu, clock, sleep
        self.name = name or f"loggend-w{workers[0].spec.index}"     # ps, top, loggend profile
        self.alive = True

    @classmethod
    def alone(cls, worker: Worker) -> WorkerGroup:
        """A process of this one worker, on its clock (tests, the bench)."""
        return cls([worker], worker.spec.cpu, clock=worker.clock, sleep=worker.sleep)

    def init_process(self) -> None:
        init_child(self.name, self._handle_stop, self.cpu)

    def _handle_stop(self, signum: int, frame: object) -> None:
        self.alive = False
        for worker in self.workers:
            worker.alive = False

    def run(self) -> int:
        """Set every worker up, take their slots, send until done; the exit status for the process."""
        for worker in self.workers:
            if worker.setup() is None:
                self.close()
                return EXIT_BOOT_FAILED
        if self.take_slots():
            self.loop()
        else:
            self.close()
        return EXIT_OK

    def close(self) -> None:
        for worker in self.workers:
            if worker.sender is not None:
                worker.sender.close()

    def take_slots(self) -> bool:
        """Every worker stands by at once (one without a predecessor takes its slot at once), takes
        its slot once its predecessor stopped, and all wait for the plan's start together
        (heartbeats going). False when stopped meanwhile."""
        workers = self.workers
        mine = [w for w in workers if not w.spec.takes_over]
        for worker in workers:
            worker.stand_by()
        for worker in mine:                     # a new stream: nobody to wait for (the supervisor waits
            worker.take_over()                  # for it to be ready before it stops the old processes)
        while self.alive and not all(w.predecessor_gone() for w in workers):
            self.sleep(STANDBY_POLL)
            self._beat(mine)                    # not the others': their slots still speak for the old process
        for worker in workers:
            worker.end_standby()
        if not self.alive:
            return False
        for worker in workers:
            if worker.spec.takes_over:
                worker.take_over()
        while self.alive and not all(w.plan_has_me() for w in workers):
            self.sleep(START_POLL)
            self._beat(workers)
        return self.alive

    @staticmethod
    def _beat(workers: list[Worker]) -> None:
        beat = time.monotonic_ns()
        for worker in workers:
            worker.slot[C.HEARTBEAT_NS] = beat

    def loop(self) -> None:
        gc.disable()          # no collection ever: it would touch (and copy) every page shared with the parent
        gc.freeze()
        clock, sleep = self.clock, self.sleep
        active = list(self.workers)
        for worker in active:
            worker.begin()
            self._beat(active)              # those that began are not silent while the others begin
        slack = COALESCE_SECONDS if len(active) > 1 else 0.0
        due = {id(w): 0.0 for w in active}
        done = False
        try:
            while self.alive and active:
                now = clock()
                soonest = float("inf")
                for worker in list(active):
                    at = due[id(worker)]
                    if at <= now:
                        look = clock()
                        wait = worker.step(look)
                        if wait is None:
                            active.remove(worker)
                            worker.finish(True)
                            continue
                        at = due[id(worker)] = look + wait
                    if at < soonest:
                        soonest = at
                delay = soonest - clock()
                if delay > 0 and active:
                    sleep(delay + slack)
            done = True
        finally:
            for worker in active:
                worker.finish(done)         # after a crash too: the slots say stopped
