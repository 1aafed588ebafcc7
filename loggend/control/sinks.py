"""Sink processes as a child kind: the spawner and the wait until every one receives.

Used by the supervisor (``loggend run --local-sink``) and by ``loggend sink``. ``LocalSinkTls``
gives a local TLS sink its certificate: the configured one, or a throw-away one the run's
workers are then told to trust.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from loggend.config import Config
from loggend.content import registry
from loggend.control.children import ChildSet, fork_child
from loggend.control.pki import Pki, make_pki
from loggend.engine import counters as C
from loggend.engine.counters import CounterBlock
from loggend.engine.journal import ERR, Log
from loggend.sink.sinkspec import ServerTls, SinkSpec
from loggend.sink.sinkworker import SinkWorker

START_POLL_SECONDS = 0.01


class SinkProcesses:
    def __init__(self, spec: SinkSpec, block: CounterBlock, cpus: list[int], log: Log,
                 outputs: tuple[TextIO, ...], streams: CounterBlock | None = None, announced: int = 0,
                 width: int = C.STREAM_SLOTS_PER_SINK) -> None:
        """``announced``: the run announces its streams in the first ``announced`` stream slots (0: on
        its own); sink process ``k`` writes stream slots from ``k * width``."""
        self.spec, self.block, self.cpus, self.log = spec, block, cpus, log
        self.outputs, self.streams, self.announced, self.width = outputs, streams, announced, width
        self.count = 0
        self.close_in_child: tuple[socket.socket, ...] = ()     # parent sockets a sink must not keep

    def spawn(self, k: int) -> int:
        """Fork sink process ``k``: it receives on the ports and writes sink slot ``k``."""
        sink = SinkWorker(self.spec, self.block.slot(k), self.cpus[k % len(self.cpus)],
                          log=self.log, streams=self.streams, index=k, announced=self.announced,
                          stream_offset=k * self.width)
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


class LocalSinkTls:
    """The local sink's spec for a run's config, made the same way at start and at every reload.

    For TLS without ``sink_tls_cert`` a throw-away PKI is made once per run (``loggend.control.pki``;
    SAN: the target as written, its address and localhost) and, unless the config names a CA or
    turns verification off, the workers trust its CA: a local TLS run verifies like a real one."""

    def __init__(self) -> None:
        self.pki: Pki | None = None

    def apply(self, c: Config) -> tuple[SinkSpec, Config]:
        """(the sink's spec, the config the workers get); PkiError when a certificate cannot be made.
        The sink looks for every vendor form's proof of delivery (``loggend.content.registry``)."""
        spec, config = self._apply(c)
        return replace(spec, proofs=registry.proofs()), config

    def _apply(self, c: Config) -> tuple[SinkSpec, Config]:
        if c.protocol != "tls":
            return SinkSpec(c.host, c.ports, c.protocol), c
        if c.sink_tls_cert:
            return SinkSpec(c.host, c.ports, "tls", tls=ServerTls(c.sink_tls_cert, c.sink_tls_key)), c
        if not c.local_sink:
            return SinkSpec(c.host, c.ports, "tls", tls=ServerTls("", "")), c
        if self.pki is None:
            names = tuple(dict.fromkeys(n for n in (c.target_name, c.host, "localhost", "127.0.0.1") if n))
            self.pki = make_pki(tempfile.mkdtemp(prefix="loggend-pki-"), names)
        spec = SinkSpec(c.host, c.ports, "tls", tls=ServerTls(str(self.pki.server_cert), str(self.pki.server_key)))
        if c.tls.ca or not c.tls.verify:
            return spec, c
        return spec, replace(c, tls=replace(c.tls, ca=str(self.pki.ca_cert)))

    def close(self) -> None:
        if self.pki is not None:
            shutil.rmtree(self.pki.dir, ignore_errors=True)
            self.pki = None
