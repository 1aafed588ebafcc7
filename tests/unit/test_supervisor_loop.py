"""The supervisor's loop, built in a unit test: an injected clock, signals put straight into its queue,
children that are tiny real processes (``sleep``) standing for workers, the workers' side of the
shared counters played by the test. Nothing here waits on real time but the few milliseconds a
``sleep`` takes to die."""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from loggend.config import Config
from loggend.control import children as K
from loggend.control import handover as H
from loggend.control.children import BACKOFF_MAX, BACKOFF_RESET, Child
from loggend.control.supervisor import Supervisor, reload_steps
from loggend.control.systemd import Notifier
from loggend.engine import counters as C
from loggend.engine.replay import ReplaySpec
from loggend.engine.schedule import NS
from loggend.engine.spec import MessageSpec
from loggend.errors import EXIT_BOOT_FAILED, EXIT_FAILURE, EXIT_OK

# a replay needs no corpus rendered before the fork: the workers here are not real ones anyway
MESSAGES = MessageSpec(replay=ReplaySpec(path="/dev/null"))
KILLED = signal.SIGKILL                      # a wait status: killed by SIGKILL
BOOT_FAILED = EXIT_BOOT_FAILED << 8          # ... exited EXIT_BOOT_FAILED


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000 * NS

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += round(seconds * NS)


class Sleepers:
    """Stand-ins for worker processes: ``sleep`` (or one that ignores SIGTERM), spawned without a fork
    of the test process; whatever is left is killed by pid and reaped at the end."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.deaf = False                    # the next ones ignore SIGTERM

    def spawn(self, index: int) -> int:
        argv = ["sh", "-c", "trap '' TERM; sleep 5"] if self.deaf else ["sleep", "5"]
        pid = os.posix_spawnp(argv[0], argv, os.environ)
        self.pids.append(pid)
        return pid

    def close(self) -> None:
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def config(**keys: object) -> Config:
    base = Config(host="127.0.0.1", ports=(40001,), rate=1000.0, workers=4, worker_processes=2, dashboard=None,
                  messages=MESSAGES, control_socket="off")
    return replace(base, **keys)                                   # type: ignore[arg-type]


@pytest.fixture
def sleepers() -> Iterator[Sleepers]:
    s = Sleepers()
    yield s
    s.close()


def supervisor(sleepers: Sleepers, clock: Clock, **keys: object) -> tuple[Supervisor, list[Config]]:
    """A supervisor as after its start (plan published, workers spawned); the list is what its
    loader gives on the next reload."""
    files = [config(**keys)]
    sup = Supervisor(files[0], out=io.StringIO(), err=io.StringIO(), clock_ns=clock,
                     notifier=Notifier(env={}), loader=lambda: files[-1])
    sup.children.register(K.WORKER, sleepers.spawn, sup.workers.label)
    sup.shared.start(sup.clock(), sup.config.workers)
    sup.workers.publish(sup.workers.plan)
    for p in range(sup.config.worker_processes):
        sup.children.spawn(K.WORKER, p)
    return sup, files


def run_workers(sup: Supervisor, started: bool = True) -> None:
    """Play the workers: each slot is its process's, running; the plan started."""
    for child in sup.children.of_kind(K.WORKER):
        for i in sup.workers.members(child.index):
            slot = sup.shared.block.slot(i)
            slot[C.PID], slot[C.STATE], slot[C.HEARTBEAT_NS] = child.pid, C.STATE_RUNNING, sup.clock_ns()
    if started:
        sup.workers.start_when_ready(sup.clock_ns())


def reap_until(sup: Supervisor, gone: set[int]) -> None:
    """Reap through the supervisor until ``gone`` have all been reaped (SIGTERM to ``sleep``: ms)."""
    deadline = time.monotonic() + 2.0
    while any(pid in sup.children.children for pid in gone):
        assert time.monotonic() < deadline, "the children did not end"
        sup.reap_children()
        time.sleep(0.001)


# --- reload grouping -------------------------------------------------------------------------------------

