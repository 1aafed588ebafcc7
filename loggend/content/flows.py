"""Network conversations every firewall source logs the same way, and the device clocks they stamp.

A ``Flow`` is one connection as a firewall sees it, drawn from the shared address plan
(``netplan``): who talked to whom on which service, the NAT the device applied from its pool,
bytes and packets each way (``total = sent + received``) and how long it lasted. Each vendor
module maps a flow onto its own fields (zones, interfaces, rule names, session ids).
``paired`` interleaves conversations as a device logs them: an opening (Built, create) is
followed later by its closing (Teardown, close) with the same id, duration and sizes.

Stamps here are the device clocks of the network sources; each renders to one width per zone.
Pure functions of a ``random.Random``; used while the pool is built, never per sent message.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from loggend.content import netplan
from loggend.content.hostkit import ago_step
from loggend.content.model import Conversation, Draft, Stamp
from loggend.engine.formats import MONTHS, stamp_cef, stamp_rfc3164, stamp_rfc3339

DIRECTIONS = (("outbound", 78), ("internal", 14), ("inbound", 8))
_DIRECTION_NAMES = tuple(d for d, _ in DIRECTIONS)
_DIRECTION_WEIGHTS = tuple(itertools.accumulate(w for _, w in DIRECTIONS))      # cumulative
DENY_SHARE = 0.08                   # flows a policy refuses (no bytes back)
OPEN_WINDOW = 64                    # conversations a device has open at once in the generated list
INBOUND_PORTS = ((443, "ssl"), (80, "web-browsing"), (25, "smtp"))
# (median bytes client->server, median server->client, typical packet size) per application
SIZES = {"dns": (70, 160, 120), "ntp": (76, 76, 76), "ssl": (2_400, 48_000, 1_100), "quic": (3_000, 60_000, 1_200),
         "web-browsing": (900, 24_000, 1_000)}
DEFAULT_SIZE = (1_500, 9_000, 700)
T = TypeVar("T")


def _tm(seconds: float, utc: bool) -> time.struct_time:
    return time.gmtime(seconds) if utc else time.localtime(seconds)


def _panos(seconds: float, utc: bool) -> bytes:
    t = _tm(seconds, utc)
    return b"%04d/%02d/%02d %02d:%02d:%02d" % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _fortios(seconds: float, utc: bool) -> bytes:
    t = _tm(seconds, utc)
    return b"date=%04d-%02d-%02d time=%02d:%02d:%02d" % (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min,
                                                           t.tm_sec)


def _epoch(seconds: float, utc: bool) -> bytes:
    return b"%010d" % int(seconds)


def _epoch_ns(seconds: float, utc: bool) -> bytes:
    return b"%019d" % (int(seconds) * 1_000_000_000)


def _ios(seconds: float, utc: bool) -> bytes:
    t = _tm(seconds, utc)
    return b"%s %2d %02d:%02d:%02d" % (MONTHS[t.tm_mon - 1].encode(), t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ZONE_WIDTH = max(len(name) for name in time.tzname)


def _ios_clock(seconds: float, utc: bool) -> bytes:
    """IOS's ``show clock`` form, as its login messages end: 20:13:50 UTC Sun Dec  6 2026 (the day
    padded like RFC 3164's and a local zone's name to its longest, so every second has one width)."""
    t = _tm(seconds, utc)
    zone = "UTC" if utc else time.tzname[t.tm_isdst > 0].ljust(ZONE_WIDTH)
    return b"%02d:%02d:%02d %s %s %s %2d %04d" % (t.tm_hour, t.tm_min, t.tm_sec, zone.encode(),
                                                  WEEKDAYS[t.tm_wday].encode(), MONTHS[t.tm_mon - 1].encode(),
                                                  t.tm_mday, t.tm_year)


STAMP_ASA = Stamp("cisco-asa", stamp_cef)              # Dec 06 2026 21:04:05
STAMP_IOS = Stamp("cisco-ios", _ios)                    # Dec  6 21:04:05
STAMP_IOS_CLOCK = Stamp("cisco-ios-clock", _ios_clock)  # 21:04:05 UTC Sun Dec  6 2026
STAMP_PANOS = Stamp("panos", _panos)                    # 2026/12/06 21:04:05
STAMP_FORTIOS = Stamp("fortios-date", _fortios)         # date=2026-12-06 time=21:04:05
STAMP_EPOCH = Stamp("unix-seconds", _epoch)                  # 1765055045
STAMP_EPOCH_NS = Stamp("epoch-ns", _epoch_ns)           # 1765055045000000000 (FortiOS eventtime)
STAMP_RFC3339 = Stamp("rfc3339", stamp_rfc3339)         # 2026-12-06T21:04:05Z
STAMP_RFC3164 = Stamp("rfc3164", stamp_rfc3164)         # Dec  6 21:04:05
STAMP_CEF = Stamp("cef", stamp_cef)                     # Dec 06 2026 21:04:05 (CEF rt)
# In a row's text, AGO + seconds + AGO marks a stamp that many seconds before the log's own time (a
# session's start beside its end, which the log is written at): ``ago_mark`` writes it, ``with_ago``
# turns it into the ``ago`` stamp. As the hosts' sources do (hostkit.AGO_STEPS), a session that
# writes its start beside its elapsed time lasts one of a few distances (``elapsed``): one stamp
# style per distance, each a column patched every second in every message that has it (a style per
# whole second of duration made PAN-OS's per-second patching 2.75 times as long).
AGO = "\3"
AGO_SPLIT = re.compile(f"({AGO}\\d+{AGO})")


@cache
def ago(stamp: Stamp, seconds: int) -> Stamp:
    """``stamp`` as it read ``seconds`` before the time it is rendered for."""
    return Stamp(f"{stamp.style}-{seconds}", lambda now, utc: stamp.render(now - seconds, utc))


def ago_mark(seconds: int) -> str:
    return f"{AGO}{seconds}{AGO}"


def elapsed(f: Flow) -> int:
    """The flow's duration as a log that writes its start time beside it gives it (``AGO_STEPS``)."""
    return ago_step(f.duration)


