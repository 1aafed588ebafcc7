"""Sink processes as a child kind: the spawner and the wait until every one receives.

Used by the supervisor (``loggend run --local-sink``) and by ``loggend sink``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TextIO

from loggend.control.children import ChildSet, fork_child
from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.engine.journal import ERR, Log
from loggend.sink.process import SinkWorker

START_POLL_SECONDS = 0.01


class SinkProcesses:
    def __init__(self, host: str, ports: tuple[int, ...], block: CounterBlock, cpus: list[int],
                 log: Log, outputs: tuple[TextIO, ...], gro: bool = True,
                 streams: CounterBlock | None = None) -> None:
        self.host, self.ports, self.block, self.cpus, self.log = host, ports, block, cpus, log
        self.outputs, self.gro, self.streams = outputs, gro, streams
        self.count = 0
        self.close_in_child: tuple[socket.socket, ...] = ()     # parent sockets a sink must not keep

    def spawn(self, k: int) -> int:
        """Fork sink process ``k``: it receives on the ports and writes sink slot ``k``."""
        sink = SinkWorker(self.host, self.ports, self.block.slot(k), self.cpus[k % len(self.cpus)],
                          log=self.log, gro=self.gro, streams=self.streams, index=k)
        close = self.close_in_child

        def body() -> int:
            for sock in close:      # else it stays in the SO_REUSEPORT group and takes a share of flows
                sock.close()
            sink.init_process()
            return sink.run()
        return fork_child(body, self.outputs)

    def running(self) -> bool:
        return all(self.block.values(k)[C.SINK_STATE] == C.STATE_RUNNING for k in range(self.count))

    def start(self, children: ChildSet, count: int, timeout: float, give_up: Callable[[], bool]) -> bool:
        """Spawn ``count`` sink processes and wait until all receive; False when ``give_up()`` says
        so (a child failed) or after ``timeout`` (logged)."""
        self.count = count
        for k in range(count):
            children.spawn("sink", k)
        deadline = time.monotonic() + timeout
        while not self.running():
            if give_up():
                return False
            if time.monotonic() >= deadline:
                self.log(f"sink: not receiving after {timeout:g} s", ERR)
                return False
            time.sleep(START_POLL_SECONDS)
        return True