def test_a_reload_is_grouped_by_what_its_keys_ask_for():
    assert reload_steps(frozenset({"rate", "duration"})) == H_steps(in_place=True)
    assert reload_steps(frozenset({"quiet", "live_interval"})) == H_steps()
    assert reload_steps(frozenset({"dashboard_token"})) == H_steps(web=True)
    assert reload_steps(frozenset({"local_sink", "sink_processes"})) == H_steps(sinks=True)
    assert reload_steps(frozenset({"ports"})) == H_steps(sinks=True, hand_over=True)      # the sink and the workers
    assert reload_steps(frozenset({"workers", "rate"})) == H_steps(hand_over=True)       # the plan comes with it
    assert reload_steps(frozenset({"stream_id"})) == H_steps(hand_over=True)


def H_steps(web: bool = False, sinks: bool = False, hand_over: bool = False, in_place: bool = False) -> object:
    from loggend.control.supervisor import ReloadSteps
    return ReloadSteps(web=web, sinks=sinks, hand_over=hand_over, in_place=in_place)


def test_a_new_rate_is_a_new_plan_and_nobody_restarts(sleepers):
    clock = Clock()
    sup, files = supervisor(sleepers, clock)
    run_workers(sup)
    before = set(sup.children.pids(K.WORKER))
    generation = sup.workers.plan.generation
    files.append(config(rate=2000.0))
    sup.reload()
    assert sup.handover is None and set(sup.children.pids(K.WORKER)) == before
    assert sup.workers.plan.generation > generation and sup.workers.target_rate(clock()) == pytest.approx(2000.0)
    assert sup.report.reloads == 1


def test_an_invalid_or_unchanged_reload_keeps_the_running_config(sleepers):
    from loggend.errors import UsageError
    clock = Clock()
    sup, files = supervisor(sleepers, clock)
    running = sup.config

    def broken() -> Config:
        raise UsageError("rate: 'fast' is not a rate")
    sup.loader = broken
    sup.reload()
    assert sup.config is running and "reload: rate: 'fast' is not a rate; keeping the running config" in \
        sup.err.getvalue()
    sup.loader = lambda: config(instance=1, instances=2)
    sup.reload()
    assert sup.config is running and "a fleet's split cannot change" in sup.err.getvalue()
    sup.loader = lambda: files[0]
    sup.reload()
    assert "reload: config unchanged" in sup.err.getvalue() and sup.report.reloads == 0


# --- exit verdicts and back-off ----------------------------------------------------------------------------

def test_a_worker_that_cannot_boot_stops_the_run_with_one_line(sleepers):
    sup, _ = supervisor(sleepers, Clock())
    sup.after_exit(Child(K.WORKER, 0, 4242, sup.clock_ns()), BOOT_FAILED)
    assert sup.exit_code == EXIT_FAILURE and sup.stopping
    assert sup.failure == "worker process 0 (workers 0, 2) could not start sending to 127.0.0.1:40001; stopping"


def test_a_crash_is_restarted_with_a_back_off_that_doubles_and_a_long_run_forgives(sleepers):
    clock = Clock()
    sup, _ = supervisor(sleepers, clock)
    run_workers(sup)
    delays = []
    for _ in range(8):
        sup.after_exit(Child(K.WORKER, 1, 4242, clock()), KILLED)
        delays.append(round(sup.children.pending[(K.WORKER, 1)] - sup.clock(), 3))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, BACKOFF_MAX, BACKOFF_MAX]
    ran_long = Child(K.WORKER, 1, 4343, clock())
    clock.advance(BACKOFF_RESET)
    sup.after_exit(ran_long, KILLED)
    assert sup.children.pending[(K.WORKER, 1)] - sup.clock() == 0.5
    assert sup.exit_code == EXIT_OK and not sup.stopping
    # due after the back-off: spawned, and the slots of its workers count the restart
    assert sup.children.due() == []
    clock.advance(0.5)
    sup.manage_children()
    assert [sup.shared.block.slot(i)[C.RESTARTS] for i in range(4)] == [0, 1, 0, 1]
    assert len(sup.children.pids(K.WORKER)) == 3


