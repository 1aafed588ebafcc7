"""The parent's eye on its sink processes: who else receives on their ports, heartbeats, and ends
that lost a queue. Used by the supervisor (``--local-sink``) and by ``loggend sink``.

* **Other receivers.** Sink processes bind with ``SO_REUSEPORT``, so a second sink (or a SIEM
  listening the same way) on the same address and ports silently takes a share of the flows.
  Before the first sink process binds, ``check_ports`` looks for any socket receiving on the
  ports (``/proc/net/udp``, ``/proc/net/tcp``): the run is refused with one line, unless told to
  share (``--sink-share-ports`` / ``--share-ports``), when it says so loudly. While the run goes on,
  ``watch_ports`` counts the receivers on each port against the sink processes alive and records
  the others in ``SINK_OTHER_SOCKETS``: the loss verdict is then "unknown".
* **Heartbeats.** A sink process publishes every 50 ms whatever its load (its work per wake-up is
  bounded), so a heartbeat older than the hung timeout means it is stuck (or stopped): it is
  killed as a hung worker is (SIGABRT for its stack, then SIGKILL) and restarted.
* **Ends.** A sink process that ends without having accounted its queue (killed, crashed, or not
  stopped within the grace at the end) leaves its slot not ``STOPPED``; ``SINK_ABANDONED`` counts
  that and ``SINK_ABANDONED_BYTES`` what was queued for its ports when it was killed (measured by
  the parent just before the SIGKILL).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from loggend.control.children import SINK, Child, ChildSet, kill_quietly
from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.engine.journal import ERR, WARNING, Log
from loggend.errors import EXIT_BOOT_FAILED
from loggend.parsers import format_ports
from loggend.sink.procnet import Row, listeners, queued_bytes
from loggend.sink.sinkspec import SinkSpec

PORTS_SECONDS = 2.0           # other receivers on the ports are looked for this often during a run
STOP_POLL_SECONDS = 0.01
SHOWN_SOCKETS = 3             # how many of the other sockets a message names


def describe(found: list[Row], protocol: str) -> str:
    found = sorted(found, key=lambda r: (r.local_port, r.local_address, r.inode))
    shown = ", ".join(f"{r.local_address}:{r.local_port} (inode {r.inode}, uid {r.uid})" for r in found[:SHOWN_SOCKETS])
    more = f" and {len(found) - SHOWN_SOCKETS} more" if len(found) > SHOWN_SOCKETS else ""
    what = f"another {protocol} socket" if len(found) == 1 else f"{len(found)} other {protocol} sockets"
    return f"{what} already receiving on {shown}{more}"


class SinkWatch:
    def __init__(self, block: CounterBlock, log: Log, share: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.block, self.log, self.share, self.clock = block, log, share, clock
        self.count = 0                    # sink processes of the run
        self.next_ports = 0.0
        self.warned = 0                   # the most other sockets said so far
        self.abandoned: set[int] = set()  # pids counted as abandoned already (killed by us)

    # --- other receivers ------------------------------------------------------------------------------

    def check_ports(self, spec: SinkSpec) -> str:
        """Before any sink process binds: "" when nobody else receives on the ports (or sharing was
        asked for: said loudly), else the line that refuses the start."""
        if spec.ports == (0,):
            return ""
        found = listeners(spec.ports, spec.protocol, spec.host)
        if not found:
            return ""
        line = (f"sink: {describe(found, spec.protocol)}; with SO_REUSEPORT it would take a share of what is sent "
                f"to {spec.host}:{format_ports(spec.ports)} and the counts would be short")
        if not self.share:
            return line + " (stop it, or share the ports knowingly with --sink-share-ports / --share-ports)"
        self.log(line + "; sharing as asked: the loss verdict will be unknown", WARNING)
        self.record_others(len(found))
        return ""

    def watch_ports(self, spec: SinkSpec, alive: int, force: bool = False) -> None:
        """Every PORTS_SECONDS: sockets receiving on a port beyond our ``alive`` sink processes are someone else's."""
        now = self.clock()
        if (now < self.next_ports and not force) or spec.ports == (0,) or not self.count:
            return
        self.next_ports = now + PORTS_SECONDS
        per_port: dict[int, list[Row]] = {}
        for row in listeners(spec.ports, spec.protocol, spec.host):
            per_port.setdefault(row.local_port, []).append(row)
        others = max((len(rows) - alive for rows in per_port.values()), default=0)
        if others > self.warned:
            port = max(per_port, key=lambda p: len(per_port[p]))
            self.log(f"sink: {others} other socket{'s' if others != 1 else ''} now receiving on "
                     f"{spec.host}:{port} beside the {alive} sink process{'es' if alive != 1 else ''}; they take "
                     "a share of the datagrams: the loss verdict will be unknown", ERR)
            self.record_others(others)

    def record_others(self, others: int) -> None:
        self.warned = max(self.warned, others)
        if self.block.slots:
            slot = self.block.slot(0)
            slot[C.SINK_OTHER_SOCKETS] = max(slot[C.SINK_OTHER_SOCKETS], others)

    # --- heartbeats -----------------------------------------------------------------------------------

    def heartbeat(self, child: Child) -> int | None:
        """A running sink process's last heartbeat; None while it sets up (for ChildSet.hung)."""
        slot = self.block.slot(child.index)
        running = slot[C.SINK_STATE] == C.STATE_RUNNING and slot[C.SINK_PID] == child.pid
        return slot[C.SINK_HEARTBEAT_NS] if running else None

    def kill_hung(self, children: ChildSet, spec: SinkSpec, limit: float, boot_limit: float,
                  aborted: dict[int, float], grace: float) -> None:
        """SIGABRT a sink process whose heartbeat is older than ``limit`` (its stack goes to the log), SIGKILL
        it if that did not end it within ``grace`` (what was queued for it measured first); restarted when reaped."""
        for child, what, age in children.hung(SINK, self.heartbeat, limit, boot_limit):
            now = self.clock()
            if child.pid not in aborted:
                aborted[child.pid] = now
                self.log(f"sink process {child.index} (pid {child.pid}) is hung: {what} for {age:.1f} s; SIGABRT "
                         "(its stack goes to the log); what is queued for it will not be counted", WARNING)
                kill_quietly(child.pid, signal.SIGABRT)
            elif now - aborted[child.pid] >= grace:
                self.abandon(child, queued_bytes(spec.ports, spec.host) if spec.protocol == "udp" else 0)
                kill_quietly(child.pid, signal.SIGKILL)

    # --- ends -----------------------------------------------------------------------------------------

    def abandon(self, child: Child, queued: int) -> None:
        """The process is about to be killed without accounting its queue of ``queued`` bytes."""
        slot = self.block.slot(child.index)
        if child.pid not in self.abandoned and slot[C.SINK_PID] == child.pid \
                and slot[C.SINK_STATE] in (C.STATE_RUNNING, C.STATE_STARTING):
            self.abandoned.add(child.pid)
            slot[C.SINK_ABANDONED] += 1
            slot[C.SINK_ABANDONED_BYTES] += queued

    def ended(self, child: Child, status: int) -> None:
        """After a sink process was reaped: if it did not finish (its slot not STOPPED) and was not a
        boot failure (nothing was queued for it yet), its queue was lost."""
        slot = self.block.slot(child.index)
        if child.pid in self.abandoned or slot[C.SINK_PID] != child.pid:
            return
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_BOOT_FAILED:
            return
        if slot[C.SINK_STATE] != C.STATE_STOPPED:
            self.abandoned.add(child.pid)
            slot[C.SINK_ABANDONED] += 1
            slot[C.SINK_ABANDONED_BYTES] += slot[C.SINK_BACKLOG_BYTES]      # its last word on its queue
            slot[C.SINK_STATE] = C.STATE_FAILED                              # it is gone: the slot is ours

    def stop(self, children: ChildSet, spec: SinkSpec, timeout: float) -> None:
        """SIGTERM every sink process (each accounts its queue, within its own bounds), wait up to
        ``timeout``; the ones still there are measured (bytes queued), SIGKILLed and marked abandoned."""
        sinks = children.of_kind(SINK)
        for child in sinks:
            kill_quietly(child.pid, signal.SIGTERM)
        deadline = self.clock() + timeout
        gone: list[tuple[Child, int]] = []
        while self.clock() < deadline:
            gone.extend((child, status) for child, status in children.reap() if child.kind == SINK)
            if not any(c.pid in children.children for c in sinks):
                break
            time.sleep(STOP_POLL_SECONDS)
        left = [c for c in sinks if c.pid in children.children]
        if left:
            queued = queued_bytes(spec.ports, spec.host) if spec.protocol == "udp" else 0
            for child in left:
                self.abandon(child, queued // len(left))
        children.stop([c.pid for c in left], 0.0)
        for child, status in gone:
            self.ended(child, status)
