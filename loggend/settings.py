"""Every config key once: its name, flag(s), ``LOGGEN_*`` variable, parser with bounds, default, reload
class, a one-line help and the longer doc.

The command line (``loggend run``'s flags), the environment, the YAML reader, the reload table of the
supervisor, ``config/loggen.yaml``, ``docs/configuration.md``, the man page and the shell completion are
all made from ``SETTINGS`` (``loggend.tools.reference`` writes the generated files; tests hold the
committed ones equal). A key is added here, and only here.

Environment: every key has a variable, ``LOGGEN_`` + the key in capitals with ``.`` as ``_``
(``rate`` -> ``LOGGEN_RATE``, ``messages.seed`` -> ``LOGGEN_MESSAGES_SEED``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from loggend.content.scenarios import Request, parse_all
from loggend.detectspec import MAX_TIMEOUT, MIN_TIMEOUT, parse_detect
from loggend.engine import catalog
from loggend.engine.formats import DEFAULT_ENTERPRISE, FORMATS
from loggend.engine.render import UDP_MAX_PAYLOAD
from loggend.engine.replay import WRAPS
from loggend.engine.spec import PROTOCOLS, STREAM_FRAMINGS, TIMEZONES, TRANSPORTS
from loggend.errors import ConfigError
from loggend.fleet import parse_instance, parse_run_id
from loggend.parsers import (
    MAX_HUNG_TIMEOUT,
    MAX_INTERVAL,
    MAX_LIVE,
    MAX_WORKERS,
    MIN_HUNG_TIMEOUT,
    MIN_INTERVAL,
    MIN_LIVE,
    SOCKET_PATH_BYTES,
    ascii_float,
    parse_bool,
    parse_choice,
    parse_control_socket,
    parse_dashboard,
    parse_duration,
    parse_hosts,
    parse_hung_timeout,
    parse_int,
    parse_interval,
    parse_live_interval,
    parse_origins,
    parse_ports,
    parse_processes,
    parse_rate,
    parse_run_duration,
    parse_size,
    parse_token,
)
from loggend.profiles import parse_profile

ENV_PREFIX = "LOGGEN_"
MAX_SINK_PROCESSES = 256          # sink processes of a run or of `loggend sink`
MAX_PRI_WEIGHT = 1e9
MIN_MESSAGE_LENGTH = 160          # room for the longest header and the sequence suffix
MAX_HOSTS = 1_000_000
MAX_SEED = 2**63 - 1
MAX_ENTERPRISE = 2**32 - 1        # an IANA private enterprise number
POOL_SIZES = (1_000, 10_000, 100_000, 1_000_000)
STREAM_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,12}")   # + "i999." + the worker index: well within STREAM_ROOM

# What a reload that changes a key does (Supervisor.reload); a key may have two (restart the sinks
# and hand the workers over).
IN_PLACE = "in place"             # the running workers take it up: no process restarts
OUTPUT = "in place (the supervisor's output)"   # the live line: nothing restarts
WEB = "restarts the web process"
SINKS = "restarts the local sink"
HAND_OVER = "hands over to new workers"   # new workers take over from the old ones without a silent moment
NEXT_START = "at the next start"  # a reload leaves it as it is
FIXED = "refused"                 # a reload that changes it is refused (a fleet's split)
RELOAD_CLASSES = (IN_PLACE, OUTPUT, WEB, SINKS, HAND_OVER, NEXT_START, FIXED)


def parse_pri_mix(key: str, text: object) -> tuple[tuple[int, float], ...]:
    """``auth.info=3,local7.notice=1`` (or a mapping of the same) -> ((38, 3.0), (189, 1.0)); empty = each
    template's own."""
    if isinstance(text, dict):
        text = ",".join(f"{k}={v}" for k, v in text.items())
    mix = []
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        name, _, weight = part.partition("=")
        fac, _, sev = name.partition(".")
        if fac not in catalog.FACILITIES or sev not in catalog.SEVERITIES:
            raise ConfigError(key, part, "FACILITY.SEVERITY=WEIGHT, e.g. auth.info=3,local7.err=1")
        try:
            w = ascii_float(weight or 1)
        except ValueError:
            w = -1.0
        if not 0 < w <= MAX_PRI_WEIGHT:
            raise ConfigError(key, part, f"a positive weight up to {MAX_PRI_WEIGHT:g} after '='")
        mix.append((catalog.FACILITIES[fac] * 8 + catalog.SEVERITIES[sev], w))
    return tuple(mix)


def parse_stream_id(key: str, text: object) -> str:
    if not STREAM_ID_RE.fullmatch(str(text)):
        raise ConfigError(key, text, "a stream prefix of 1 to 12 letters, digits or -_.")
    return str(text)


def parse_max_length(key: str, text: object) -> int:
    return parse_int(key, text, MIN_MESSAGE_LENGTH, UDP_MAX_PAYLOAD)


