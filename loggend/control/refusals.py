"""Ports that refuse: nothing listens there.

A datagram to a UDP port where nothing listens comes back as an ICMP port unreachable, which the
kernel hands to the next send on the connected socket as ECONNREFUSED: the worker counts it in
its ``refused`` errors. Looked at every tick (a second), per port of the run:

* a port whose refused count rose is named in the log at once, ``127.0.0.1:515 refuses: nothing
  listens there``, and again when it takes datagrams once more (``ANSWER_TICKS`` looks in a row of
  sending with no refusal: the refusal of a datagram comes back on the next send, so at a low rate
  a refusing port has looks with a send and no refusal, but never two in a row);
* a run that ends with every port still refusing, none of which ever took datagrams, measured
  nothing: the supervisor fails it (exit 1) with ``measured_nothing``'s line.

UDP only: a TCP/TLS worker whose connect is refused says so itself (``cannot connect``).
"""

from __future__ import annotations

from dataclasses import dataclass

from loggend.config import Config
from loggend.engine import counters as C
from loggend.engine.counters import SlotSnapshot
from loggend.engine.journal import NOTICE, WARNING, Log
from loggend.parsers import format_ports, plural

SAID_ONE_BY_ONE = 4        # more ports than this beginning to refuse at once are said in one line
ANSWER_TICKS = 2           # looks in a row with sends and no refusal: the port takes datagrams (again)
REFUSED = C.ERROR_KINDS.index("refused")


@dataclass
class Port:
    refused: int = 0             # refused so far (all workers on the port)
    sent: int = 0
    since: float | None = None   # when it last started refusing (None: not refusing)
    clean: int = 0               # looks in a row with sends and no refusal
    answered: bool = False       # it took datagrams (ANSWER_TICKS clean looks) at some point


class RefusalWatch:
    def __init__(self, log: Log) -> None:
        self.log = log
        self.ports: dict[int, Port] = {}
        self.last: dict[int, tuple[int, int]] = {}      # worker index -> (refused, sent) at the last look
        self.port_of: dict[int, int] = {}               # worker index -> the port it sent to at the last look

    def refused(self) -> dict[int, int]:
        """Port -> datagrams refused there (each where it was sent at the time)."""
        return {port: p.refused for port, p in sorted(self.ports.items()) if p.refused}

    def look_at(self, config: Config, snapshots: list[SlotSnapshot], now: float) -> None:
        """A tick of a run (UDP only)."""
        if config.protocol == "udp":
            self.look(config.host, config.ports, snapshots, config.workers, now)

    def look(self, host: str, ports: tuple[int, ...], snapshots: list[SlotSnapshot], workers: int,
             now: float) -> None:
        """One tick: what every worker refused and sent since the last, added to the port it sends to now
        (a reload may move a worker to another port: what it refused before stays with the old one)."""
        if not ports:
            return
        deltas: dict[int, tuple[int, int]] = {}
        for i, s in enumerate(snapshots[:workers]):
            refused, sent = s.errors[REFUSED], s.sent
            last_refused, last_sent = self.last.get(i, (0, 0))
            if refused < last_refused or sent < last_sent:         # the slot was reused (fewer, then more workers)
                last_refused, last_sent = refused, sent
            self.last[i] = (refused, sent)
            port = self.port_of.get(i, ports[i % len(ports)])     # since the last look it sent where it did then
            self.port_of[i] = ports[i % len(ports)]
            r, n = deltas.get(port, (0, 0))
            deltas[port] = (r + refused - last_refused, n + sent - last_sent)
        started: dict[int, tuple[int, int]] = {}              # ports that began refusing in this look
        for port, (refused, sent) in deltas.items():
            p = self.ports.setdefault(port, Port())
            p.refused, p.sent = p.refused + refused, p.sent + sent
            if refused:
                if p.since is None:
                    started[port] = (refused, p.refused)
                    p.since = now
                p.clean = 0
            elif sent:
                p.clean += 1
                if p.clean >= ANSWER_TICKS:
                    p.answered = True
                    if p.since is not None:
                        self.log(f"{host}:{port} takes datagrams again (no refusal for {ANSWER_TICKS} s of "
                                 "sending)", NOTICE)
                        p.since = None
        self.say_refusing(host, started)

    def say_refusing(self, host: str, started: dict[int, tuple[int, int]]) -> None:
        """A line per port that began refusing; one for them all when they are many (40 default ports)."""
        if len(started) > SAID_ONE_BY_ONE:
            last = sum(n for n, _ in started.values())
            self.log(f"{host}: {len(started)} ports refuse: {format_ports(tuple(sorted(started)))} (nothing listens "
                     f"there; {last:,} datagrams refused in the last second)", WARNING)
            return
        for port, (last, total) in sorted(started.items()):
            self.log(f"{host}:{port} refuses: nothing listens there ({plural(last, 'datagram')} refused in the last "
                     f"second; {total:,} in all)", WARNING)

    def unanswered(self) -> dict[int, int]:
        """Ports that refused and never took datagrams (``answered``), with what was sent there all the
        same: a datagram between two refusals goes out, and nowhere (port -> sent)."""
        return {port: p.sent for port, p in sorted(self.ports.items()) if p.refused and not p.answered}

    def measured_nothing(self, host: str, current: tuple[int, ...] = ()) -> str:
        """The line that fails a run in which every port refused and none ever took datagrams; "" otherwise
        (also when a port the run sends to now has not been looked at: a reload's new port)."""
        if not self.ports or any(p.answered or p.since is None for p in self.ports.values()) \
                or any(port not in self.ports for port in current):
            return ""
        refused = sum(p.refused for p in self.ports.values())
        sent = sum(p.sent for p in self.ports.values())
        return (f"measured nothing: every datagram went to a port where nothing listens ({host}:"
                f"{format_ports(tuple(sorted(self.ports)))}; {refused:,} refused by the kernel, the {sent:,} sent "
                f"between them went nowhere too); is the SIEM's input on another port? (--ports)")
