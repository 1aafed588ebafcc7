"""One sink process: its sockets, its accounting, its counter slot (the child side of the sink).

It receives UDP (``loggend.sink.receiver``) or TCP/TLS (``loggend.sink.streams``) as its
``SinkSpec`` says. Counters go to one slot of a shared ``CounterBlock`` per sink process (layout
in ``loggend.engine.counters``); for UDP the kernel's own drop counters and queue sizes for our
sockets are published beside them, so a report tells loss in our receive queues from loss
before them, and how far behind the sink is.

* **On time under any load.** Every wake-up does bounded work (``DRAIN_CALLS`` receive calls per
  socket, ``READ_BUDGET`` bytes per connection), and the clock is looked at after each socket:
  counters and heartbeat go out every ``PUBLISH_SECONDS`` and a stop request is seen at once,
  however much is queued.
* **At the stop** it accounts what is still queued for up to ``DRAIN_SECONDS``, then only counts
  datagrams (``SINK_UNREAD``) for up to ``COUNT_SECONDS``, then reports the bytes it never read
  (``SINK_UNREAD_BYTES``): a sink that could not finish says so, and by how much.
* **Connections** (TCP/TLS) are capped and closed when idle (``loggend.sink.streams``); what was
  dropped is counted (``SINK_DROPPED_CAP``, ``SINK_DROPPED_IDLE``).
* **Streams.** Each sink process writes its own range of stream slots, from ``stream_offset``
  (two processes may each get part of one stream, when a restarted worker's new source port
  hashes to the other: readers add the ranges up). Under a run (``announced``) a stream's slot
  is the offset plus the index the supervisor announced its name at (in the first ``width``
  slots), and a stream it did not announce is counted apart (``SINK_FOREIGN``); on its own, the
  process names the first ``STREAM_SLOTS_PER_SINK`` streams it sees in its range.

The parent side (forking, watching) is the supervisor's ``--local-sink`` or ``loggend sink``
(``loggend.control``).
"""

from __future__ import annotations

import gc
import os
import select
import socket
import ssl
import time
from collections.abc import Callable

from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.engine.journal import ERR, Log
from loggend.engine.procsetup import init_child, log_stderr
from loggend.errors import EXIT_BOOT_FAILED, EXIT_OK
from loggend.sink.accounting import Accounting, Stream, use_proofs
from loggend.sink.procnet import queue_figures
from loggend.sink.receiver import BindError, Receiver, open_sockets
from loggend.sink.sinkspec import SinkSpec
from loggend.sink.streams import StreamServer

POLL_SECONDS = 0.05           # epoll timeout: how often stop flags, heartbeat and drops are looked at
PUBLISH_SECONDS = 0.05        # counters and heartbeat are published this often (like a worker's tick)
KERNEL_SECONDS = 1.0          # /proc/net/udp (drops, queued bytes) is read this often
DRAIN_SECONDS = 2.0           # at the stop: accounting what is still queued, at most this long
COUNT_SECONDS = 1.0           # ... then counting the rest without accounting it, at most this long
NAMES_REFRESH_SECONDS = 0.01  # the announced names are re-read at most this often (on a name not in them)