def parse_pool_size(key: str, text: object) -> int:
    value = parse_int(key, text, POOL_SIZES[0], POOL_SIZES[-1])
    if value not in POOL_SIZES:
        raise ConfigError(key, text, "a power of ten: " + ", ".join(str(p) for p in POOL_SIZES))
    return value


def parse_scenarios(key: str, value: object) -> tuple[Request, ...]:
    """``scenarios:``: a list of ``NAME[:KEY=VALUE,...]`` (repeated ``--scenario``); in one string (a
    ``LOGGEN_SCENARIOS`` variable) the items are separated by ``;``."""
    if isinstance(value, str):
        value = [item for item in (part.strip() for part in value.split(";")) if item]
    return parse_all(key, value)


def parse_detect_list(key: str, value: object) -> tuple[str, ...]:
    """``detect:``: a list of ``command:CMD``, ``prometheus:URL`` or ``webhook`` (repeated ``--detect``),
    each checked on its own (``config.build`` pairs ``prometheus:`` with ``detect_query``); in one string
    the items are separated by ``;``."""
    if isinstance(value, str):
        value = [item for item in (part.strip() for part in value.split(";")) if item]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, value, "a list of command:CMD, prometheus:URL or webhook")
    for item in value:
        parse_detect(key, item, "(checked with detect_query)")
    return tuple(str(item).strip() for item in value)


def parse_path(key: str, value: object) -> str:
    """A file loggend writes, or empty (none), made absolute (a daemon runs from /); it is checked when it
    is opened."""
    if not isinstance(value, str) or "\0" in value:
        raise ConfigError(key, value, "a file path, or empty")
    return os.path.abspath(value.strip()) if value.strip() else ""


def parse_detect_timeout(key: str, value: object) -> float:
    try:
        seconds = parse_duration(key, value if isinstance(value, (int, float)) else str(value))
    except ConfigError:
        seconds = -1.0                       # its own bounds say what it takes (a duration's error offers 0)
    if not MIN_TIMEOUT <= seconds <= MAX_TIMEOUT:
        raise ConfigError(key, value, f"a duration from {MIN_TIMEOUT:g}s to {MAX_TIMEOUT / 3600:g}h")
    return seconds


def choice(allowed: tuple[str, ...]) -> Callable[[str, object], str]:
    return lambda key, value: parse_choice(key, str(value), allowed)


def whole(low: int, high: int) -> Callable[[str, object], int]:
    return lambda key, value: parse_int(key, value, low, high)