def test_a_worker_done_in_a_timed_run_or_no_longer_wanted_is_not_restarted(sleepers):
    clock = Clock()
    sup, _ = supervisor(sleepers, clock, duration=10.0)
    run_workers(sup)
    sup.after_exit(Child(K.WORKER, 0, 4242, clock()), 0)                    # its share sent: done
    sup.after_exit(Child(K.WORKER, 5, 4343, clock()), KILLED)               # process 5 of 2: gone
    assert sup.children.pending == {} and sup.exit_code == EXIT_OK and not sup.stopping
    sup.after_exit(Child(K.WORKER, 1, 4444, clock()), KILLED)               # a crash in a timed run
    assert list(sup.children.pending) == [(K.WORKER, 1)]


# --- signal dispatch ---------------------------------------------------------------------------------------

def queue(sup: Supervisor, *signals: int) -> None:
    sup.signals.queue.extend(signals)


def test_signals_are_dispatched_to_their_handlers_in_order(sleepers):
    clock = Clock()
    sup, files = supervisor(sleepers, clock)
    run_workers(sup)
    queue(sup, signal.SIGUSR1, signal.SIGUSR1, signal.SIGUSR2)
    sup.dispatch_signals()
    assert sup.workers.target_rate(clock()) == pytest.approx(2000.0) and sup.live.changes == 3
    files.append(config(rate=500.0))
    queue(sup, signal.SIGHUP)
    sup.dispatch_signals()
    assert sup.workers.target_rate(clock()) == pytest.approx(500.0) and sup.report.reloads == 1
    queue(sup, signal.SIGTERM, signal.SIGHUP)
    sup.dispatch_signals()
    assert sup.stopping and sup.asked_to_stop and sup.report.reloads == 1      # nothing after the stop
    assert sup.children.pids(K.WORKER) == [] and sup.signals.queue == [signal.SIGHUP]


def test_sigint_stops_like_sigterm_and_sighup_without_a_file_is_ignored(sleepers):
    sup, _ = supervisor(sleepers, Clock())
    sup.loader = None
    queue(sup, signal.SIGHUP, signal.SIGINT)
    sup.dispatch_signals()
    assert "reload: no config to re-read; ignored" in sup.err.getvalue()
    assert sup.stopping and sup.asked_to_stop and sup.exit_code == EXIT_OK


# --- hand-over states ----------------------------------------------------------------------------------------

def stand_by(sup: Supervisor) -> None:
    """Play the new workers: each waits, set up, for the old worker of its index."""
    assert sup.handover is not None
    for child in sup.handover.fresh:
        for i in sup.workers.members(child.index):
            slot = sup.shared.block.slot(i)
            if sup.workers.takes_over.get(i):
                slot[C.STANDBY_PID] = child.pid
            else:
                slot[C.PID], slot[C.STATE] = child.pid, C.STATE_READY


def test_a_hand_over_is_a_state_the_loop_advances_and_never_a_wait(sleepers):
    clock = Clock()
    sup, files = supervisor(sleepers, clock)
    run_workers(sup)
    old = set(sup.children.pids(K.WORKER))
    files.append(config(ports=(40002,)))
    queue(sup, signal.SIGHUP)
    sup.dispatch_signals()
    h = sup.handover
    assert h is not None and h.state == H.SPAWNING and sup.children.pids(K.WORKER) == sorted(old)
    t0 = time.monotonic()
    assert sup.advance() == H.LOOK_SECONDS and h.state == H.STANDING_BY
    fresh = {c.pid for c in h.fresh}
    assert len(fresh) == 2 and set(sup.workers.takes_over.values()) <= old
    assert sup.advance() == H.LOOK_SECONDS and h.state == H.STANDING_BY      # not standing by yet: look again
    queue(sup, signal.SIGHUP)                                                 # a reload meanwhile waits its turn
    sup.dispatch_signals()
    assert sup.reload_waiting and sup.handover is h
    generation = sup.workers.plan.generation
    stand_by(sup)
    files.append(config(ports=(40002,), rate=3000.0))
    sup.advance()
    assert h.state == H.RETIRING and sup.workers.plan.generation > generation and sup.workers.takes_over == {}
    assert time.monotonic() - t0 < 0.1                                        # nothing above waited
    reap_until(sup, old)                                                      # SIGTERM ended them; their exits
    assert sup.children.pending == {} and sup.exit_code == EXIT_OK            # mean nothing
    sup.advance()
    assert sup.handover is None and set(sup.children.pids(K.WORKER)) == fresh
    assert not sup.reload_waiting and sup.workers.target_rate(clock()) == pytest.approx(3000.0)   # it followed


