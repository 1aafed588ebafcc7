"""What the supervisor says of its children: how long a hung one really ran, and how many run now."""

from __future__ import annotations

import signal
import time

from loggend.control.children import BACKOFF_RESET, WORKER, Child, ChildSet
from loggend.engine.counters import STATE_RUNNING, SlotSnapshot
from loggend.report.console import LiveLine

KILLED = signal.SIGKILL         # a wait status: killed by SIGKILL


def snap(pid: int) -> SlotSnapshot:
    return SlotSnapshot(sent=100, bytes=1000, calls=1, errors=(0, 0, 0, 0), heartbeat_ns=0, pid=pid,
                        state=STATE_RUNNING, restarts=0, started_ns=1, transport="gso")


def test_a_hung_worker_is_logged_with_its_real_run_and_its_silence():
    """A worker killed as hung after 14 s was once logged "it ran 0.1 s"; and a long silence must not
    forgive its failures as a long healthy run does."""
    lines: list[str] = []
    children = ChildSet(lambda line, *_: lines.append(line))
    children.register(WORKER, lambda i: 0, lambda i: f"worker {i}")
    now = time.monotonic_ns()
    hung_long = Child(WORKER, 0, 4242, now - int((BACKOFF_RESET + 14) * 1e9))   # healthy 0.5 s, then silent
    children.children[4242] = hung_long
    children.failures[hung_long.key] = 3
    beat = hung_long.spawned_ns + int(0.5e9)
    assert [c for c, _, _ in children.hung(WORKER, lambda c: beat, 10.0, 30.0, now)] == [hung_long]
    children.children.pop(4242)
    children.schedule_restart(hung_long, KILLED)
    assert f"it ran {BACKOFF_RESET + 14:.1f} s, silent for the last {BACKOFF_RESET + 13.5:.1f} s" in lines[-1], lines
    assert children.failures[hung_long.key] == 4                 # not forgiven: it was silent, not running
    healthy = Child(WORKER, 1, 4343, now - int((BACKOFF_RESET + 1) * 1e9))
    children.failures[healthy.key] = 3
    children.schedule_restart(healthy, KILLED)
    assert f"(it ran {BACKOFF_RESET + 1:.0f}." in lines[-1] and children.failures[healthy.key] == 1


def test_the_live_line_counts_only_workers_that_are_processes():
    """The live line once said "(2/2 running)" with both workers dead: a killed worker's slot still says
    running until it is replaced."""
    live = LiveLine(0.0)
    snaps = [snap(101), snap(102)]
    assert live.line(1.0, snaps, 2, alive={101, 102}).endswith("(2/2 running)")
    assert live.line(2.0, snaps, 2, alive={102}).endswith("(1/2 running)")
    assert live.line(3.0, snaps, 2, alive=set()).endswith("(0/2 running)")


def test_a_worker_process_is_judged_by_its_workers_heartbeats_until_it_exits():
    """A process serving workers 1 and 3: its oldest running beat counts; once both have stopped
    (it is exiting) the last beat, not "still setting up" since its spawn (a run of over 30 s
    used to SIGABRT every process at its end)."""
    from types import SimpleNamespace

    from loggend.config import Config
    from loggend.control.workers import Workers
    from loggend.engine import counters as C
    from loggend.engine.counters import CounterBlock
    block = CounterBlock(4)
    pool = Workers(Config(host="127.0.0.1", workers=4, worker_processes=2), SimpleNamespace(block=block),
                      lambda *a: None, ())
    now = time.monotonic_ns()
    child = Child(WORKER, 1, 4242, now - int(40e9))                 # spawned 40 s ago
    assert pool.heartbeat(child) is None                            # setting up: judged from the spawn
    for index, beat, state in ((1, now - 300, C.STATE_RUNNING), (3, now - 100, C.STATE_RUNNING)):
        slot = block.slot(index)
        slot[C.PID], slot[C.HEARTBEAT_NS], slot[C.STATE] = 4242, beat, state
    assert pool.heartbeat(child) == now - 300                       # the oldest running beat
    block.slot(1)[C.STATE] = C.STATE_STOPPED                        # worker 1 done: worker 3 speaks
    assert pool.heartbeat(child) == now - 100
    block.slot(3)[C.STATE] = C.STATE_STOPPED
    assert pool.heartbeat(child) == now - 100                       # exiting: its last beat
    children = ChildSet(lambda *a: None)
    children.children[4242] = child
    assert children.hung(WORKER, pool.heartbeat, 10.0, 30.0, now) == []
    assert pool.label(1) == "worker process 1 (workers 1, 3)" and list(pool.members(1)) == [1, 3]


def test_a_run_that_sent_nothing_of_what_was_due_says_why():
    """A run whose workers never started sending (they once spent a 5 s run's whole duration setting up)
    ended 'sent 0 events', exit 0; now it fails with one line, unless nothing was due."""
    from loggend.control.supervisor import nothing_sent
    assert nothing_sent(0, False, None, 22, 40, 25.0) == \
        "nothing sent: the workers never became ready (22 of 40 set up after 25.0 s; see the lines above)"
    assert nothing_sent(0, True, 100_000, 40, 40, 25.0).startswith("nothing sent of 100,000 events due: ")
    assert nothing_sent(0, True, None, 40, 40, 2.0).startswith("nothing sent: the workers did not start sending")
    assert nothing_sent(0, True, 0, 40, 40, 2.0) == ""          # constant:0, or paused the whole run
    assert nothing_sent(1, True, 100_000, 40, 40, 2.0) == ""