def with_ago(stamp: Stamp, text: str) -> list[str | Stamp]:
    """``text`` with every ``ago_mark`` replaced by ``stamp`` that many seconds back."""
    return [ago(stamp, int(piece[1:-1])) if piece.startswith(AGO) else piece
            for piece in AGO_SPLIT.split(text) if piece]


@dataclass(frozen=True)
class Flow:
    direction: str          # outbound | internal | inbound
    proto: str              # tcp | udp
    app: str                # the application as firewalls name it (netplan.SERVICES)
    src: str
    sport: int
    dst: str                # the destination as the client addressed it
    dport: int
    nat_src: str            # source after NAT (= src when none)
    nat_sport: int
    nat_dst: str            # destination after NAT (= dst when none)
    sent: int               # bytes client -> server
    rcvd: int               # bytes server -> client
    pkts_sent: int
    pkts_rcvd: int
    duration: int           # seconds
    allowed: bool

    @property
    def bytes(self) -> int:
        return self.sent + self.rcvd

    @property
    def packets(self) -> int:
        return self.pkts_sent + self.pkts_rcvd

    @property
    def proto_number(self) -> int:
        return 6 if self.proto == "tcp" else 17


def _sizes(rng: random.Random, app: str, proto: str, allowed: bool) -> tuple[int, int, int, int, int]:
    if not allowed:
        return 0, 0, 1, 0, 0
    least = 3 if proto == "tcp" else 1          # a TCP session's handshake and close
    up, down, pkt = SIZES.get(app, DEFAULT_SIZE)
    sent = max(40, int(rng.lognormvariate(0, 0.9) * up))
    rcvd = max(40, int(rng.lognormvariate(0, 1.2) * down))
    pkts_sent = max(least, sent // max(60, pkt // 4))
    pkts_rcvd = max(least, rcvd // pkt)
    short = app in ("dns", "ntp")
    duration = rng.randint(0, 2) if short else int(rng.expovariate(1 / 45))
    return sent, rcvd, pkts_sent, pkts_rcvd, duration


def flow(rng: random.Random, nat_pool: tuple[str, ...], allowed: bool | None = None,
         direction: str | None = None, service: netplan.Service | None = None) -> Flow:
    """One connection of the company's traffic; ``nat_pool`` holds the device's public addresses.
    ``allowed``, ``direction`` and ``service`` (not inbound) fix what a kind of log needs (a Built
    is allowed, a drop is not, a DNS filter log is a DNS query)."""
    if direction is None:
        direction = rng.choices(_DIRECTION_NAMES, cum_weights=_DIRECTION_WEIGHTS)[0]
    if allowed is None:
        allowed = rng.random() >= DENY_SHARE
    if direction == "inbound":
        dport, app = rng.choice(INBOUND_PORTS)
        proto, src, dst = "tcp", netplan.external(rng), rng.choice(nat_pool)
        nat_dst = netplan.dmz_server(rng)
    else:
        svc = service or netplan.service(rng)
        proto, dport, app = svc.protocol, svc.port, svc.app
        src = netplan.internal_client(rng)
        dst = netplan.external(rng) if direction == "outbound" else netplan.internal_server(rng)
        nat_dst = dst
    sport = netplan.ephemeral_port(rng)
    if direction == "outbound":
        nat_src, nat_sport = rng.choice(nat_pool), rng.randint(1024, 65535)
    else:
        nat_src, nat_sport = src, sport
    sent, rcvd, ps, pr, dur = _sizes(rng, app, proto, allowed)
    return Flow(direction, proto, app, src, sport, dst, dport, nat_src, nat_sport, nat_dst, sent, rcvd, ps, pr, dur,
                allowed)


def nat_pool(rng: random.Random, size: int = 4) -> tuple[str, ...]:
    """A device's share of the company's egress addresses (netplan.NAT_POOL)."""
    return tuple(sorted({netplan.nat_address(rng) for _ in range(size * 3)})[:size])


def paired(rng: random.Random, count: int, start: Callable[[], tuple[T, tuple[Draft, ...]]],
           finish: Callable[[T], Draft], single: Callable[[], Draft] | None = None,
           single_share: float = 0.0) -> Iterator[Draft]:
    """About ``count`` drafts: conversations opened by ``start`` (its drafts in order, e.g. a NAT
    translation then the connection) and closed later by ``finish`` (every opening is closed, so a
    few more than ``count`` may come), mixed with ``single`` ones. A conversation's drafts carry one
    ``Conversation`` key, each in its own phase, so the pool sends them in this order."""
    pending: list[tuple[T, str, int]] = []
    made = 0
    opened = 0
    while made < count:
        if single is not None and rng.random() < single_share:
            yield single()
        elif pending and (len(pending) >= OPEN_WINDOW or rng.random() < 0.5 or made + len(pending) >= count):
            i = rng.randrange(len(pending))
            pending[i], pending[-1] = pending[-1], pending[i]
            state, key, phase = pending.pop()
            yield (*finish(state), Conversation(key, phase))
        else:
            state, drafts = start()
            key = str(opened)
            opened += 1
            pending.append((state, key, len(drafts)))
            for phase, draft in enumerate(drafts):
                yield (*draft, Conversation(key, phase))
            made += len(drafts) - 1
        made += 1
    while pending:
        state, key, phase = pending.pop()
        yield (*finish(state), Conversation(key, phase))


def cef_escape(value: str) -> str:
    """A CEF extension value: backslash and equals sign escaped (CEF Implementation Standard)."""
    return value.replace("\\", "\\\\").replace("=", "\\=")


class Counter:
    """A device's running number (session ids, connection ids, log sequence numbers)."""

    def __init__(self, rng: random.Random, low: int, high: int, step: int = 7) -> None:
        self.value = rng.randint(low, high)
        self.rng = rng
        self.step = step

    def next(self) -> int:
        self.value += self.rng.randint(1, self.step)
        return self.value
