"""Validated, frozen run configuration: the only YAML reader, the small pure parsers, ``load``.

Every parser takes the name of the key or flag it is parsing, so the one-line error it raises
names what the user typed (``/etc/loggen.yaml: rate`` or ``--rate``). ``load(path, overrides)``
reads the file, lays the command-line overrides over it and validates every key into a frozen
``Config``; nothing downstream sees a raw string or dict. ``config/loggen.yaml`` documents
every key with its default (a test holds the two together).
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from loggend.engine import catalog
from loggend.engine.render import CORPUS_SIZE, UDP_MAX_PAYLOAD
from loggend.engine.spec import TIMEZONES, TRANSPORTS, MessageSpec, WorkerSpec
from loggend.errors import ConfigError, UsageError

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
RATE_SUFFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}
MAX_RATE = 1e9
MIN_MESSAGE_LENGTH = 160          # room for the longest header and the sequence suffix
MAX_HOSTS = 1_000_000
MAX_SEED = 2**63 - 1
POOL_SIZES = (1_000, 10_000, 100_000, 1_000_000)
STREAM_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,12}")   # + the worker index <= 16 characters
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?")
_RATE_RE = re.compile(r"(\d+(?:\.\d+)?)([kKmM]?)")


def parse_duration(key: str, text: str | float, bare_unit: str = "s") -> float:
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


def parse_int(key: str, text: object, low: int, high: int) -> int:
    try:
        if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
            raise ValueError(text)
        value: int = int(text)  # type: ignore[call-overload]
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
        raise ConfigError(key, text, "a stream prefix of 1 to 12 letters, digits or -_.")
    return text


def parse_max_length(key: str, text: str | int) -> int:
    return parse_int(key, text, MIN_MESSAGE_LENGTH, UDP_MAX_PAYLOAD)


def parse_pool_size(key: str, text: str | int) -> int:
    value = parse_int(key, text, POOL_SIZES[0], POOL_SIZES[-1])
    if value not in POOL_SIZES:
        raise ConfigError(key, text, "one of " + ", ".join(str(p) for p in POOL_SIZES))
    return value


DEFAULT_CONFIG_PATH = "/etc/loggen.yaml"
MAX_WORKERS = 1024
MIN_HUNG_TIMEOUT = 1.0
MAX_SINK_PROCESSES = 256
MIN_INTERVAL, MAX_INTERVAL = 0.1, 60.0
TOKEN_RE = re.compile(r"|[!-~]{16,256}")
ORIGIN_RE = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)
_PORT_PART_RE = re.compile(r"(\d+)(?:-(\d+))?")
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def parse_bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS or text in FALSE_WORDS:
        return text in TRUE_WORDS
    raise ConfigError(key, value, "true or false")


def _int_list(key: str, value: object, allowed: str, low: int, high: int) -> tuple[int, ...]:
    """``514-553``, ``514``, ``"514,600-610"`` or a YAML list of numbers and ranges."""
    parts: list[object] = list(value) if isinstance(value, list) else list(str(value).split(","))
    out: list[int] = []
    for part in parts:
        is_number = isinstance(part, int) and not isinstance(part, bool)
        m = _PORT_PART_RE.fullmatch(str(part).strip()) if is_number or isinstance(part, str) else None
        if not m:
            raise ConfigError(key, value, allowed)
        first = int(m.group(1))
        last = int(m.group(2) or first)
        if not low <= first <= last <= high:
            raise ConfigError(key, value, allowed)
        out.extend(range(first, last + 1))
    if not out:
        raise ConfigError(key, value, allowed)
    return tuple(out)


def parse_ports(key: str, value: object) -> tuple[int, ...]:
    return _int_list(key, value, "ports from 1 to 65535: a range 514-553, a port, or a list [514, 600-610]", 1, 65535)


def parse_cpus(key: str, value: object, usable: set[int]) -> tuple[int, ...]:
    """``auto`` = every CPU this process may run on; else a list or ranges of them."""
    if str(value).strip() == "auto":
        return tuple(sorted(usable))
    allowed = "auto, or CPUs this process may use: " + ",".join(str(c) for c in sorted(usable))
    cpus = _int_list(key, value, allowed, 0, 4095)
    if not set(cpus) <= usable:
        raise ConfigError(key, value, allowed)
    return tuple(dict.fromkeys(cpus))


def parse_size(key: str, value: object) -> int:
    """Bytes: ``12G``, ``512M``, ``12GiB``, a number of bytes; 0 = no limit."""
    m = _SIZE_RE.fullmatch(str(value).strip())
    if isinstance(value, bool) or not m:
        raise ConfigError(key, value, "a size such as 512M or 12G (0 = no limit)")
    return int(float(m.group(1)) * SIZE_UNITS[m.group(2).upper()])


def parse_listen(key: str, value: object) -> tuple[str, int]:
    """``ADDRESS:PORT`` for a listening socket; ``PORT`` alone means 127.0.0.1."""
    text = str(value).strip()
    if text.isdigit():
        return "127.0.0.1", parse_port(key, text)
    host, port = split_target(key, text, lowest_port=0)
    if port is None or not host:
        raise ConfigError(key, value, "ADDRESS:PORT, e.g. 127.0.0.1:8080")
    return resolve_host(key, host), port


def parse_hung_timeout(key: str, value: object) -> float:
    seconds = parse_duration(key, value)  # type: ignore[arg-type]
    if seconds < MIN_HUNG_TIMEOUT:
        raise ConfigError(key, value, f"at least {MIN_HUNG_TIMEOUT:g}s (workers beat every 0.05 s)")
    return seconds


def parse_dashboard(key: str, value: object) -> tuple[str, int] | None:
    """``ADDRESS:PORT`` (port 0 = any free one), or ``off`` for no web process."""
    if value is False or str(value).strip().lower() in ("off", "false", "no", "none"):
        return None
    return parse_listen(key, value)


def parse_token(key: str, value: object) -> str:
    text = str(value)
    if not TOKEN_RE.fullmatch(text):
        raise ConfigError(key, "<hidden>", "empty, or 16 to 256 printable characters without spaces")
    return text


def parse_interval(key: str, value: object) -> float:
    seconds = parse_duration(key, value)  # type: ignore[arg-type]
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise ConfigError(key, value, f"from {MIN_INTERVAL:g}s to {MAX_INTERVAL:g}s")
    return seconds


def parse_origins(key: str, value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
    out = []
    for item in items:
        text = str(item).strip().rstrip("/")
        if not ORIGIN_RE.fullmatch(text):
            raise ConfigError(key, item, "origins such as https://grafana.example:3000")
        out.append(text)
    return tuple(out)


def format_ports(ports: tuple[int, ...]) -> str:
    """(514, 515, ..., 553) -> ``514-553``; anything else comma-separated ranges."""
    runs: list[list[int]] = []
    for p in ports:
        if runs and p == runs[-1][1] + 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def format_size(nbytes: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if nbytes >= SIZE_UNITS[unit]:
            return f"{nbytes / SIZE_UNITS[unit]:.1f} {unit}iB"
    return f"{nbytes} B"


def auto_pool_size(workers: int) -> int:
    """The largest power of ten <= CORPUS_SIZE / workers, at least the second smallest pool."""
    size = POOL_SIZES[-1]
    while size > POOL_SIZES[1] and size * workers > CORPUS_SIZE:
        size //= 10
    return size


@dataclass(frozen=True)
class Config:
    host: str                           # resolved numeric address
    ports: tuple[int, ...] = (514,)     # worker i sends to ports[i % len(ports)]
    rate: float = 0.0                   # events/s in total, split evenly; 0 = unlimited
    workers: int = 1
    cpus: tuple[int, ...] = ()          # worker i pins to cpus[i % len(cpus)]; () = no pinning
    duration: float = 0.0               # seconds; 0 = until stopped
    transport: str = "auto"
    target_name: str = ""               # as the user wrote it, for messages
    stream_id: str = "w"                # stream prefix: worker i's messages carry stream=<prefix><i>
    messages: MessageSpec = field(default_factory=MessageSpec)
    dashboard: tuple[str, int] | None = ("127.0.0.1", 8080)   # None = no web process
    dashboard_token: str = ""           # bearer token every web endpoint wants; "" = open
    dashboard_interval: float = 1.0     # seconds between samples / WebSocket frames
    dashboard_origins: tuple[str, ...] = ()   # extra Origins allowed to open /ws
    memory_limit: int = 0               # bytes over supervisor + workers; 0 = no limit
    optimize: bool = False              # apply kernel network tuning when allowed
    hung_timeout: float = 10.0          # a worker whose heartbeat is this old is killed and restarted
    local_sink: bool = False            # run sink processes on the target ports under the supervisor
    sink_processes: int = 1             # how many (resolved: 0 in the file = one per CPU)
    source: str = "built-in defaults"   # where it was read from, for messages

    @property
    def target(self) -> str:
        return f"{self.target_name or self.host}:{format_ports(self.ports)}"

    def worker_rate(self) -> float:
        return self.rate / self.workers

    def worker_spec(self, index: int = 0, duration: float | None = None, count: int = 0) -> WorkerSpec:
        return WorkerSpec(
            host=self.host, port=self.ports[index % len(self.ports)], index=index, rate=self.worker_rate(),
            duration=self.duration if duration is None else duration, count=count,
            cpu=self.cpus[index % len(self.cpus)] if self.cpus else None,
            transport=self.transport, stream_id=self.stream_id, messages=self.messages,
        )

    def describe(self) -> str:
        rate = f"{self.rate:,.0f} ev/s" if self.rate else "unlimited rate"
        duration = f"{self.duration:g} s" if self.duration else "until stopped"
        cpus = ",".join(str(c) for c in self.cpus) or "any"
        web = "off" if self.dashboard is None else f"{self.dashboard[0]}:{self.dashboard[1]}"
        sink = f", local sink x{self.sink_processes}" if self.local_sink else ""
        return (f"{self.workers} workers -> {self.target}, {rate}, {duration}, transport {self.transport}, "
                f"cpus {cpus}, pool {self.messages.pool_size:,}/worker, dashboard {web}{sink}")


def check_transport(key: str, text: str) -> str:
    return parse_choice(key, text, TRANSPORTS)


def check_timezone(key: str, text: str) -> str:
    return parse_choice(key, text, TIMEZONES)


# --- the file and its keys --------------------------------------------------------------------------

# Every key with its default, as written in config/loggen.yaml. "messages" keys are nested there.
DEFAULTS: dict[str, object] = {
    "target": "127.0.0.1",
    "ports": "514-553",
    "transport": "auto",
    "rate": 0,
    "workers": 40,
    "cpus": "auto",
    "duration": 0,
    "messages.seed": 1,
    "messages.hosts": 1000,
    "messages.pri_mix": "",
    "messages.timezone": "local",
    "messages.sequence": True,
    "messages.max_length": 1024,
    "messages.pool_size": "auto",
    "messages.stream_id": "w",
    "dashboard": "127.0.0.1:8080",
    "dashboard_token": "",
    "dashboard_interval": "1s",
    "dashboard_origins": [],
    "memory_limit": "12G",
    "optimize": False,
    "hung_timeout": "10s",
    "local_sink": False,
    "sink_processes": 0,
}
SECTIONS = ("messages",)
DASHBOARD_PORT = "dashboard_port"     # command-line only: the original tool's -dashboard-port


class Raw:
    """Key -> (label for errors, value): the file's values with the overrides laid over them."""

    def __init__(self, values: Mapping[str, tuple[str, object]]) -> None:
        self.values = dict(values)

    def label(self, key: str) -> str:
        return self.values[key][0] if key in self.values else key

    def __getitem__(self, key: str) -> Any:
        return self.values[key][1] if key in self.values else DEFAULTS[key]

    def __contains__(self, key: str) -> bool:
        return key in self.values


