"""Validated, frozen run configuration: the only YAML reader, the rules between keys, ``load``.

The keys themselves (default, parser with bounds, flag, variable, reload class, doc) are the settings
registry's, ``loggend.settings``: ``DEFAULTS``, ``Config``'s defaults, the reload sets and the
variables' names are made from it. Every value goes through a parser that names the key or flag in
its one-line error. ``load(path, overrides, env=)`` reads the file, lays the ``LOGGEN_*`` environment
variables over it, then the command-line overrides, and validates every key into a frozen ``Config``;
nothing downstream sees a raw string or dict.

Environment: every key has a variable, ``LOGGEN_`` + the key in capitals with ``.`` as ``_``
(``rate`` -> ``LOGGEN_RATE``, ``messages.seed`` -> ``LOGGEN_MESSAGES_SEED``). Its value is read
as the file's would be (lists comma-separated) and a bad one is refused naming the variable. A
``LOGGEN_*`` variable that names no key is refused too: a typo must not be silently ignored.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import shlex
import shutil
import socket
import ssl
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from loggend import settings, yamlsafe
from loggend.content import mix
from loggend.content.scenarios import Request
from loggend.detectspec import DetectSpec, parse_detect
from loggend.engine.formats import FORMATS, MIN_LENGTHS
from loggend.engine.render import CORPUS_SIZE
from loggend.engine.replay import WRAPS, ReplaySpec, check_sendable, file_timing
from loggend.engine.schedule import Constant, Profile
from loggend.engine.spec import TIMEZONES, TRANSPORTS, MessageSpec, TlsSpec, WorkerSpec
from loggend.engine.tokens import uses
from loggend.errors import ConfigError, UsageError, shown
from loggend.files import probe, regular_or_none
from loggend.fleet import stream_prefix
from loggend.parsers import (
    LIVE_AUTO,
    MAX_INTERVAL,
    MAX_RATE,
    MAX_WORKERS,
    ascii_float,
    format_ports,
    parse_bool,
    parse_choice,
    parse_dashboard,
    parse_host_name,
    parse_hosts,
    parse_int_list,
    parse_live_interval,
    parse_port,
    parse_rate,
    plural,
    resolve_host,
    split_target,
)
from loggend.profiles import format_profile, parse_profile
from loggend.settings import (
    ENV_PREFIX,
    MAX_SINK_PROCESSES,
    POOL_SIZES,
    STREAM_ID_RE,
    env_name,
    parse_max_length,
    parse_pool_size,
    parse_pri_mix,
)
from loggend.sink.sinkspec import ServerTls
from loggend.templates import load_templates

# Bounds and parsers of keys that other modules import from here (they live in parsers and settings).
__all__ = ["ENV_PREFIX", "LIVE_AUTO", "MAX_INTERVAL", "MAX_SINK_PROCESSES", "MAX_WORKERS", "POOL_SIZES", "STREAM_ID_RE",
           "env_name", "parse_dashboard", "parse_hosts", "parse_live_interval", "parse_max_length", "parse_pool_size",
           "parse_pri_mix"]
DEFAULT_CONFIG_PATH = "/etc/loggen.yaml"
DEFAULT_MAX_LENGTH = 1024         # max_length auto: RFC 3164's limit (a mix of sources: mix.MAX_LENGTH)
MAX_REPLAY_SPEED = 1e6


def parse_cpus(key: str, value: object, usable: set[int]) -> tuple[int, ...]:
    """``auto`` = every CPU this process may run on; else a list or ranges of them."""
    if str(value).strip() == "auto":
        return tuple(sorted(usable))
    allowed = "auto, or CPUs this process may use: " + ",".join(str(c) for c in sorted(usable))
    cpus = parse_int_list(key, value, allowed, 0, 4095)
    if not set(cpus) <= usable:
        raise ConfigError(key, value, allowed)
    return tuple(dict.fromkeys(cpus))


def rate_or_profile(raw: Raw) -> tuple[float, Profile | None]:
    """``rate`` and ``profile`` are two ways to say one thing: given in the same place (both in the file,
    or both as flags), that is an error; a flag wins over a LOGGEN_* variable, and both over the file."""
    rate = parse_rate(raw.label("rate"), raw["rate"])
    profile = parse_profile(raw.label("profile"), raw["profile"])
    if profile is None or "rate" not in raw:
        return rate, profile
    rate_layer, profile_layer = (layer(raw.label(k)) for k in ("rate", "profile"))
    if rate_layer == profile_layer:
        raise UsageError(f"{raw.label('rate')} and {raw.label('profile')}: give one of them "
                         "(a profile is the rate over time)")
    return (rate, None) if rate_layer > profile_layer else (0.0, profile)


def check_max_rate(raw: Raw, rate: float, profile: Profile | None,
                   timing: tuple[tuple[float, float], ...] = ()) -> None:
    """A rate, profile or replay timing above ``max_rate`` is refused at the start as it is live."""
    top = raw.parsed("max_rate")
    peak = (max(r for r, _ in timing) if timing else profile.peak if profile is not None
            else math.inf if rate == 0 else rate)
    if top and peak > top:
        what = "an unlimited rate (0)" if math.isinf(peak) else f"{peak:,.0f} ev/s" + (" at its peak" if timing else "")
        where = raw.label("replay" if timing else "profile" if profile is not None else "rate")
        bound = raw.label("max_rate")
        place = where.rpartition(": ")[0]
        if place and bound.startswith(place + ": "):          # both in one file: its path once
            bound = bound[len(place) + 2:]
        raise UsageError(f"{where}: {what} is above {bound} {top:,.0f} ev/s; lower it, or raise max_rate")


def parse_mix(raw: Raw) -> tuple[tuple[tuple[str, float], ...], float]:
    """``sources`` or ``estate`` (one of them): the mix's shares, and the estate's events/s (0: none)."""
    if mix.given(raw["sources"]) and mix.given(raw["estate"]):
        first, second = raw.label("sources"), raw.label("estate")
        place = first.rpartition(": ")[0]
        if place and second.startswith(place + ": "):          # both in one file: its path once
            second = second[len(place) + 2:]
        raise UsageError(f"{first} and {second}: give one of them (an estate is turned into the shares of a mix)")
    if mix.given(raw["estate"]):
        return mix.parse_estate(raw.label("estate"), raw["estate"])
    return mix.parse_sources(raw.label("sources"), raw["sources"]), 0.0


def check_estate_rate(label: str, rate: float) -> float:
    """The estate's events/s as the run's rate: within the bounds a rate has, and at least one a second
    (below it, a rate would read 0, which is unlimited)."""
    if rate > MAX_RATE:
        raise UsageError(f"{label}: these devices make {rate:,.0f} ev/s, above the {MAX_RATE:.0e} a run can be "
                         "asked for; give fewer devices, or a rate (the estate then gives the shares only)")
    if rate < 1:
        raise UsageError(f"{label}: these devices make {rate:.2g} ev/s, less than one a second; give more devices, "
                         "or a rate (the estate then gives the shares only)")
    return rate


def layer(label: str) -> int:
    """Where a value came from, by its label: 2 a flag, 1 a ``LOGGEN_*`` variable, 0 the file."""
    return 2 if label.startswith("-") else 1 if label.startswith(ENV_PREFIX) else 0


def default_processes(protocol: str, workers: int, cpus: tuple[int, ...]) -> int:
    """``worker_processes: 0``: over UDP one process per CPU (a send never blocks for long); over
    TCP and TLS one per worker, because a receiver that pushes back (each send waits up to 0.1 s)
    would hold up every other worker of its process."""
    return len(cpus) if protocol == "udp" and cpus else workers


def auto_pool_size(workers: int) -> int:
    """The largest power of ten <= CORPUS_SIZE / workers, at least the second smallest pool."""
    size = POOL_SIZES[-1]
    while size > POOL_SIZES[1] and size * workers > CORPUS_SIZE:
        size //= 10
    return size


# What a reload may change, by who applies it (see Supervisor.reload): made from the settings registry.
IN_PLACE = settings.fields_that(settings.IN_PLACE)            # no process restarts
FIXED = settings.fields_that(settings.FIXED)                  # a fleet's split: a reload that changes it is refused
NEXT_START = settings.fields_that(settings.NEXT_START)        # a reload leaves these for the next start
WEB_FIELDS = settings.fields_that(settings.WEB)
OUTPUT_FIELDS = settings.fields_that(settings.OUTPUT)         # the supervisor's own output: nothing restarts
SINK_FIELDS = settings.fields_that(settings.SINKS)
HAND_OVER_FIELDS = settings.fields_that(settings.HAND_OVER)   # new workers take over from the old ones


def default(key: str) -> Any:
    """A ``Config`` field's default: the registry's default of its key, as its parser reads it."""
    return field(default=settings.default_value(key))        # every parser returns an immutable value


@dataclass(frozen=True)
class Config:
    """What ``build`` makes of the keys of the registry (``loggend.settings``); the defaults are the
    registry's. Fields resolved against the machine or other keys (worker_processes, sink_processes,
    cpus, sink_cpus: ``auto`` or 0 in the file) default to one process each and no pinning."""

    host: str                                       # resolved numeric address
    ports: tuple[int, ...] = default("ports")       # worker i sends to ports[i % len(ports)]
    rate: float = default("rate")                   # events/s of the whole fleet, split over instances; 0 = unlimited
    workers: int = default("workers")
    worker_processes: int = 1                       # processes serving the workers (0 in the file = one per CPU)
    cpus: tuple[int, ...] = ()                      # worker i pins to cpus[i % len(cpus)]; () = no pinning
    duration: float = default("duration")           # seconds; 0 = until stopped
    max_rate: float = default("max_rate")           # the highest rate it may be set to (0: no bound)
    transport: str = default("transport")           # the UDP send method
    protocol: str = default("protocol")             # udp | tcp | tls
    framing: str = default("framing")               # tcp and tls: octet-counting (RFC 6587, required for TLS) or lf
    tls: TlsSpec = field(default_factory=TlsSpec)
    sink_tls_cert: str = ""                         # the local sink's server certificate and key (tls)
    sink_tls_key: str = ""
    target_name: str = ""                           # as the user wrote it, for messages
    stream_id: str = default("messages.stream_id")  # stream prefix: worker i's messages carry stream=<prefix><i>
    messages: MessageSpec = field(default_factory=MessageSpec)
    dashboard: tuple[str, int] | None = default("dashboard")      # None = no web process
    dashboard_token: str = default("dashboard_token")             # bearer token every web endpoint wants; "" = open
    dashboard_interval: float = default("dashboard_interval")     # seconds between samples / WebSocket frames
    dashboard_origins: tuple[str, ...] = default("dashboard_origins")   # extra Origins allowed to open /ws
    dashboard_hosts: tuple[str, ...] = default("dashboard_hosts")  # Host names answered besides its addresses
    memory_limit: int = default("memory_limit")     # bytes over supervisor + workers; 0 = no limit
    optimize: bool = default("optimize")            # apply kernel network tuning when allowed
    hung_timeout: float = default("hung_timeout")   # a worker whose heartbeat is this old is killed and restarted
    local_sink: bool = default("local_sink")        # run sink processes on the target ports under the supervisor
    sink_processes: int = 1                         # how many (0 in the file = one per CPU)
    sink_cpus: tuple[int, ...] = ()                 # the local sink's CPUs; () = the workers' (cpus)
    sink_share_ports: bool = default("sink_share_ports")   # another socket receiving on the ports: warn or refuse
    quiet: bool = default("quiet")                  # no live line on stdout (STATUS= and the summary stay)
    live_interval: float = default("live_interval")  # seconds between live lines; LIVE_AUTO = by the kind of stdout
    instance: int = settings.default_value("instance")[0]   # instance `instance` of `instances` (a fleet)
    instances: int = settings.default_value("instance")[1]
    run_id: str = default("run_id")                 # the fleet's Prometheus label; "" = a random one per run
    profile_spec: Profile | None = default("profile")   # the rate over time (None: the constant ``rate``)
    control_socket: str = default("control_socket")  # the live-control socket: auto, off or a path
    scenarios: tuple[Request, ...] = default("scenarios")   # attack scenarios injected on top of the background
    inject: bool = default("inject")                # the injector runs (for `loggend ctl inject`) without scenarios
    truth: str = default("truth")                   # the ground truth's file ("" = none)
    detect: tuple[DetectSpec, ...] = ()             # how detections are learnt (with detect_query)
    detect_timeout: float = default("detect_timeout")   # seconds after its first event an instance is missed
    source: str = "built-in defaults"   # where it was read from, for messages
    replay_timing: tuple[tuple[float, float], ...] = ()   # replay_speed: (rate, seconds) from the file's times

    @property
    def target(self) -> str:
        return f"{self.target_name or self.host}:{format_ports(self.ports)}"

    @property
    def instance_rate(self) -> float:
        """This instance's share of ``rate`` (events/s; 0 = unlimited)."""
        return self.rate / self.instances

    def profile(self) -> Profile:
        """The run's rate over time: a replay's own timing, the ``profile``, or a constant ``rate``
        (0 = unlimited)."""
        if self.replay_timing:
            return Profile((*(Constant(rate, seconds) for rate, seconds in self.replay_timing), Constant(0.0)))
        return self.profile_spec or Profile.constant(self.rate)

    @property
    def rate_text(self) -> str:
        if self.replay_timing and self.messages.replay is not None:
            peak = max(r for r, _ in self.replay_timing)
            return f"the file's own timing x{self.messages.replay.speed:g} (peak {peak:,.0f} ev/s)"
        if self.profile_spec is not None:
            return f"profile {format_profile(self.profile_spec)}"
        return f"{self.rate:,.0f} ev/s" if self.rate else "unlimited rate"

    def worker_spec(self, index: int = 0, takes_over: int = 0) -> WorkerSpec:
        return WorkerSpec(
            host=self.host, port=self.ports[index % len(self.ports)], target_name=self.target_name, index=index,
            cpu=self.cpus[index % len(self.cpus)] if self.cpus else None, takes_over=takes_over,
            transport=self.transport, protocol=self.protocol, tls=self.tls,
            stream_id=stream_prefix(self.instance, self.instances) + self.stream_id,
            messages=self.messages,
        )

    def changes(self, new: Config) -> frozenset[str]:
        """The names of the fields a reload to ``new`` changes (``source`` aside)."""
        return frozenset(f.name for f in fields(self)
                         if f.name != "source" and getattr(self, f.name) != getattr(new, f.name))

    def left_out(self, name: str) -> str:
        """`` (max_length 300 leaves out 62% of its messages)`` when it leaves out some of a source's."""
        m = self.messages
        out, _ = mix.fit_share(name, m.form, m.max_length, m.sequence, m.seed)
        return f" (max_length {m.max_length:,} leaves out the {100 * out:.0f}% of its messages longer than " \
            "that; its share is made of the others)" if out else ""

    def describe(self) -> str:
        rate = self.rate_text
        duration = f"{self.duration:g} s" if self.duration else "until stopped"
        cpus = ",".join(str(c) for c in self.cpus) or "any"
        web = "off" if self.dashboard is None else f"{self.dashboard[0]}:{self.dashboard[1]}"
        sink = f", local sink x{self.sink_processes}" if self.local_sink else ""
        how = (f"transport {self.transport}" if self.protocol == "udp" else
               f"{self.protocol} ({self.framing})")
        m = self.messages
        what = f"replay {m.replay.path}" if m.replay else f"format {m.format}"
        if m.sources:
            whole = sum(w for _, w in m.sources) + sum(t.weight for t in m.templates)
            what = "sources " + ", ".join(f"{n} {100 * w / whole:.1f}%{self.left_out(n)}" for n, w in m.sources) + \
                (f" in their {m.form} form" if m.form else "")
        if m.templates and m.sources:
            what += f", {plural(len(m.templates), 'template')} {100 * sum(t.weight for t in m.templates) / whole:.1f}%"
        elif m.templates:
            what += f", {plural(len(m.templates), 'template')}" + (" + the catalogue" if m.catalogue else " only")
        share = f"{self.instance_rate:,.0f} ev/s of the fleet's {rate}" if self.rate else "unlimited"
        fleet = f", instance {self.instance}/{self.instances} ({share})" if self.instances > 1 else ""
        procs = f" in {plural(self.worker_processes, 'process', 'processes')}" \
            if self.worker_processes < self.workers else ""
        return (f"{plural(self.workers, 'worker')}{procs} -> {self.target}, {rate}, {duration}, {how}, "
                f"{what}, cpus {cpus}, pool {m.pool_size:,}/worker, dashboard {web}{sink}{fleet}")