class SinkWorker:
    """One receiving process: its sockets, its accounting, its counter slot."""

    def __init__(self, spec: SinkSpec, slot: memoryview, cpu: int | None = None,
                 log: Log = log_stderr, streams: CounterBlock | None = None, index: int = 0,
                 announced: int = 0, stream_offset: int = 0, clock: Callable[[], float] = time.monotonic) -> None:
        """``announced``: the run announces its streams' names in the first ``announced`` stream slots
        (0: a sink on its own); ``stream_offset``: where this process's range of stream slots begins."""
        self.spec, self.slot, self.cpu, self.log = spec, slot, cpu, log
        self.index, self.streams, self.clock = index, streams, clock
        self.is_announced, self.width, self.offset = bool(announced), announced, stream_offset
        self.base_drops = 0
        self.names: dict[bytes, int] = {}            # announced name -> stream slot
        self.names_read = -1.0
        self.mapped: list[tuple[Stream, memoryview, list[int]]] = []     # stream, its slot, the slot's base
        self.free_slots: list[int] = []              # own stream slots not named yet (on its own)
        self.alive = True
        self.accounting = Accounting(self.announced if announced and streams is not None else None)
        use_proofs(spec.proofs)
        self.base = [0] * C.SLOT_FIELDS
        self.unread = self.unread_bytes = 0
        self.drops = self.backlog = 0

    def _stop(self, signum: int, frame: object) -> None:
        self.alive = False

    def init_process(self) -> None:
        init_child(f"loggend-sink{self.index}", self._stop, self.cpu)

    # --- streams ------------------------------------------------------------------------------------

    def announced(self, name: bytes) -> bool:
        """Is ``name`` one of the run's streams? The table is re-read on a miss (at most so often)."""
        if name not in self.names and self.streams is not None:
            now = self.clock()
            if now - self.names_read >= NAMES_REFRESH_SECONDS:
                self.names, self.names_read = self.streams.names(self.width), now
        return name in self.names

    def own_slots(self) -> None:
        """On its own: this process's range of stream slots; names a previous process left are kept."""
        if self.streams is None or self.is_announced:
            return
        for i in range(self.offset, min(self.offset + C.STREAM_SLOTS_PER_SINK, self.streams.slots)):
            name = self.streams.name(i)
            if name:
                self.names[name] = i - self.offset
            else:
                self.free_slots.append(i - self.offset)

    def map_new_streams(self) -> None:
        acc, streams = self.accounting, self.streams
        if streams is None:
            acc.new_streams.clear()
            return
        for name in acc.new_streams:
            st = acc.streams[name]
            index = self.names.get(name, -1) if st.counted else -1
            if index < 0 and not self.is_announced and self.free_slots and len(name) <= C.STREAM_NAME_BYTES:
                index = self.free_slots.pop(0)
                streams.set_name(self.offset + index, name)
                self.names[name] = index
            if index >= 0:
                at = self.offset + index
                self.mapped.append((st, streams.slot(at), streams.values(at)))
        acc.new_streams.clear()

    # --- the loop -----------------------------------------------------------------------------------

    def run(self) -> int:
        slot, spec = self.slot, self.spec
        slot[C.SINK_STATE], slot[C.SINK_PID] = C.STATE_STARTING, os.getpid()
        socks: list[socket.socket] = []
        server: StreamServer | None = None
        try:
            if spec.protocol == "udp":
                socks = open_sockets(spec.host, spec.ports, gro=spec.gro)
            else:
                server = StreamServer(spec.host, spec.ports, spec.tls, self.log)
        except BindError as err:
            self.log(f"sink: {err}", ERR)
            slot[C.SINK_STATE] = C.STATE_FAILED
            return EXIT_BOOT_FAILED
        except (ssl.SSLError, OSError) as err:           # the certificate or key (checked before, but files change)
            self.log(f"sink: cannot load the TLS certificate: {getattr(err, 'reason', None) or err}", ERR)
            slot[C.SINK_STATE] = C.STATE_FAILED
            return EXIT_BOOT_FAILED
        inodes = {os.fstat(s.fileno()).st_ino for s in socks}
        self.base_drops = queue_figures(inodes)[0] if inodes else 0
        receiver = Receiver() if server is None else None
        poller = select.epoll()
        for s in socks:
            poller.register(s.fileno(), select.EPOLLIN)
        if server is not None:
            server.register(poller)
        self.base = slot.tolist()                  # a restarted sink process carries its slot's counts on
        self.own_slots()
        gc.disable()
        slot[C.SINK_STATE] = C.STATE_RUNNING
        clean = False
        try:
            self.loop(poller, receiver, server, inodes)
            if receiver is not None:
                self.finish_udp(receiver, socks, inodes)
            else:
                assert server is not None
                self.unread_bytes = server.drain(self.accounting, self.clock() + DRAIN_SECONDS, self.clock)
            self.publish(receiver, server)
            clean = True
        finally:
            slot[C.SINK_STATE] = C.STATE_STOPPED if clean else C.STATE_FAILED
            poller.close()
            for s in socks:
                s.close()
            if server is not None:
                server.close()
        return EXIT_OK

    def loop(self, poller: select.epoll, receiver: Receiver | None, server: StreamServer | None,
             inodes: set[int]) -> None:
        """Until stopped: bounded work per ready socket, and the clock looked at after each one."""
        acc, clock = self.accounting, self.clock
        next_publish = next_kernel = 0.0
        while self.alive:
            events = poller.poll(POLL_SECONDS)
            if server is not None:
                server.resume_accepting(clock())
                server.expire(clock())
            for fd, _ in events:
                if receiver is not None:
                    receiver.drain(fd, acc)
                else:
                    assert server is not None
                    server.handle(fd, acc)
                now = clock()
                if now >= next_publish:            # on a timer: a busy sink wakes up thousands of times a second
                    if now >= next_kernel:
                        self.kernel(inodes, server)
                        next_kernel = now + KERNEL_SECONDS
                    self.publish(receiver, server)
                    next_publish = now + PUBLISH_SECONDS
                if not self.alive:
                    break
            now = clock()
            if now >= next_publish:
                if now >= next_kernel:
                    self.kernel(inodes, server)
                    next_kernel = now + KERNEL_SECONDS
                self.publish(receiver, server)
                next_publish = now + PUBLISH_SECONDS

    def finish_udp(self, receiver: Receiver, socks: list[socket.socket], inodes: set[int]) -> None:
        """Account what is still queued (DRAIN_SECONDS), count the rest (COUNT_SECONDS), report the remainder."""
        clock = self.clock
        pending = [s.fileno() for s in socks]
        deadline = clock() + DRAIN_SECONDS
        next_publish = clock() + PUBLISH_SECONDS
        while pending and clock() < deadline:
            pending = [fd for fd in pending if receiver.drain(fd, self.accounting)]
            if clock() >= next_publish:
                self.publish(receiver, None)
                next_publish = clock() + PUBLISH_SECONDS
        deadline += COUNT_SECONDS
        while pending and clock() < deadline:
            still = []
            for fd in pending:
                counted, more = receiver.count(fd)
                self.unread += counted
                if more:
                    still.append(fd)
            pending = still
            if clock() >= next_publish:
                self.publish(receiver, None)
                next_publish = clock() + PUBLISH_SECONDS
        self.kernel(inodes, None)
        self.unread_bytes = self.backlog if pending else 0

    def kernel(self, inodes: set[int], server: StreamServer | None) -> None:
        """What the kernel holds for us: drops and queued bytes (UDP), unread bytes (TCP/TLS)."""
        if inodes:
            drops, self.backlog = queue_figures(inodes)
            self.drops = max(0, drops - self.base_drops)
        elif server is not None:
            self.backlog = server.backlog()

    def publish(self, receiver: Receiver | None, server: StreamServer | None) -> None:
        acc, slot, b = self.accounting, self.slot, self.base
        slot[C.SINK_RECEIVED], slot[C.SINK_BYTES] = b[C.SINK_RECEIVED] + acc.received, b[C.SINK_BYTES] + acc.octets
        slot[C.SINK_UNSEQUENCED] = b[C.SINK_UNSEQUENCED] + acc.unsequenced
        slot[C.SINK_EMPTY] = b[C.SINK_EMPTY] + acc.empty
        slot[C.SINK_GAPS], slot[C.SINK_LATE] = b[C.SINK_GAPS] + acc.gaps, b[C.SINK_LATE] + acc.late
        slot[C.SINK_DUPLICATES] = b[C.SINK_DUPLICATES] + acc.duplicates
        slot[C.SINK_STREAMS] = max(b[C.SINK_STREAMS], acc.counted_streams)
        slot[C.SINK_OUTLIERS] = b[C.SINK_OUTLIERS] + acc.outliers
        slot[C.SINK_STALE] = b[C.SINK_STALE] + acc.stale
        slot[C.SINK_GAPS_FORGOTTEN] = b[C.SINK_GAPS_FORGOTTEN] + acc.gaps_forgotten
        slot[C.SINK_OVERFLOW] = b[C.SINK_OVERFLOW] + acc.overflow
        slot[C.SINK_FOREIGN] = b[C.SINK_FOREIGN] + acc.foreign
        slot[C.SINK_FOREIGN_STREAMS] = max(b[C.SINK_FOREIGN_STREAMS], acc.foreign_streams)
        slot[C.SINK_KERNEL_DROPS] = b[C.SINK_KERNEL_DROPS] + self.drops
        slot[C.SINK_BACKLOG_BYTES] = self.backlog
        slot[C.SINK_UNREAD] = b[C.SINK_UNREAD] + self.unread
        slot[C.SINK_UNREAD_BYTES] = b[C.SINK_UNREAD_BYTES] + self.unread_bytes
        if receiver is not None:
            slot[C.SINK_CALLS] = b[C.SINK_CALLS] + receiver.calls
        if server is not None:
            slot[C.SINK_CONNECTIONS] = b[C.SINK_CONNECTIONS] + server.accepted
            slot[C.SINK_OPEN] = server.open
            slot[C.SINK_TORN] = b[C.SINK_TORN] + server.torn
            slot[C.SINK_TLS_FAILURES] = b[C.SINK_TLS_FAILURES] + server.tls_failures
            slot[C.SINK_REJECTED] = b[C.SINK_REJECTED] + server.rejected
            slot[C.SINK_DROPPED_CAP] = b[C.SINK_DROPPED_CAP] + server.dropped_cap
            slot[C.SINK_DROPPED_IDLE] = b[C.SINK_DROPPED_IDLE] + server.dropped_idle
        slot[C.SINK_HEARTBEAT_NS] = time.monotonic_ns()
        if acc.new_streams:
            self.map_new_streams()
        for st, target, base in self.mapped:
            self.publish_stream(st, target, base)

    @staticmethod
    def publish_stream(st: Stream, target: memoryview, base: list[int]) -> None:
        """A stream's figures into its slot, on top of what a previous sink process left there."""
        target[C.STREAM_RECEIVED] = base[C.STREAM_RECEIVED] + st.received
        target[C.STREAM_GAPS] = base[C.STREAM_GAPS] + st.gaps
        target[C.STREAM_LATE] = base[C.STREAM_LATE] + st.late
        target[C.STREAM_DUPLICATES] = base[C.STREAM_DUPLICATES] + st.duplicates
        target[C.STREAM_OUTLIERS] = base[C.STREAM_OUTLIERS] + st.outliers
        target[C.STREAM_STALE] = base[C.STREAM_STALE] + st.stale
        first = base[C.STREAM_FIRST]
        target[C.STREAM_FIRST] = min(first, st.start + 1) if first else st.start + 1
        target[C.STREAM_NEXT] = max(base[C.STREAM_NEXT], st.expected)