@dataclass(frozen=True)
class Setting:
    """One key. ``parse(label, value)`` checks a value on its own (``None``: it needs other keys or the
    machine, and ``config.build`` checks it); ``direct``: what it returns is the ``Config`` field as it
    is. ``fields`` are the ``Config`` fields the key sets, and what a reload that changes them does."""

    key: str
    default: object                       # as written in config/loggen.yaml
    help: str                             # one line: the flag's help
    doc: str                              # the comment above the key in config/loggen.yaml
    reload: tuple[str, ...]
    fields: tuple[str, ...]
    flag: str = ""                        # `loggend run --FLAG VALUE`
    switch: tuple[str, object, str] = ()  # type: ignore[assignment]   # (--flag, value it sets, its help)
    legacy: str = ""                      # the original tool's single-dash flag (hidden)
    parse: Callable[[str, Any], Any] | None = None
    direct: bool = False
    allowed: str = ""                     # the values it takes, for the reference
    choices: tuple[str, ...] = ()         # for completion
    complete: str = ""                    # "file" or "dir": what the shell completes for it
    handed: tuple[str, ...] = ()          # fields it also sets that only the workers use: a hand-over
    repeat: bool = False                  # the flag may be given several times: each adds an item to the list

    @property
    def env(self) -> str:
        return env_name(self.key)

    @property
    def dest(self) -> str:
        """The flag's attribute in argparse's namespace."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def section(self) -> str:
        return self.key.partition(".")[0] if "." in self.key else ""

    @property
    def name(self) -> str:
        """The key inside its section (``seed`` of ``messages.seed``)."""
        return self.key.rpartition(".")[2]


def env_name(key: str) -> str:
    """``messages.seed`` -> ``LOGGEN_MESSAGES_SEED``."""
    return ENV_PREFIX + key.upper().replace(".", "_")


HANDS_OVER = (HAND_OVER,)
RESTARTS_SINKS = (SINKS, HAND_OVER)       # the sink's address or kind: the workers are handed over too
FILE_CHOICES = "a readable file (PEM)"

SETTINGS: tuple[Setting, ...] = (
    Setting("target", "127.0.0.1", "HOST or HOST:PORT (a port here replaces 'ports')",
            'Where the SIEM listens: a host name or an IP address (resolved once at start-up).\n'
            '"HOST:PORT" sends every worker to that one port and replaces `ports`.',
            RESTARTS_SINKS, ("host",), handed=("target_name",), flag="--target", legacy="-target",
            allowed="a host name or an IP address written in full, optionally :PORT"),
    Setting("ports", "514-553", "514-553, 514 or 514,600-610: worker i sends to port i mod count",
            'UDP ports of the SIEM\'s syslog inputs: a range "514-553", one port, or a list such as\n'
            '[514, 600-610]. Worker i sends to the i-th port, wrapping around (i mod the number of ports).',
            RESTARTS_SINKS, ("ports",), flag="--ports", parse=parse_ports),
    Setting("transport", "auto", "how UDP datagrams leave the box: " + "|".join(TRANSPORTS),
            "How datagrams leave the box: auto tries gso (UDP segmentation offload, ~1M/s per core),\n"
            "then sendmmsg (~0.25M/s), then sendto; or force one of them. UDP only (as a flag or variable\n"
            "with tcp or tls it is refused; a file may hold it for a reload to udp).",
            HANDS_OVER, ("transport",), flag="--transport", parse=choice(TRANSPORTS), direct=True,
            choices=TRANSPORTS),
    Setting("protocol", "udp", "|".join(PROTOCOLS) + " (default udp)",
            "udp (one message per datagram), tcp (RFC 6587) or tls (RFC 5425). With tcp and tls each worker\n"
            "keeps one connection to its port and reconnects (with back-off) when it drops.",
            RESTARTS_SINKS, ("protocol",), flag="--protocol", parse=choice(PROTOCOLS), choices=PROTOCOLS),
    Setting("framing", "octet-counting", "tcp and tls: " + "|".join(STREAM_FRAMINGS) + " (RFC 6587; default "
            "octet-counting, which TLS requires)",
            'tcp and tls: octet-counting ("LEN MSG", RFC 6587 3.4.1; required with tls) or lf (a line feed\n'
            'after each message, RFC 6587 3.4.2). As a flag or variable with udp it is refused.',
            HANDS_OVER, ("framing",), flag="--framing", parse=choice(STREAM_FRAMINGS), choices=STREAM_FRAMINGS),
    Setting("format", "rfc3164", "|".join(FORMATS) + " (default rfc3164); with --sources: a form every source "
            "has (cef, json...; default: each its vendor's own)",
            "rfc3164, rfc5424 (with an SD element carrying the stream and sequence), cef (CEF:0), leef\n"
            "(LEEF:2.0) or json (one ECS-style object); cef, leef and json come after an RFC 3164 header.\n"
            "With sources: native or rfc3164 (each source in its vendor's own form), or a form every source\n"
            "of the mix has (cef, json...). With replay: the header of lines that have none.",
            HANDS_OVER, ("messages",), flag="--format", allowed=", ".join(FORMATS) + "; with sources also native",
            choices=(*FORMATS, "native")),
    Setting("tls_ca", "", "CA certificates (PEM) to verify the server with (default: the system's)",
            "tls: CA certificates (PEM) to verify the server with; empty = the system's CAs.",
            HANDS_OVER, ("tls",), flag="--tls-ca", allowed=FILE_CHOICES + ", or empty", complete="file"),
    Setting("tls_cert", "", "client certificate (PEM) for mutual TLS",
            "tls: a client certificate (PEM), for mutual TLS; empty = none.",
            HANDS_OVER, ("tls",), flag="--tls-cert", allowed=FILE_CHOICES + ", or empty", complete="file"),
    Setting("tls_key", "", "the client certificate's private key (PEM)",
            "tls: the client certificate's private key (PEM).",
            HANDS_OVER, ("tls",), flag="--tls-key", allowed=FILE_CHOICES + ", or empty", complete="file"),
    Setting("tls_verify", True, "yes|no: verify the server's certificate and name (default yes)",
            "tls: verify the server's certificate and name (yes), or encrypt without verifying (no).",
            HANDS_OVER, ("tls",), flag="--tls-verify", parse=parse_bool, choices=("yes", "no")),
    Setting("tls_server_name", "", "SNI and the name verified (default: the target as written)",
            "tls: the name sent as SNI and verified in the certificate; empty = the target as written.",
            HANDS_OVER, ("tls",), flag="--tls-server-name", allowed="a host name or an IP address, or empty"),
    Setting("sink_tls_cert", "", "tls with local_sink: the local sink's server certificate (PEM)",
            "tls with local_sink: the local sink's server certificate (PEM). Empty: a throw-away CA and\n"
            "certificate are made for the run (with the openssl command) and the workers trust it.",
            RESTARTS_SINKS, ("sink_tls_cert",), allowed=FILE_CHOICES + ", or empty", complete="file"),
    Setting("sink_tls_key", "", "tls with local_sink: the local sink's private key (PEM)",
            "tls with local_sink: the local sink's private key (PEM).",
            RESTARTS_SINKS, ("sink_tls_key",), allowed=FILE_CHOICES + ", or empty", complete="file"),
    Setting("rate", 0, "total events/s: 50000, 250k (thousand), 4M or 4m (million, not minutes); "
            "0 = unlimited, else at least 1",
            "Total events per second over all workers, split evenly; 250k (thousand) and 4M or 4m (million)\n"
            "work too. 0 = unlimited: as fast as the machine can, said at start-up.\n"
            "In a fleet (see `instance`) this is the fleet's total: each instance sends its exact share.",
            (IN_PLACE,), ("rate",), flag="--rate", parse=parse_rate),
    Setting("profile", [], "the rate over time instead: segments such as ramp:10k-200k/60s,constant:200k/5m "
            "(kinds constant, ramp, steps, burst, sine; then repeat or hold)",
            "The rate over time instead of one `rate` (give one of the two): segments run in order, then the\n"
            "last rate is held, or the whole list repeats when its last item is `repeat`. Rates as above,\n"
            "but 0 inside a profile means no events. `for` may be left out of the last segment (for ever).\n"
            "  - constant: {rate: 200k, for: 5m}\n"
            "  - ramp:     {from: 10k, to: 200k, for: 60s}                  a straight line\n"
            "  - steps:    {from: 10k, to: 100k, step: 10k, each: 30s}      10k, 20k ... 100k, 30 s each\n"
            "  - burst:    {base: 20k, peak: 200k, peak_for: 5s, every: 1m, for: 10m}   a peak at each minute's start\n"
            "  - sine:     {min: 10k, max: 100k, period: 10m, for: 1h}      starts at min\n"
            "  - repeat                                                     (or hold, the default)\n"
            'An item may also be written in the compact form of --profile, e.g. "- ramp:10k-200k/60s";\n'
            "the whole of `loggend run --profile ramp:10k-200k/60s,constant:200k/5m` is that list in one line.\n"
            "With a duration, a timed run sends exactly the profile's integral over it. [] = use `rate`.",
            (IN_PLACE,), ("profile_spec",), flag="--profile", parse=parse_profile),
    Setting("workers", 40, "workers: streams of their own, one target port each (default 40)",
            "Workers. Each sends one stream (stream=w<i>) of its own to its port.",
            HANDS_OVER, ("workers",), flag="--workers", parse=whole(1, MAX_WORKERS)),
    Setting("worker_processes", 0, "processes serving the workers (0 = one per CPU, at most one per worker; as "
            "many as --workers: one process each)",
            "Processes serving the workers, each pinned to one CPU: process p serves workers p, p+P, p+2P...\n"
            "0 (or auto) = over UDP one per CPU of `cpus` (at most one per worker): 40 workers on 2 CPUs run in 2\n"
            "processes of 20 streams, which costs about what 2 workers cost; 40 processes, one per worker,\n"
            'cost about 1.7x as much per event there (docs/benchmarks.md). Over TCP and TLS 0 means one per\n'
            "worker: a connection that stalls would hold up the other workers of its process. A process\n"
            "that dies takes its workers down and its replacement carries all of them on.",
            HANDS_OVER, ("worker_processes",), flag="--worker-processes", parse=parse_processes),
    Setting("cpus", "auto", "auto, or CPUs to pin workers to round robin, e.g. 0-3",
            "CPUs the worker processes are pinned to, round robin: auto (every CPU this process may use), a\n"
            'list such as [2, 3] or a string of ranges such as "2-7".',
            HANDS_OVER, ("cpus",), flag="--cpus", allowed="auto, or CPUs this process may use: 0-3, [2, 3]"),
    Setting("duration", 0, "90s, 30m (minutes), 1h; a bare number is seconds (-duration=N, the original tool's "
            "flag, is minutes); 0 = until stopped",
            "How long to run: 90s, 30m (minutes), 1h or 1.5h; a bare number is seconds. 0 = until stopped.\n"
            "With a rate, a timed run sends exactly rate x duration events.",
            (IN_PLACE,), ("duration",), flag="--duration", legacy="-duration", parse=parse_run_duration),
    Setting("max_rate", 0, "the highest total events/s the run may be set to, at the start or live (ctl, "
            "SIGUSR1, reload); 0 = no bound",
            "The highest total events/s the run may be set to: a `rate` or `profile` above it is refused at\n"
            "the start (exit 2); live, `loggend ctl rate|profile` above it is refused unless `--force`,\n"
            "SIGUSR1 stops at it and a reload above it is refused. Whatever it is, a live change or reload\n"
            "that raises the rate more than 10 times is refused too unless forced (`loggend ctl rate R\n"
            "--force`, `loggend ctl reload --force`): a typo (100m for 100k) does not flood the receiver.\n"
            "0 = no bound (an unlimited rate is above any bound).",
            (IN_PLACE,), ("max_rate",), flag="--max-rate", parse=parse_rate, direct=True),
    Setting("messages.seed", 1, "the same seed gives the same messages",
            "The same seed gives the same messages (per worker).",
            HANDS_OVER, ("messages",), flag="--seed", parse=whole(0, MAX_SEED)),
    Setting("messages.hosts", 1000, "simulated hosts",
            "Simulated hosts; each has a role (web, database, firewall...) and logs only what that role runs.",
            HANDS_OVER, ("messages",), flag="--hosts", parse=whole(1, MAX_HOSTS)),
    Setting("messages.pri_mix", "", "FACILITY.SEVERITY=WEIGHT,... (default: per template)",
            'Facility.severity mix, e.g. "auth.info=3,local7.err=1" or a mapping {auth.info: 3}.\n'
            "Empty: each template's own (nginx as local7.info, sshd as auth.info...).",
            HANDS_OVER, ("messages",), flag="--pri-mix", parse=parse_pri_mix),
    Setting("messages.timezone", "local", "|".join(TIMEZONES) + " timestamps",
            "Timestamps in local time or utc.",
            HANDS_OVER, ("messages",), flag="--timezone", switch=("--utc", "utc", "same as --timezone utc"),
            parse=choice(TIMEZONES), choices=TIMEZONES),
    Setting("messages.sequence", True, "carry stream=/seq= fields so that a sink counts what was lost",
            'Carry the stream id and a sequence number in every message (rfc3164: "stream=<id> seq=<n>" at\n'
            "the end; the other formats in their own fields) so that a sink can count what was lost.",
            HANDS_OVER, ("messages",), switch=("--no-sequence", False, "omit the stream=/seq= fields"),
            parse=parse_bool),
    Setting("messages.max_length", "auto", "bytes per message",
            "Longest message in bytes, framing aside; at least 160 (rfc3164), 200 (rfc5424), 300 (cef,\n"
            "leef) or 480 (json). auto = 1024 (RFC 3164's limit), or with sources 8192 (rsyslog's default\n"
            "maxMessageSize), so vendor messages go whole; with sources a longer one is left out and\n"
            "another drawn (said at the start).",
            HANDS_OVER, ("messages",), flag="--max-length",
            allowed=f"auto, or bytes from {MIN_MESSAGE_LENGTH} to {UDP_MAX_PAYLOAD}"),
    Setting("messages.pool_size", "auto", "auto or pre-rendered messages per worker (a power of ten)",
            "Pre-rendered messages per worker: auto (100000 for one worker, 10000 for many), or\n"
            "1000, 10000, 100000, 1000000. Every worker draws from one shared corpus of 100000 messages.",
            HANDS_OVER, ("messages",), flag="--pool-size",
            allowed="auto, or " + ", ".join(str(p) for p in POOL_SIZES)),
    Setting("messages.stream_id", "w", "stream label prefix: worker i sends stream=<prefix><i>",
            "Stream label prefix: worker i's messages carry stream=<prefix><i>.",
            HANDS_OVER, ("stream_id",), flag="--stream-id", parse=parse_stream_id, direct=True),
    Setting("messages.sd_enterprise", DEFAULT_ENTERPRISE, "RFC 5424: the private enterprise number of the "
            "loggen@N SD element",
            "rfc5424: the private enterprise number in the SD-ID loggen@<n> (32473 is IANA's example number).",
            HANDS_OVER, ("messages",), flag="--sd-enterprise", parse=whole(1, MAX_ENTERPRISE)),
    Setting("dashboard", "127.0.0.1:8080", "ADDRESS:PORT of the dashboard and /metrics (port 0 = any), or off",
            "Address of the web dashboard, the REST API and Prometheus /metrics (the original -dashboard-port\n"
            "sets the port; port 0 = any free one, logged at start-up); off = no web process. Left at its\n"
            "default in a fleet (`instance: I/N`), instance I takes port 8080 + I: instances on one box do not\n"
            "collide.",
            (WEB,), ("dashboard",), flag="--dashboard", parse=parse_dashboard,
            allowed="ADDRESS:PORT (port 0 = any free one), or off"),
    Setting("dashboard_token", "", "bearer token the web endpoints want",
            "Bearer token every web endpoint then wants (Authorization: Bearer TOKEN, or ?token= in a\n"
            "browser's address bar); 16 to 256 characters. Empty = no authentication (keep it on 127.0.0.1).",
            (WEB,), ("dashboard_token",), flag="--dashboard-token", parse=parse_token, direct=True),
    Setting("dashboard_interval", "1s", "seconds between WebSocket frames, e.g. 1s",
            "How often the dashboard samples the counters and sends a WebSocket frame (0.1s to 60s).",
            (WEB,), ("dashboard_interval",), flag="--dashboard-interval", parse=parse_interval, direct=True,
            allowed=f"a duration from {MIN_INTERVAL:g}s to {MAX_INTERVAL:g}s"),
    Setting("dashboard_origins", [], "Origins besides the dashboard's own that may open the WebSocket feed",
            "Origins besides the dashboard's own that may open the WebSocket feed,\n"
            "e.g. [https://grafana.example:3000]. Browsers from any other page are refused.",
            (WEB,), ("dashboard_origins",), parse=parse_origins, direct=True),
    Setting("dashboard_hosts", [], "Host names the dashboard answers to besides its own addresses, "
            "e.g. loadgen.example,.example (DNS-rebinding guard; * = any)",
            "Host names the dashboard answers to besides its own addresses, e.g. [loadgen.example] or\n"
            "[.example] (example and every name under it); * = any. Requests naming another host get 403:\n"
            "a guard against DNS rebinding. Always allowed: the address it listens on (any address when it\n"
            "listens on 0.0.0.0 or ::), localhost when it listens on loopback, and this machine's name.",
            (WEB,), ("dashboard_hosts",), flag="--dashboard-hosts", parse=parse_hosts, direct=True),
    Setting("memory_limit", "12G", "e.g. 12G; 0 = no limit",
            "Memory limit for the supervisor and its workers together (RSS): 512M, 12G... 0 = no limit.\n"
            "Over it, the run stops with a message and exit status 1.",
            (IN_PLACE,), ("memory_limit",), flag="--memory-limit", parse=parse_size, direct=True),
    Setting("optimize", False, "apply the kernel network tuning at start-up when allowed (root)",
            "Apply the kernel network tuning of `loggend tune apply` at start-up when allowed (root), and\n"
            "restore it when the run ends. The systemd unit may not (ProtectKernelTunables=yes): there, run\n"
            "`sudo loggend tune apply` once instead; a run then finds the tuning in place and says so.",
            (IN_PLACE,), ("optimize",), legacy="-optimize", parse=parse_bool, direct=True),
    Setting("hung_timeout", "10s", "a worker whose heartbeat is this old is killed and restarted",
            "A worker process whose heartbeat (each worker beats every 0.1 s) is older than this is hung:\n"
            "it is killed and restarted.",
            (IN_PLACE,), ("hung_timeout",), parse=parse_hung_timeout, direct=True,
            allowed=f"a duration from {MIN_HUNG_TIMEOUT:g}s to {MAX_HUNG_TIMEOUT / 3600:g}h"),
    Setting("local_sink", False, "also receive on the target ports and count loss",
            "Also run the dummy SIEM (loggend sink) on the target address and ports, under this supervisor,\n"
            "so the dashboard and the summary show sent, received and lost side by side. The target must\n"
            "then be an address of this machine; ports below 1024 need root.",
            (SINKS,), ("local_sink",), switch=("--local-sink", True, "also receive on the target ports and count "
                                               "loss"), parse=parse_bool, direct=True),
    Setting("sink_processes", 0, "receiving processes of the local sink (0 = one per CPU)",
            "Receiving processes of the local sink, sharing the ports with SO_REUSEPORT. 0 = one per CPU.",
            (SINKS,), ("sink_processes",), flag="--sink-processes", parse=whole(0, MAX_SINK_PROCESSES)),
    Setting("sink_cpus", "auto", "auto (the workers' CPUs) or CPUs to pin the local sink to, e.g. 6-7",
            "CPUs the local sink's processes are pinned to, round robin: auto = the workers' (cpus), or a\n"
            "list or ranges of CPUs this process may use (e.g. 6-7), so the sink does not compete with them.",
            RESTARTS_SINKS, ("sink_cpus",), flag="--sink-cpus",
            allowed="auto, or CPUs this process may use: 6-7, [6, 7]"),
    Setting("sink_share_ports", False, "start the local sink even when another socket receives on its ports",
            "Another socket already receiving on the sink's address and ports (a second sink, a SIEM bound\n"
            "with SO_REUSEPORT) would take a share of the datagrams, and the counts would be short: the start\n"
            'is refused. true = share them knowingly: said loudly, and the loss verdict is "unknown".',
            RESTARTS_SINKS, ("sink_share_ports",),
            switch=("--sink-share-ports", True, "start the local sink even when another socket receives on its "
                    "ports (it takes a share: the loss verdict is then unknown)"), parse=parse_bool, direct=True),
    Setting("quiet", False, "no live line on stdout (the summary stays)",
            "No live line on stdout (STATUS= under systemd, the dashboard and the summary stay).",
            (OUTPUT,), ("quiet",), switch=("--quiet", True, "no live line on stdout (the summary stays)"),
            parse=parse_bool, direct=True),
    Setting("live_interval", "auto", "seconds between live lines: auto (1s on a terminal, 10s to the journal, "
            "a pipe or a file) or e.g. 1s, 60s",
            "Seconds between live lines on stdout: auto = every second on a terminal, every 10 s elsewhere\n"
            "(the journal, a pipe, a file), or e.g. 1s, 60s.",
            (OUTPUT,), ("live_interval",), flag="--live-interval", parse=parse_live_interval, direct=True,
            allowed=f"auto, or a duration from {MIN_LIVE:g}s to {MAX_LIVE / 3600:g}h"),
    Setting("instance", "0/1", "I/N: this is instance I of a fleet of N, sending its share of --rate",
            'This process\'s place in a fleet of coordinated instances, "I/N" (0 <= I < N <= 1000):\n'
            "instance I of N sends exactly its share of `rate` (a timed fleet sends rate x duration in all,\n"
            "to the event), and its streams are labelled i<I>.<stream_id><worker> (e.g. i2.w3) so that one\n"
            "sink tells every stream of the fleet apart. Give every instance the same file and its own\n"
            '--instance; start them together with `loggend run --start-at TIME`. "0/1" = a lone instance\n'
            "(streams w0, w1...).",
            (FIXED,), ("instance", "instances"), flag="--instance", parse=parse_instance),
    Setting("run_id", "", "the run's Prometheus label, the same for every instance of a fleet",
            'The run\'s id in Prometheus: every loggen_* series carries run_id="<this>" (and\n'
            'instance_index="<I>"), so a fleet adds up with sum by (run_id). Give every instance of a fleet\n'
            "the same one; 1 to 64 letters, digits or _.:-. Empty = a random one for this run.",
            (IN_PLACE,), ("run_id",), flag="--run-id", parse=parse_run_id, direct=True),
    Setting("templates", [], "a YAML file of your own templates (tokens such as {int:1-100})",
            "Your own templates: a list here, or the path of a YAML file of them (relative to this file).\n"
            "Each has a name and a message with tokens, and optionally weight (relative to the others and to\n"
            "the catalogue's 1,083 in all), facility, severity, program and pid (the manual: templates and\n"
            "replay), e.g.\n"
            "  templates:\n"
            "    - name: login\n"
            '      message: "login user={user} src={ipv4:10.20.0.0/16} port={int:1024-65535} session={sid=hex:16}"\n'
            "      weight: 100\n"
            "      facility: auth\n"
            "      severity: notice",
            HANDS_OVER, ("messages",), flag="--templates", allowed="a list of templates, or a YAML file of them",
            complete="file"),
    Setting("catalogue", True, "on|off: the built-in templates too (default on; off = only yours)",
            "Send the built-in templates too (true), or only your own (false; templates are then needed).",
            HANDS_OVER, ("messages",), flag="--catalogue", parse=parse_bool, choices=("on", "off")),
    Setting("sources", "none", "a mix of log sources instead of the catalogue: NAME[=WEIGHT],... "
            "(cisco-asa=50,paloalto=30,windows-security=20) or preset:enterprise (see `loggend sources`)",
            "A mix of log sources instead of the catalogue (`loggend sources` lists them): NAME=WEIGHT,...\n"
            "(cisco-asa=50,paloalto=30,windows-security=20; a weight is a share of the events), a mapping\n"
            "of the same, or preset:enterprise. Each source is sent in its vendor's own wire form; `format`\n"
            "picks another form every source of the mix has (cef, json...). none = the catalogue.",
            HANDS_OVER, ("messages",), flag="--sources", allowed="none, NAME=WEIGHT,..., a mapping, or preset:NAME"),
    Setting("estate", "none", "your devices instead of --sources: KIND=COUNT,... (cisco-asa=4,windows-dc=6,"
            "linux=300): shares and, without --rate, the rate from events/s per device (docs/sources)",
            "Instead of sources: your devices, e.g. {cisco-asa: 4, windows-dc: 6, linux: 300}, turned into\n"
            "the shares of a mix and, when no rate is given, into the rate, from the events/s per device of\n"
            'docs/sources/README.md ("The estate"). none = no estate.',
            HANDS_OVER, ("messages",), flag="--estate", allowed="none, KIND=COUNT,... or a mapping"),
    Setting("replay", "", "send a captured log file's lines (plain or gzip), timestamps rewritten to now",
            "Replay a captured log file instead of generated messages: its lines as they are (plain or gzip),\n"
            "each line's timestamp rewritten to the sending time (RFC 3164, ISO 8601 / RFC 5424, Apache/nginx\n"
            '[29/Nov/2026:06:00:00 +0000] and epoch seconds). Relative to this file\'s folder. "" = none.',
            HANDS_OVER, ("messages", "replay_timing"), flag="--replay", allowed="a log file, or empty",
            complete="file"),
    Setting("replay_speed", 0, "replay with the file's own timing, this many times faster (10 or 10x); "
            "without it, at --rate, looping over the file",
            "With replay: 0 = at `rate`, looping over the file; N (or Nx) = the file's own inter-arrival\n"
            "times, N times faster (the run lasts the file's span / N unless `duration` says otherwise).",
            HANDS_OVER, ("messages", "replay_timing"), flag="--speed", allowed="0, or N or Nx up to 1e6"),
    Setting("replay_wrap", "auto", "rfc3164|rfc5424|none: the syslog header replayed lines that have none "
            "get (an nginx log); default rfc3164, or --format's",
            "With replay: the syslog header a line without one gets (an nginx or JSON log, not syslog), as a\n"
            "file forwarder sends it: rfc3164 (<133>Mmm dd hh:mm:ss HOST FILE: line), rfc5424, or none (the\n"
            "lines as they are). auto = rfc3164, or rfc5424 when format says so. Lines that start with\n"
            "<PRI> are sent as they are either way.",
            HANDS_OVER, ("messages",), flag="--replay-wrap", parse=choice(("auto", *WRAPS)),
            choices=("auto", *WRAPS)),
    Setting("control_socket", "auto", "auto, off, or the path of the socket `loggend ctl` talks to",
            "The live-control socket of `loggend ctl` (rate, pause, resume, status): auto puts it at\n"
            "/run/loggen/loggend-<pid>.sock when running as root (or when /run/loggen is writable, as under\n"
            "the systemd unit), else $XDG_RUNTIME_DIR/loggend-<pid>.sock or /tmp/loggen-<uid>/loggend-<pid>.sock;\n"
            "or a path; or off. Mode 0600, and only root or the run's own user may use it.",
            (NEXT_START,), ("control_socket",), flag="--control-socket", parse=parse_control_socket, direct=True,
            allowed=f"auto, off, or a path of at most {SOCKET_PATH_BYTES} bytes"),
    Setting("scenarios", [], "inject an attack scenario on top of the background: NAME[:KEY=VALUE,...] "
            "(repeatable; `loggend scenarios` lists them)",
            "Attack scenarios injected on top of the background, each NAME[:KEY=VALUE,...]: ssh-bruteforce,\n"
            "password-spray, port-scan, priv-escalation, beacon, exfiltration (`loggend scenarios` lists them\n"
            "with their keys and a sample; the manual: scenarios), e.g.\n"
            "  scenarios:\n"
            '    - "ssh-bruteforce:attempts=10,within=10,at=30,every=120"\n'
            '    - "port-scan:ports=200,within=20,at=60"\n'
            "Every scenario takes at (seconds from the start), every (repeat), source (the attacker's address)\n"
            "and target_host. In LOGGEN_SCENARIOS the items are separated by ';'. [] = none.",
            (NEXT_START,), ("scenarios",), flag="--scenario", parse=parse_scenarios, direct=True, repeat=True,
            allowed="a list of NAME[:KEY=VALUE,...]"),
    Setting("inject", False, "start the scenario injector for `loggend ctl inject` even without --scenario",
            "Start the scenario injector even without scenarios, so that `loggend ctl inject NAME` can inject\n"
            "one while the run goes on.",
            (NEXT_START,), ("inject",), switch=("--inject", True, "start the scenario injector for `loggend ctl "
                                                "inject` even without --scenario"), parse=parse_bool, direct=True),
    Setting("truth", "", "write the ground truth: one JSON line per injected message",
            "With scenarios or inject: the ground truth, one JSON line per injected message (scenario and\n"
            'instance, stream, sequence number, send time, the message). "" = none.',
            (NEXT_START,), ("truth",), flag="--truth", parse=parse_path, direct=True,
            allowed="a file path, or empty", complete="file"),
    Setting("detect", [], "learn when the SIEM detected each scenario instance: command:CMD, prometheus:URL or "
            "webhook (repeatable)",
            "With scenarios or inject: how loggen learns when the SIEM detected each scenario instance\n"
            "(the manual: detection): command:CMD (run with the instance's id; prints when it was detected,\n"
            "or nothing), prometheus:URL (with detect_query), webhook (the SIEM POSTs to /api/detections).\n"
            "In LOGGEN_DETECT the items are separated by ';'. [] = no detection feedback.",
            (NEXT_START,), ("detect",), flag="--detect", parse=parse_detect_list, repeat=True,
            allowed="a list of command:CMD, prometheus:URL or webhook"),
    Setting("detect_query", "", "with --detect prometheus:URL: the PromQL that is non-empty once an instance is "
            "detected ({id}, {scenario}, {source}, {target} replaced)",
            "With detect prometheus:URL: the PromQL that is non-empty once an instance is detected ({id},\n"
            "{scenario}, {source} and {target} are replaced by the instance's).",
            (NEXT_START,), ("detect",), flag="--detect-query", allowed="a PromQL query, or empty"),
    Setting("detect_timeout", "120s", "an instance not detected this long after its first event is missed",
            "With detect: an instance not detected this long after its first event is missed.",
            (NEXT_START,), ("detect_timeout",), flag="--detect-timeout", parse=parse_detect_timeout, direct=True,
            allowed=f"a duration from {MIN_TIMEOUT:g}s to {MAX_TIMEOUT / 3600:g}h"),
)
BY_KEY = {s.key: s for s in SETTINGS}
SECTIONS = ("messages",)
SECTION_DOCS = {"messages": "What the messages look like."}


def default_value(key: str) -> Any:
    """A key's default as its parser reads it: what ``Config`` holds when nothing sets the key."""
    setting = BY_KEY[key]
    assert setting.parse is not None, key
    return setting.parse(key, setting.default)


def reload_table() -> dict[str, frozenset[str]]:
    """``Config`` field -> what a reload that changes it does (the classes of the keys that set it)."""
    table: dict[str, frozenset[str]] = {}
    for setting in SETTINGS:
        for name in setting.fields:
            table[name] = table.get(name, frozenset()) | frozenset(setting.reload)
        for name in setting.handed:
            table[name] = table.get(name, frozenset()) | {HAND_OVER}
    return table


RELOAD = reload_table()


def reload_class(name: str) -> frozenset[str]:
    """What a reload that changes the ``Config`` field ``name`` does."""
    return RELOAD[name]


def fields_that(what: str) -> frozenset[str]:
    """The ``Config`` fields whose change a reload handles with ``what`` (one of RELOAD_CLASSES)."""
    return frozenset(name for name, classes in RELOAD.items() if what in classes)
