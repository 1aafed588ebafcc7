"""Validated, frozen run configuration and the small pure parsers that build it.

Every parser takes the name of the key or flag it is parsing, so the one-line error it raises
names what the user typed. Nothing downstream of ``Config`` sees a raw string or dict.
"""

from __future__ import annotations

import math
import re
import socket
from dataclasses import dataclass, field

from loggend.engine import catalog
from loggend.engine.render import UDP_MAX_PAYLOAD
from loggend.engine.spec import TIMEZONES, TRANSPORTS, MessageSpec, WorkerSpec
from loggend.errors import ConfigError

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
RATE_SUFFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}
MAX_RATE = 1e9
MIN_MESSAGE_LENGTH = 160          # room for the longest header and the sequence suffix
MAX_HOSTS = 1_000_000
POOL_SIZES = (1_000, 10_000, 100_000, 1_000_000)
STREAM_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,16}")
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_RATE_RE = re.compile(r"(\d+(?:\.\d+)?)([kKmM]?)")


def parse_duration(key: str, text: str, bare_unit: str = "s") -> float:
    """``90s``, ``30m``, ``1h``, ``1.5h``, ``250ms``; a bare number is in ``bare_unit``. 0 = forever."""
    m = _DURATION_RE.fullmatch(str(text).strip())
    if not m:
        raise ConfigError(key, text, "a duration such as 90s, 30m or 1h (0 = until stopped)")
    return float(m.group(1)) * DURATION_UNITS[m.group(2) or bare_unit]


def parse_rate(key: str, text: str | float) -> float:
    """Events per second: ``250000``, ``250k``, ``4M``; 0 = as fast as possible."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _RATE_RE.fullmatch(str(text).strip())
        if not m:
            raise ConfigError(key, text, "events per second >= 0, e.g. 50000, 250k or 4M (0 = unlimited)")
        value = float(m.group(1)) * RATE_SUFFIXES[m.group(2)]
    if not (0 <= value <= MAX_RATE) or math.isnan(value):
        raise ConfigError(key, text, f"events per second between 0 and {MAX_RATE:.0e} (0 = unlimited)")
    return value


def parse_port(key: str, text: str | int, lowest: int = 1) -> int:
    """A UDP port; ``lowest=0`` lets a listener ask for any free port."""
    try:
        port = int(text)
    except (TypeError, ValueError):
        port = -1
    if not lowest <= port <= 65535:
        raise ConfigError(key, text, f"a UDP port from {lowest} to 65535")
    return port


def parse_int(key: str, text: str | int, low: int, high: int) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ConfigError(key, text, f"a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise ConfigError(key, text, f"a whole number from {low} to {high}")
    return value


def parse_choice(key: str, text: str, allowed: tuple[str, ...]) -> str:
    if text not in allowed:
        raise ConfigError(key, text, "one of " + ", ".join(allowed))
    return text


def split_target(key: str, text: str, lowest_port: int = 1) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    text = str(text).strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(key, text, "HOST, HOST:PORT or [IPv6]:PORT")
        return host, parse_port(key, rest[1:], lowest_port) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, parse_port(key, port, lowest_port)
    return text, None


def resolve_host(key: str, host: str) -> str:
    """The numeric address the workers will send to (resolved once, at start-up)."""
    if not host:
        raise ConfigError(key, host, "a host name or IP address")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        raise ConfigError(key, host, "a host name that resolves, or an IP address") from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)          # prefer IPv4, like most SIEM inputs
    return str(infos[0][4][0])


def parse_pri_mix(key: str, text: str) -> tuple[tuple[int, float], ...]:
    """``auth.info=3,local7.notice=1`` -> ((38, 3.0), (189, 1.0)); empty = each template's own."""
    mix = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        name, _, weight = part.partition("=")
        fac, _, sev = name.partition(".")
        if fac not in catalog.FACILITIES or sev not in catalog.SEVERITIES:
            raise ConfigError(key, part, "FACILITY.SEVERITY=WEIGHT, e.g. auth.info=3,local7.err=1")
        try:
            w = float(weight or 1)
        except ValueError:
            w = -1.0
        if not w > 0 or math.isinf(w):
            raise ConfigError(key, part, "a positive weight after '='")
        mix.append((catalog.FACILITIES[fac] * 8 + catalog.SEVERITIES[sev], w))
    return tuple(mix)


def parse_stream_id(key: str, text: str) -> str:
    if not STREAM_ID_RE.fullmatch(text):
        raise ConfigError(key, text, "1 to 16 letters, digits or -_.")
    return text


def parse_max_length(key: str, text: str | int) -> int:
    return parse_int(key, text, MIN_MESSAGE_LENGTH, UDP_MAX_PAYLOAD)


def parse_pool_size(key: str, text: str | int) -> int:
    value = parse_int(key, text, POOL_SIZES[0], POOL_SIZES[-1])
    if value not in POOL_SIZES:
        raise ConfigError(key, text, "one of " + ", ".join(str(p) for p in POOL_SIZES))
    return value


@dataclass(frozen=True)
class Config:
    host: str                           # resolved numeric address
    port: int
    rate: float = 0.0                   # events/s in total; 0 = unlimited
    duration: float = 0.0               # seconds; 0 = until stopped
    transport: str = "auto"
    target_name: str = ""               # as the user wrote it, for messages
    stream_id: str = ""                 # label in every message; default w<worker>
    messages: MessageSpec = field(default_factory=MessageSpec)

    def worker_spec(self, index: int = 0) -> WorkerSpec:
        return WorkerSpec(
            host=self.host, port=self.port, index=index, rate=self.rate, duration=self.duration,
            transport=self.transport, stream_id=self.stream_id, messages=self.messages,
        )


def check_transport(key: str, text: str) -> str:
    return parse_choice(key, text, TRANSPORTS)


def check_timezone(key: str, text: str) -> str:
    return parse_choice(key, text, TIMEZONES)