def test_new_workers_are_forked_a_batch_a_turn(sleepers):
    clock = Clock()
    sup, files = supervisor(sleepers, clock, workers=H.SPAWN_BATCH + 1, worker_processes=1)
    run_workers(sup)
    files.append(config(ports=(40002,), workers=H.SPAWN_BATCH + 1, worker_processes=H.SPAWN_BATCH + 1))
    sup.reload()
    assert sup.handover is not None
    assert sup.advance() == 0.0 and len(sup.handover.fresh) == H.SPAWN_BATCH     # the loop's turn comes between
    assert sup.advance() == H.LOOK_SECONDS and len(sup.handover.fresh) == H.SPAWN_BATCH + 1


def test_a_hand_over_whose_new_workers_never_stand_by_goes_on_after_its_timeout(sleepers):
    clock = Clock()
    sup, files = supervisor(sleepers, clock)
    run_workers(sup)
    old = set(sup.children.pids(K.WORKER))
    files.append(config(ports=(40002,)))
    sup.reload()
    h = sup.handover
    assert h is not None
    sup.advance()
    clock.advance(H.HANDOVER_TIMEOUT - 0.001)
    assert sup.advance() == H.LOOK_SECONDS and h.state == H.STANDING_BY
    clock.advance(0.001)
    sup.advance()
    assert h.state == H.RETIRING
    reap_until(sup, old)


def test_old_workers_that_ignore_sigterm_are_killed_after_the_grace(sleepers):
    clock = Clock()
    sleepers.deaf = True
    sup, files = supervisor(sleepers, clock)
    sleepers.deaf = False
    run_workers(sup)
    time.sleep(0.05)                        # the shell has set its trap
    old = set(sup.children.pids(K.WORKER))
    files.append(config(ports=(40002,)))
    sup.reload()
    h = sup.handover
    assert h is not None
    sup.advance()
    stand_by(sup)
    sup.advance()
    assert h.state == H.RETIRING
    time.sleep(0.02)
    sup.reap_children()
    assert sup.advance() == H.LOOK_SECONDS and set(sup.children.alive(old)) == old     # deaf: still there
    clock.advance(H.GRACEFUL_TIMEOUT)
    sup.advance()                                                                      # SIGKILL
    reap_until(sup, old)
    sup.advance()
    assert sup.handover is None


def test_a_stop_during_a_hand_over_stops_old_and_new_workers(sleepers):
    clock = Clock()
    sup, files = supervisor(sleepers, clock)
    run_workers(sup)
    files.append(config(ports=(40002,)))
    sup.reload()
    sup.advance()
    assert len(sup.children.pids(K.WORKER)) == 4
    queue(sup, signal.SIGTERM)
    sup.dispatch_signals()
    assert sup.handover is None and sup.children.pids(K.WORKER) == []


def test_the_watchdog_is_pinged_a_little_before_each_half_period(sleepers, tmp_path):
    import socket

    from loggend.control.loop import PING_EARLY
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(path)
        notify.setblocking(False)
        clock = Clock()
        sup, _ = supervisor(sleepers, clock)
        sup.notifier = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
        sup.next_ping = sup.clock()
        pings = []
        for _ in range(40):                                   # 4 s in steps of 0.1 s
            sup.pulse()
            try:
                if notify.recv(64) == b"WATCHDOG=1":
                    pings.append(sup.clock())
            except BlockingIOError:
                pass
            clock.advance(0.1)
    gaps = [round(b - a, 3) for a, b in zip(pings, pings[1:])]
    assert len(gaps) >= 4 and max(gaps) <= 1.0 and min(gaps) >= round(1.0 * (1 - PING_EARLY), 3)
