"""One sink process: its sockets, its accounting, its counter slot (the child side of the sink).

It receives UDP (``loggend.sink.receiver``) or TCP/TLS (``loggend.sink.streams``) as its
``SinkSpec`` says. Counters go to one slot of a shared ``CounterBlock`` per sink process (layout
in ``loggend.engine.counters``); for UDP the kernel's own drop counters for our sockets are
published beside them, so a report tells loss in our receive queues from loss before them. Per-stream
figures go to the stream slot of the worker that sends the stream. The parent side (forking,
watching) is the supervisor's ``--local-sink`` or ``loggend sink`` (``loggend.control``).
"""

from __future__ import annotations

import gc
import os
import select
import socket
import ssl
import time

from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.engine.journal import ERR, Log
from loggend.engine.process import init_child, log_stderr
from loggend.errors import EXIT_BOOT_FAILED, EXIT_OK
from loggend.sink.accounting import Accounting
from loggend.sink.receiver import BindError, Receiver, kernel_drops, open_sockets
from loggend.sink.spec import SinkSpec
from loggend.sink.streams import StreamServer

POLL_SECONDS = 0.05           # epoll timeout: how often stop flags, heartbeat and drops are looked at
PUBLISH_SECONDS = 0.05        # counters and heartbeat are published this often (like a worker's tick)
DROPS_SECONDS = 1.0           # /proc/net/udp is read this often


class SinkWorker:
    """One receiving process: its sockets, its accounting, its counter slot."""

    def __init__(self, spec: SinkSpec, slot: memoryview, cpu: int | None = None,
                 log: Log = log_stderr, streams: CounterBlock | None = None, index: int = 0) -> None:
        self.spec, self.slot, self.cpu, self.log = spec, slot, cpu, log
        self.index = index
        self.streams = streams
        self.stream_slots: dict[bytes, memoryview | None] = {}
        self.stream_base: dict[bytes, list[int]] = {}
        self.announced: dict[bytes, int] = {}
        self.alive = True
        self.accounting = Accounting()
        self.base = [0] * C.SLOT_FIELDS

    def _stop(self, signum: int, frame: object) -> None:
        self.alive = False

    def init_process(self) -> None:
        init_child(f"loggend-sink{self.index}", self._stop, self.cpu)

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
        base_drops = kernel_drops(inodes) if inodes else 0
        receiver = Receiver() if server is None else None
        poller = select.epoll()
        for s in socks:
            poller.register(s.fileno(), select.EPOLLIN)
        if server is not None:
            server.register(poller)
        acc = self.accounting
        self.base = slot.tolist()                  # a restarted sink process carries its slot's counts on
        gc.disable()
        slot[C.SINK_STATE] = C.STATE_RUNNING
        next_publish = next_drops = 0.0
        try:
            while self.alive:
                if receiver is not None:
                    for fd, _ in poller.poll(POLL_SECONDS):
                        receiver.drain(fd, acc)
                else:
                    assert server is not None
                    for fd, _ in poller.poll(POLL_SECONDS):
                        server.handle(fd, acc)
                now = time.monotonic()
                if now >= next_publish:            # on a timer: a busy sink wakes up thousands of times a second
                    self.publish(receiver, server)
                    next_publish = now + PUBLISH_SECONDS
                if inodes and now >= next_drops:
                    self.publish_drops(inodes, base_drops)
                    next_drops = now + DROPS_SECONDS
            if receiver is not None:               # what is still queued counts too
                for s in socks:
                    receiver.drain(s.fileno(), acc)
                self.publish_drops(inodes, base_drops)
            if server is not None:
                server.drain(acc)
            self.publish(receiver, server)
        finally:
            slot[C.SINK_STATE] = C.STATE_STOPPED
            poller.close()
            for s in socks:
                s.close()
            if server is not None:
                server.close()
        return EXIT_OK

    def publish_drops(self, inodes: set[int], base: int) -> None:
        self.slot[C.SINK_KERNEL_DROPS] = self.base[C.SINK_KERNEL_DROPS] + max(0, kernel_drops(inodes) - base)

    def publish(self, receiver: Receiver | None, server: StreamServer | None) -> None:
        acc, slot, b = self.accounting, self.slot, self.base
        slot[C.SINK_RECEIVED], slot[C.SINK_BYTES] = b[C.SINK_RECEIVED] + acc.received, b[C.SINK_BYTES] + acc.octets
        slot[C.SINK_UNSEQUENCED] = b[C.SINK_UNSEQUENCED] + acc.unsequenced
        slot[C.SINK_GAPS], slot[C.SINK_LATE] = b[C.SINK_GAPS] + acc.gaps, b[C.SINK_LATE] + acc.late
        slot[C.SINK_DUPLICATES] = b[C.SINK_DUPLICATES] + acc.duplicates
        slot[C.SINK_STREAMS] = max(b[C.SINK_STREAMS], len(acc.streams))
        if receiver is not None:
            slot[C.SINK_CALLS] = b[C.SINK_CALLS] + receiver.calls
        if server is not None:
            slot[C.SINK_CONNECTIONS] = b[C.SINK_CONNECTIONS] + server.accepted
            slot[C.SINK_OPEN] = server.open
            slot[C.SINK_TORN] = b[C.SINK_TORN] + server.torn
            slot[C.SINK_TLS_FAILURES] = b[C.SINK_TLS_FAILURES] + server.tls_failures
            slot[C.SINK_REJECTED] = b[C.SINK_REJECTED] + server.rejected
        slot[C.SINK_HEARTBEAT_NS] = time.monotonic_ns()
        if self.streams is not None:
            self.publish_streams()

    def publish_streams(self) -> None:
        """Per-stream figures into the slot the run announced for the stream (and nowhere else)."""
        assert self.streams is not None
        for name, st in self.accounting.streams.items():
            if name not in self.stream_slots:
                if name not in self.announced:
                    self.announced = self.streams.names()      # a stream we have not seen: the table may be newer
                index = self.announced.get(name, -1)
                self.stream_slots[name] = self.streams.slot(index) if index >= 0 else None
                if index >= 0:
                    self.stream_base[name] = self.streams.values(index)     # counts of a previous sink process
            target = self.stream_slots[name]
            if target is not None:
                base = self.stream_base[name]
                target[C.STREAM_RECEIVED] = base[C.STREAM_RECEIVED] + st.received
                target[C.STREAM_GAPS] = base[C.STREAM_GAPS] + st.gaps
                target[C.STREAM_LATE] = base[C.STREAM_LATE] + st.late
                target[C.STREAM_DUPLICATES] = base[C.STREAM_DUPLICATES] + st.duplicates