def parse_file(key: str, value: object) -> str:
    """A readable regular file, as an absolute path ("" stays "": none)."""
    path = str(value or "").strip()
    if not path:
        return ""
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ConfigError(key, path, "a readable file (" + ("no such file" if not os.path.exists(path)
                                                           else "not a readable regular file") + ")")
    return os.path.abspath(path)


def parse_tls(raw: Raw) -> TlsSpec:
    """The TLS client settings, with their files checked the way the handshake will use them."""
    tls = TlsSpec(ca=parse_file(raw.label("tls_ca"), raw["tls_ca"]),
                  cert=parse_file(raw.label("tls_cert"), raw["tls_cert"]),
                  key=parse_file(raw.label("tls_key"), raw["tls_key"]),
                  verify=parse_bool(raw.label("tls_verify"), raw["tls_verify"]),
                  server_name=parse_host_name(raw.label("tls_server_name"), raw["tls_server_name"]))
    if tls.key and not tls.cert:
        raise ConfigError(raw.label("tls_key"), tls.key, "a key together with tls_cert (mutual TLS)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if tls.ca:
        _load_ca(ctx, raw.label("tls_ca"), tls.ca)
    if tls.cert:
        _load_chain(ctx, raw.label("tls_key" if tls.key else "tls_cert"), tls.cert, tls.key)
    return tls


def _load_ca(ctx: ssl.SSLContext, label: str, path: str) -> None:
    try:
        ctx.load_verify_locations(cafile=path)
    except ssl.SSLError as err:
        raise ConfigError(label, path, f"PEM CA certificates ({err.reason or err})") from None


def _load_chain(ctx: ssl.SSLContext, label: str, cert: str, key: str) -> None:
    try:
        ctx.load_cert_chain(cert, key or None)
    except ssl.SSLError as err:
        what = "a key that matches the certificate" if "MISMATCH" in str(err).upper() else \
            "a PEM certificate and its PEM private key"
        raise ConfigError(label, key or cert, f"{what} ({err.reason or err})") from None


def parse_server_tls(cert: tuple[str, object], key: tuple[str, object],
                     ca: tuple[str, object] = ("", "")) -> ServerTls | None:
    """A TLS server's certificate and key (and the CA its clients must be signed by), checked by
    loading them; None when no certificate is given. Each argument is (its key or flag, value)."""
    cert_path, key_path = parse_file(cert[0], cert[1]), parse_file(key[0], key[1])
    ca_path = parse_file(ca[0], ca[1]) if ca[0] else ""
    if not cert_path:
        if key_path or ca_path:
            raise ConfigError(cert[0], "", "a certificate together with the key and CA")
        return None
    if not key_path:
        raise ConfigError(key[0], "", "the certificate's private key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_chain(ctx, key[0], cert_path, key_path)
    if ca_path:
        _load_ca(ctx, ca[0], ca_path)
    return ServerTls(cert_path, key_path, ca_path)


def parse_replay(raw: Raw, path: str, workers: int, instance: int = 0,
                 instances: int = 1) -> tuple[ReplaySpec | None, tuple[tuple[float, float], ...]]:
    """The replay file (checked readable, and read once for its timing when ``replay_speed`` is set);
    in a fleet, instance I's workers take their lines of the whole fleet's share."""
    speed_text = str(raw["replay_speed"]).strip().lower().removesuffix("x")
    try:
        speed = ascii_float(speed_text)
    except ValueError:
        speed = -1.0
    if not 0 <= speed <= MAX_REPLAY_SPEED or speed != speed:
        raise ConfigError(raw.label("replay_speed"), raw["replay_speed"],
                          f"0 (a fixed rate) or how many times faster than the file's own timing, up to "
                          f"{MAX_REPLAY_SPEED:g} (10 or 10x)")
    file = parse_file(raw.label("replay"), _relative_to(raw, "replay", path))
    if not file:
        if speed:
            raise ConfigError(raw.label("replay_speed"), raw["replay_speed"], "0 without a replay file")
        if parse_choice(raw.label("replay_wrap"), str(raw["replay_wrap"]), ("auto", *WRAPS)) != "auto":
            raise ConfigError(raw.label("replay_wrap"), raw["replay_wrap"], "auto without a replay file (it is the "
                              "header of a replayed file's lines; a source is sent in its own wire form)")
        return None, ()
    try:
        with open(file, "rb") as f:
            f.read(1)
        timing = tuple(file_timing(file, speed)) if speed else ()
        check_sendable(file)
    except (OSError, EOFError, ValueError, zlib.error) as err:
        raise ConfigError(raw.label("replay"), file, f"a log file, plain or gzip ({err})") from None
    for key in ("rate", "profile"):
        if speed and key in raw:
            raise ConfigError(raw.label(key), raw[key], "not set with replay_speed (the file's own timing "
                              "sets the rate)")
    wrap = parse_wrap(raw)
    return ReplaySpec(file, workers * instances, speed, first=instance * workers, wrap=wrap,
                      host=socket.gethostname().split(".")[0] or "localhost", tag=file_tag(file)), timing


def parse_wrap(raw: Raw) -> str:
    """The header of replayed lines that are not syslog: ``replay_wrap``, or by default the ``format``'s
    (rfc3164 unless rfc5424 is asked for). A format a replay cannot honour is refused, not ignored."""
    wrap = parse_choice(raw.label("replay_wrap"), str(raw["replay_wrap"]), ("auto", *WRAPS))
    fmt = str(raw["format"])
    if "format" in raw and fmt not in ("rfc3164", "rfc5424"):
        raise ConfigError(raw.label("format"), fmt, "rfc3164 or rfc5424 with replay (the file's lines are sent as "
                          "they are; the format is the header of lines without one)")
    if wrap == "auto":
        return fmt if "format" in raw else "rfc3164"
    if "format" in raw and wrap != "none" and wrap != fmt:
        raise ConfigError(raw.label("replay_wrap"), wrap, f"the same as {raw.label('format')} ({fmt}), or none")
    return wrap


def file_tag(path: str) -> str:
    """A replayed file's TAG: its name without extensions, in RFC 3164's TAG characters."""
    stem = os.path.basename(path).split(".")[0]
    return re.sub(r"[^A-Za-z0-9_-]", "-", stem)[:32] or "replay"


def _relative_to(raw: Raw, key: str, path: str) -> object:
    """A file named in the config file is relative to the config file's folder."""
    value = raw[key]
    if isinstance(value, str) and value and path and not os.path.isabs(value) and \
            raw.label(key).startswith(f"{path}: "):
        return os.path.join(os.path.dirname(os.path.abspath(path)), value)
    return value


def check_transport(key: str, text: str) -> str:
    return parse_choice(key, text, TRANSPORTS)


def check_timezone(key: str, text: str) -> str:
    return parse_choice(key, text, TIMEZONES)


# --- the file and its keys --------------------------------------------------------------------------

# Every key with its default, as written in config/loggen.yaml. "messages" keys are nested there.
DEFAULTS: dict[str, object] = {s.key: s.default for s in settings.SETTINGS}
SECTIONS = settings.SECTIONS
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

    def parsed(self, key: str) -> Any:
        """The key's value checked by its parser of the registry (the error names the file's key, the
        variable or the flag it came from)."""
        parse = settings.BY_KEY[key].parse
        assert parse is not None, key
        return parse(self.label(key), self[key])


def read_file(path: str) -> dict[str, tuple[str, object]]:
    """The file's keys, flattened (``messages.seed``) and labelled ``PATH: KEY``; errors are one line.
    A regular file only, of at most ``MAX_CONFIG_BYTES``, whose aliases expand to a bounded size."""
    try:
        text = yamlsafe.read_text(path, path)
    except UsageError as err:
        if str(err) == f"{path}: no such file":
            raise UsageError(f"{path}: no such config file") from None
        raise
    data = yamlsafe.load(text, path)
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
                near = [k for k in DEFAULTS if k.count(".") == name.count(".")]
                if "." not in name:
                    near += sorted(SECTIONS)                   # messages: the section's keys
                close = difflib.get_close_matches(name, near, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise UsageError(f"{path}: unknown key {shown(name)}{hint}; expected one of {', '.join(near)}")
            if v is None:
                raise ConfigError(f"{path}: {name}", v, f"a value (the default is {DEFAULTS[name]!r})")
            out[name] = (f"{path}: {name}", v)
    return out


ENV_KEYS = {env_name(key): key for key in DEFAULTS}


# Keys whose file value may be a list or a mapping: a flag or variable may write it the same way, in
# YAML's flow form (--ports '[514, 600-610]', LOGGEN_ESTATE='{cisco-asa: 4, linux: 300}').
STRUCTURED = frozenset({s.key for s in settings.SETTINGS if isinstance(s.default, (list, dict))} |
                       {"ports", "cpus", "sink_cpus", "sources", "estate", "messages.pri_mix"})


def as_written(key: str, label: str, value: object) -> object:
    """A flag's or variable's text as the file's value would be: ``[...]`` and ``{...}`` of a key that
    takes a list or a mapping are read as YAML; anything else is left as it is."""
    if key in STRUCTURED and isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        return yamlsafe.load(value, label)
    return value


def read_env(env: Mapping[str, str]) -> dict[str, tuple[str, object]]:
    """The ``LOGGEN_*`` variables as keys labelled with the variable's name; an unknown one is refused."""
    out: dict[str, tuple[str, object]] = {}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX):
            continue
        if name not in ENV_KEYS:
            close = difflib.get_close_matches(name, list(ENV_KEYS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(f"{name}: no such setting{hint}; LOGGEN_* variables are the config keys in capitals "
                             f"(LOGGEN_RATE, LOGGEN_MESSAGES_SEED...), {len(ENV_KEYS)} of them: loggend(1) and the "
                             "manual's configuration page list each")
        out[ENV_KEYS[name]] = (name, as_written(ENV_KEYS[name], name, env[name]))
    return out


def load(path: str | None = None, overrides: Mapping[str, tuple[str, object]] | None = None,
         usable_cpus: set[int] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (None: DEFAULT_CONFIG_PATH if it exists), lay the ``LOGGEN_*`` variables of ``env``
    (default: this process's) over it, then ``overrides`` (the flags), and validate."""
    if path is None:
        path = DEFAULT_CONFIG_PATH if os.path.exists(DEFAULT_CONFIG_PATH) else ""
    values = read_file(path) if path else {}
    from_env = read_env(os.environ if env is None else env)
    values.update(from_env)
    values.update(overrides or {})
    usable = usable_cpus if usable_cpus is not None else os.sched_getaffinity(0)
    source = path or "built-in defaults"
    if from_env:
        source += " + " + ", ".join(label for label, _ in from_env.values())
    return build(Raw(values), source, usable, path)


def build(raw: Raw, source: str, usable_cpus: set[int], path: str = "") -> Config:
    """Every key checked by its parser of the registry, then the rules between keys."""
    host_text, target_port = split_target(raw.label("target"), str(raw["target"]))
    ports = (target_port,) if target_port is not None else raw.parsed("ports")
    workers = raw.parsed("workers")
    cpus = parse_cpus(raw.label("cpus"), raw["cpus"], usable_cpus)
    dashboard = raw.parsed("dashboard")
    if DASHBOARD_PORT in raw:
        host = dashboard[0] if dashboard else "127.0.0.1"
        dashboard = (host, parse_port(raw.label(DASHBOARD_PORT), raw[DASHBOARD_PORT]))
    protocol, framing = raw.parsed("protocol"), raw.parsed("framing")
    if protocol == "tls" and framing != "octet-counting" and "framing" in raw:
        raise ConfigError(raw.label("framing"), framing, "octet-counting with tls (RFC 5425 requires it)")
    # a flag or variable for the other protocol is a mistake; a file may hold both for a reload that switches
    for key, wants in (("transport", "udp"), ("framing", "tcp or tls")):
        if protocol not in wants.split(" or ") and key in raw and layer(raw.label(key)) > 0:
            raise UsageError(f"{raw.label(key)}: only with --protocol {wants} (this run's protocol is {protocol})")
    instance, instances = raw.parsed("instance")
    if instances > 1 and dashboard and dashboard[1] and "dashboard" not in raw and DASHBOARD_PORT not in raw:
        dashboard = (dashboard[0], dashboard[1] + instance)     # the default port, plus the index: one box, no clash
    messages, timing, estate_rate = build_messages(raw, path, protocol, framing, workers, (instance, instances))
    tls = parse_tls(raw)
    sink_tls = parse_server_tls((raw.label("sink_tls_cert"), raw["sink_tls_cert"]),
                                (raw.label("sink_tls_key"), raw["sink_tls_key"]))
    rate, profile = rate_or_profile(raw)
    if estate_rate and "rate" not in raw and profile is None:
        rate = check_estate_rate(raw.label("estate"), estate_rate)   # the estate's own events/s: no rate given
    check_max_rate(raw, rate, profile, timing)
    direct = {s.fields[0]: raw.parsed(s.key) for s in settings.SETTINGS if s.direct}
    injects = bool(direct["scenarios"] or direct["inject"])
    if injects and protocol == "tls":
        key = "scenarios" if direct["scenarios"] else "inject"
        raise UsageError(f"{raw.label(key)}: not with protocol tls: the scenarios' injector sends over udp or tcp "
                         "(a tls run would send none)")
    detect = build_detect(raw, injects)
    return Config(
        host=resolve_host(raw.label("target"), host_text),
        ports=ports,
        rate=rate,
        workers=workers,
        worker_processes=min(workers, raw.parsed("worker_processes") or default_processes(protocol, workers, cpus)),
        cpus=cpus,
        duration=raw.parsed("duration") or sum(s for _, s in timing),
        protocol=protocol,
        framing=framing,
        tls=tls if protocol == "tls" else TlsSpec(),    # checked whatever the protocol: a reload to tls finds them good
        sink_tls_cert=sink_tls.cert if sink_tls else "",
        sink_tls_key=sink_tls.key if sink_tls else "",
        target_name=host_text,
        messages=messages,
        dashboard=dashboard,
        sink_processes=raw.parsed("sink_processes") or len(usable_cpus),
        sink_cpus=() if str(raw["sink_cpus"]).strip() == "auto" else parse_cpus(raw.label("sink_cpus"),
                                                                                raw["sink_cpus"], usable_cpus),
        instance=instance,
        instances=instances,
        profile_spec=profile,
        source=source,
        replay_timing=timing,
        detect=detect,
        **direct,
    )


def not_runnable(program: str) -> str:
    """Why ``program`` (a detect command's first word) cannot be started: "" when it can."""
    if "/" not in program:
        return "" if shutil.which(program) else f"{program}: not found on PATH"
    if not os.path.isfile(program):
        return f"{program}: no such file"
    return "" if os.access(program, os.X_OK) else f"{program}: not executable"


def build_detect(raw: Raw, injects: bool) -> tuple[DetectSpec, ...]:
    """``detect`` with ``detect_query``, and the rules between them and the scenarios: ``truth`` and
    ``detect`` only when something is injected, ``detect_query`` only with ``detect: prometheus:URL``."""
    query = str(raw["detect_query"])
    detect = tuple(parse_detect(raw.label("detect"), text, query) for text in raw.parsed("detect"))
    for key in ("truth", "detect"):
        if raw[key] and not injects:
            raise UsageError(f"{raw.label(key)}: only with scenarios (--scenario) or inject (--inject): "
                             + ("it records what they inject" if key == "truth" else "they are what it detects"))
    for spec, text in zip(detect, raw.parsed("detect"), strict=True):
        if spec.kind == "command" and (why := not_runnable(shlex.split(spec.target)[0])):
            raise ConfigError(raw.label("detect"), text, f"a command that can be run ({why})")
    if query.strip() and not any(d.kind == "prometheus" for d in detect):
        raise UsageError(f"{raw.label('detect_query')}: only with detect prometheus:URL")
    if raw["truth"]:
        check_truth_path(raw.label("truth"), str(raw["truth"]))
    return detect


def check_truth_path(label: str, path: str) -> None:
    """The truth file is replaced at the start: only a new path, an empty file or an earlier truth file
    (its first line a JSON record with a scenario and an instance); never through a link."""
    st = regular_or_none(path, label)
    probe(path, label)                         # a missing or read-only directory: one line now, not a traceback later
    if st is None or not st.st_size:
        return
    try:
        with open(path, "rb") as f:
            first = json.loads(f.readline(1 << 16))
        ours = isinstance(first, dict) and "scenario" in first and "instance" in first
    except (OSError, ValueError, RecursionError):
        ours = False
    if not ours:
        raise UsageError(f"{label}: {path} exists and is not a truth file of loggen's; loggen would replace it: "
                         "remove it or choose another path")


def build_messages(raw: Raw, path: str, protocol: str, framing: str, workers: int,
                   fleet: tuple[int, int]) -> tuple[MessageSpec, tuple[tuple[float, float], ...], float]:
    """What the workers send (the ``messages.*`` keys, the format, templates, catalogue, mix and replay), the
    replay's timing and the estate's events/s (0: none)."""
    pool_text = raw["messages.pool_size"]
    pool_size = (auto_pool_size(workers) if str(pool_text).strip() == "auto"
                 else parse_pool_size(raw.label("messages.pool_size"), pool_text))
    sources, estate_rate = parse_mix(raw)
    fmt = "rfc3164" if sources else parse_choice(raw.label("format"), str(raw["format"]), FORMATS)
    form = mix.check_form(raw.label("format"), raw["format"], sources) \
        if sources and str(raw["format"]) not in (mix.NATIVE, DEFAULTS["format"]) else ""
    max_length = (mix.MAX_LENGTH if sources else DEFAULT_MAX_LENGTH) if str(raw["messages.max_length"]) == "auto" \
        else parse_max_length(raw.label("messages.max_length"), raw["messages.max_length"])
    if max_length < MIN_LENGTHS[fmt]:
        raise ConfigError(raw.label("messages.max_length"), raw["messages.max_length"],
                          f"at least {MIN_LENGTHS[fmt]} bytes for the {fmt} format")
    seed, sequence = raw.parsed("messages.seed"), raw.parsed("messages.sequence")
    mix.check_lengths(raw.label("messages.max_length"), raw["messages.max_length"], sources, form, max_length,
                      sequence, seed)
    templates = load_templates(raw.label("templates"), _relative_to(raw, "templates", path), path, seed)
    catalogue = raw.parsed("catalogue")
    replay, timing = parse_replay(raw, path, workers, *fleet)
    # the shipped config writes catalogue: true; a flag, a variable or catalogue: false says something
    asked = "catalogue" in raw and (layer(raw.label("catalogue")) > 0 or not catalogue)
    if sources and (replay or asked):
        key = "replay" if replay else "catalogue"
        mixed = raw.label('sources' if 'sources' in raw else 'estate')
        why = ("a replay sends the file's lines, a mix generates its sources' messages: one or the other"
               if replay else "a mix of sources replaces the catalogue (the linux source is the catalogue; "
               "add linux to the mix to send it)")
        raise UsageError(f"{raw.label(key)}: cannot be given with {mixed}: {why}")
    if replay and (templates or "catalogue" in raw):
        raise ConfigError(raw.label("replay"), raw["replay"], "a file without templates or catalogue (a replay "
                          "sends the file's lines, not generated messages)")
    if not catalogue and not templates and not replay:
        raise ConfigError(raw.label("catalogue"), raw["catalogue"], "on unless templates are given (nothing to send)")
    if not sequence and any(uses(t.message, "seq") for t in templates):
        raise ConfigError(raw.label("messages.sequence"), raw["messages.sequence"],
                          "true while a template uses {seq} (it carries the sequence number)")
    return MessageSpec(
        format=fmt,
        framing=framing if protocol != "udp" else "",
        enterprise=raw.parsed("messages.sd_enterprise"),
        seed=seed,
        hosts=raw.parsed("messages.hosts"),
        pool_size=pool_size,
        sequence=sequence,
        timezone=raw.parsed("messages.timezone"),
        pri_mix=raw.parsed("messages.pri_mix"),
        max_length=max_length,
        templates=templates,
        catalogue=catalogue,
        replay=replay,
        sources=sources,
        form=form,
    ), timing, estate_rate