def read_file(path: str) -> dict[str, tuple[str, object]]:
    """The file's keys, flattened (``messages.seed``) and labelled ``PATH: KEY``; errors are one line."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: cannot read: {getattr(err, 'strerror', None) or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise UsageError(f"{path}: {where}malformed YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"{path}: malformed YAML: {str(err).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of keys such as 'rate: 250k', got {type(data).__name__}")
    out: dict[str, tuple[str, object]] = {}
    for key, value in data.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {key}", value, f"a mapping of {key}.* keys")
            items = [(f"{key}.{k}", v) for k, v in value.items()]
        else:
            items = [(str(key), value)]
        for name, v in items:
            if name not in DEFAULTS:
                known = ", ".join(k for k in DEFAULTS if k.count(".") == name.count("."))
                raise UsageError(f"{path}: unknown key {name!r}; expected one of {known}")
            if v is None:
                raise ConfigError(f"{path}: {name}", v, f"a value (the default is {DEFAULTS[name]!r})")
            out[name] = (f"{path}: {name}", v)
    return out


def load(path: str | None = None, overrides: Mapping[str, tuple[str, object]] | None = None,
         usable_cpus: set[int] | None = None) -> Config:
    """Read ``path`` (None: DEFAULT_CONFIG_PATH if it exists), lay ``overrides`` over it, validate."""
    if path is None:
        path = DEFAULT_CONFIG_PATH if os.path.exists(DEFAULT_CONFIG_PATH) else ""
    values = read_file(path) if path else {}
    values.update(overrides or {})
    usable = usable_cpus if usable_cpus is not None else os.sched_getaffinity(0)
    return build(Raw(values), path or "built-in defaults", usable)


def build(raw: Raw, source: str, usable_cpus: set[int]) -> Config:
    host_text, target_port = split_target(raw.label("target"), str(raw["target"]))
    ports = (target_port,) if target_port is not None else parse_ports(raw.label("ports"), raw["ports"])
    workers = parse_int(raw.label("workers"), raw["workers"], 1, MAX_WORKERS)
    dashboard = parse_dashboard(raw.label("dashboard"), raw["dashboard"])
    if DASHBOARD_PORT in raw:
        host = dashboard[0] if dashboard else "127.0.0.1"
        dashboard = (host, parse_port(raw.label(DASHBOARD_PORT), raw[DASHBOARD_PORT]))
    pool_text = raw["messages.pool_size"]
    pool_size = (auto_pool_size(workers) if str(pool_text).strip() == "auto"
                 else parse_pool_size(raw.label("messages.pool_size"), pool_text))
    pri_mix = raw["messages.pri_mix"]
    if isinstance(pri_mix, dict):
        pri_mix = ",".join(f"{k}={v}" for k, v in pri_mix.items())
    messages = MessageSpec(
        seed=parse_int(raw.label("messages.seed"), raw["messages.seed"], 0, MAX_SEED),
        hosts=parse_int(raw.label("messages.hosts"), raw["messages.hosts"], 1, MAX_HOSTS),
        pool_size=pool_size,
        sequence=parse_bool(raw.label("messages.sequence"), raw["messages.sequence"]),
        timezone=check_timezone(raw.label("messages.timezone"), str(raw["messages.timezone"])),
        pri_mix=parse_pri_mix(raw.label("messages.pri_mix"), str(pri_mix)),
        max_length=parse_max_length(raw.label("messages.max_length"), raw["messages.max_length"]),
    )
    return Config(
        host=resolve_host(raw.label("target"), host_text),
        ports=ports,
        rate=parse_rate(raw.label("rate"), raw["rate"]),
        workers=workers,
        cpus=parse_cpus(raw.label("cpus"), raw["cpus"], usable_cpus),
        duration=parse_duration(raw.label("duration"), raw["duration"]),
        transport=check_transport(raw.label("transport"), str(raw["transport"])),
        target_name=host_text,
        stream_id=parse_stream_id(raw.label("messages.stream_id"), str(raw["messages.stream_id"])),
        messages=messages,
        dashboard=dashboard,
        dashboard_token=parse_token(raw.label("dashboard_token"), raw["dashboard_token"]),
        dashboard_interval=parse_interval(raw.label("dashboard_interval"), raw["dashboard_interval"]),
        dashboard_origins=parse_origins(raw.label("dashboard_origins"), raw["dashboard_origins"]),
        memory_limit=parse_size(raw.label("memory_limit"), raw["memory_limit"]),
        optimize=parse_bool(raw.label("optimize"), raw["optimize"]),
        hung_timeout=parse_hung_timeout(raw.label("hung_timeout"), raw["hung_timeout"]),
        local_sink=parse_bool(raw.label("local_sink"), raw["local_sink"]),
        sink_processes=parse_int(raw.label("sink_processes"), raw["sink_processes"], 0, MAX_SINK_PROCESSES)
        or len(usable_cpus),
        source=source,
    )

