"""Command line: ``loggend run | ctl | find-limit | check-config | sink | perftest | soak | tune | bench | profile |
sources``.

Bad input is one line and exit 2.

``run`` reads ``/etc/loggen.yaml`` (or ``--config PATH``), lays the ``LOGGEN_*`` environment
variables over it and its flags over both (file < environment < flags). The original tool's
flags keep working: ``-target=HOST``, ``-dashboard-port=PORT``, ``-duration=MINUTES`` (a bare
number is minutes there, seconds in ``--duration``) and ``-optimize=true|false``.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any, NoReturn

from loggend import __version__
from loggend.config import (
    DASHBOARD_PORT,
    DEFAULT_CONFIG_PATH,
    MAX_SINK_PROCESSES,
    Config,
    load,
    parse_dashboard,
    parse_hosts,
)
from loggend.content import registry
from loggend.engine import journal
from loggend.engine.formats import FORMATS
from loggend.engine.spec import PROTOCOLS, STREAM_FRAMINGS, TIMEZONES, TRANSPORTS
from loggend.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError
from loggend.fleet import parse_run_id, parse_start_at
from loggend.parsers import format_ports, parse_duration, parse_int, parse_ports, plural, resolve_host, split_target

if TYPE_CHECKING:
    from loggend.control.daemon import ReadyPipe

# Flags of ``run`` that override a config key (dest -> key); the error label is the flag itself.
ERROR_LINE_CHARS = 1000       # an error line longer than this is cut
FLAG_KEYS = {
    "target": "target", "ports": "ports", "rate": "rate", "workers": "workers", "cpus": "cpus",
    "worker_processes": "worker_processes",
    "duration": "duration", "transport": "transport", "seed": "messages.seed", "hosts": "messages.hosts",
    "timezone": "messages.timezone", "pri_mix": "messages.pri_mix", "max_length": "messages.max_length",
    "pool_size": "messages.pool_size", "stream_id": "messages.stream_id", "dashboard": "dashboard",
    "memory_limit": "memory_limit", "dashboard_token": "dashboard_token", "dashboard_interval": "dashboard_interval",
    "sink_processes": "sink_processes", "protocol": "protocol", "framing": "framing", "format": "format",
    "tls_ca": "tls_ca", "tls_cert": "tls_cert", "tls_key": "tls_key", "tls_verify": "tls_verify",
    "tls_server_name": "tls_server_name", "sd_enterprise": "messages.sd_enterprise",
    "dashboard_hosts": "dashboard_hosts", "live_interval": "live_interval", "templates": "templates",
    "catalogue": "catalogue", "replay": "replay", "speed": "replay_speed", "replay_wrap": "replay_wrap",
    "sources": "sources", "estate": "estate",
    "instance": "instance", "run_id": "run_id", "profile": "profile", "control_socket": "control_socket",
    "sink_cpus": "sink_cpus",
}
# The original tool's single-dash flags: dest -> (label, key).
LEGACY_FLAGS = {
    "legacy_target": ("-target", "target"),
    "legacy_dashboard_port": ("-dashboard-port", DASHBOARD_PORT),
    "legacy_duration": ("-duration", "duration"),
    "legacy_optimize": ("-optimize", "optimize"),
}


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> Parser:
    parser = Parser(prog="loggend", description="Syslog load generator for SIEM ingestion tests.")
    parser.add_argument("--version", action="version", version=f"loggend {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="send syslog to a target (the supervisor daemon)",
                         description="Every flag overrides the same key of the config file and its LOGGEN_* "
                         "environment variable (LOGGEN_RATE, LOGGEN_MESSAGES_SEED...): file < environment < "
                         "flags. Without a config, rate and duration are 0: it sends as fast as it can until "
                         "stopped. Units: a rate's m/M is million (--rate 4m = 4,000,000 ev/s); a duration's m "
                         "is minutes (--duration 4m = 240 s) and a bare number is seconds (--duration 5 = 5 s; "
                         "only the original tool's -duration=5 means minutes).")
    run.add_argument("--config", help=f"YAML config (default {DEFAULT_CONFIG_PATH} if it exists)")
    run.add_argument("--target", help="HOST or HOST:PORT (a port here replaces 'ports')")
    run.add_argument("--ports", help="514-553, 514 or 514,600-610: worker i sends to port i mod count")
    run.add_argument("--rate", help="total events/s: 50000, 250k (thousand), 4M or 4m (million, not minutes); "
                     "0 = unlimited, else at least 1")
    run.add_argument("--profile", help="the rate over time instead: segments such as ramp:10k-200k/60s,"
                     "constant:200k/5m (kinds constant, ramp, steps, burst, sine; then repeat or hold)")
    run.add_argument("--workers", help="workers: streams of their own, one target port each (default 40)")
    run.add_argument("--worker-processes", help="processes serving the workers (0 = one per CPU, at most one "
                                                "per worker; as many as --workers: one process each)")
    run.add_argument("--cpus", help="auto, or CPUs to pin workers to round robin, e.g. 0-3")
    run.add_argument("--duration", help="90s, 30m (minutes), 1h; a bare number is seconds (-duration=N, the "
                     "original tool's flag, is minutes); 0 = until stopped")
    run.add_argument("--transport", help="how UDP datagrams leave the box: " + "|".join(TRANSPORTS))
    run.add_argument("--protocol", help="|".join(PROTOCOLS) + " (default udp)")
    run.add_argument("--framing", help="tcp and tls: " + "|".join(STREAM_FRAMINGS) + " (RFC 6587; default "
                     "octet-counting, which TLS requires)")
    run.add_argument("--format", help="|".join(FORMATS) + " (default rfc3164); with --sources: a form every source "
                     "has (cef, json...; default: each its vendor's own)")
    run.add_argument("--tls-ca", help="CA certificates (PEM) to verify the server with (default: the system's)")
    run.add_argument("--tls-cert", help="client certificate (PEM) for mutual TLS")
    run.add_argument("--tls-key", help="the client certificate's private key (PEM)")
    run.add_argument("--tls-verify", help="yes|no: verify the server's certificate and name (default yes)")
    run.add_argument("--tls-server-name", help="SNI and the name verified (default: the target as written)")
    run.add_argument("--templates", help="a YAML file of your own templates (tokens such as {int:1-100}; see README)")
    run.add_argument("--catalogue", help="on|off: the built-in templates too (default on; off = only yours)")
    run.add_argument("--sources", help="a mix of log sources instead of the catalogue: NAME[=WEIGHT],... "
                     "(cisco-asa=50,paloalto=30,windows-security=20) or preset:enterprise (see `loggend sources`)")
    run.add_argument("--estate", help="your devices instead of --sources: KIND=COUNT,... (cisco-asa=4,windows-dc=6,"
                     "linux=300): shares and, without --rate, the rate from events/s per device (docs/sources)")
    run.add_argument("--replay", help="send a captured log file's lines (plain or gzip), timestamps rewritten to now")
    run.add_argument("--replay-wrap", help="rfc3164|rfc5424|none: the syslog header replayed lines that have none "
                     "get (an nginx log); default rfc3164, or --format's")
    run.add_argument("--speed", help="replay with the file's own timing, this many times faster (10 or 10x); "
                     "without it, at --rate, looping over the file")
    run.add_argument("--sd-enterprise", help="RFC 5424: the private enterprise number of the loggen@N SD element")
    run.add_argument("--seed", help="the same seed gives the same messages")
    run.add_argument("--hosts", help="simulated hosts")
    run.add_argument("--timezone", help="|".join(TIMEZONES) + " timestamps")
    run.add_argument("--utc", action="store_true", help="same as --timezone utc")
    run.add_argument("--no-sequence", action="store_true", help="omit the stream=/seq= fields")
    run.add_argument("--pri-mix", help="FACILITY.SEVERITY=WEIGHT,... (default: per template)")
    run.add_argument("--max-length", help="bytes per message")
    run.add_argument("--pool-size", help="auto or pre-rendered messages per worker (a power of ten)")
    run.add_argument("--stream-id", help="stream label prefix: worker i sends stream=<prefix><i>")
    run.add_argument("--dashboard", help="ADDRESS:PORT of the dashboard and /metrics (port 0 = any), or off")
    run.add_argument("--dashboard-token", help="bearer token the web endpoints want")
    run.add_argument("--dashboard-hosts", help="Host names the dashboard answers to besides its own addresses, "
                     "e.g. loadgen.example,.example (DNS-rebinding guard; * = any)")
    run.add_argument("--dashboard-interval", help="seconds between WebSocket frames, e.g. 1s")
    run.add_argument("--memory-limit", help="e.g. 12G; 0 = no limit")
    run.add_argument("--local-sink", action="store_true", help="also receive on the target ports and count loss")
    run.add_argument("--sink-processes", help="receiving processes of the local sink (0 = one per CPU)")
    run.add_argument("--sink-cpus", help="auto (the workers' CPUs) or CPUs to pin the local sink to, e.g. 6-7")
    run.add_argument("--sink-share-ports", action="store_true", help="start the local sink even when another "
                     "socket receives on its ports (it takes a share: the loss verdict is then unknown)")
    run.add_argument("--quiet", action="store_true", help="no live line on stdout (the summary stays)")
    run.add_argument("--live-interval", help="seconds between live lines: auto (1s on a terminal, 10s to the "
                     "journal, a pipe or a file) or e.g. 1s, 60s")
    run.add_argument("--instance", help="I/N: this is instance I of a fleet of N, sending its share of --rate")
    run.add_argument("--run-id", help="the run's Prometheus label, the same for every instance of a fleet")
    run.add_argument("--start-at", help="set up, then start at this time: RFC 3339 (2026-11-29T10:53:00Z) or "
                     "+30s (after the command was started)")
    run.add_argument("--control-socket", help="auto, off, or the path of the socket `loggend ctl` talks to")
    run.add_argument("--summary-json", help="also write the end-of-run summary to this file as JSON")
    run.add_argument("--scenario", action="append", default=[], metavar="NAME[:KEY=VALUE,...]",
                     help="inject an attack scenario on top of the background (repeatable; `loggend scenarios` "
                     "lists them)")
    run.add_argument("--inject", action="store_true", help="start the scenario injector for `loggend ctl inject` "
                     "even without --scenario")
    run.add_argument("--truth", help="write the ground truth: one JSON line per injected message")
    run.add_argument("--detect", action="append", default=[], metavar="command:CMD|prometheus:URL|webhook",
                     help="learn when the SIEM detected each scenario instance (repeatable)")
    run.add_argument("--detect-query", default="", help="with --detect prometheus:URL: the PromQL that is "
                     "non-empty once an instance is detected ({id}, {scenario}, {source}, {target} replaced)")
    run.add_argument("--detect-timeout", default=None, help="an instance not detected this long after its first "
                     "event is missed (default 120s)")
    run.add_argument("--ready-file", help="once every worker sends, write JSON here: pid, dashboard URL, target")
    run.add_argument("--daemon", action="store_true", help="detach from the shell once every worker sends "
                     "(exit 0), or say why not (exit 1); needs --pidfile")
    run.add_argument("--pidfile", help="write the pid here; refuse to start if it is held")
    run.add_argument("--log-file", help="daemon output (default: the pidfile's name with .log)")
    run.add_argument("-target", dest="legacy_target", help=argparse.SUPPRESS)
    run.add_argument("-dashboard-port", dest="legacy_dashboard_port", help=argparse.SUPPRESS)
    run.add_argument("-duration", dest="legacy_duration", help=argparse.SUPPRESS)
    run.add_argument("-optimize", dest="legacy_optimize", help=argparse.SUPPRESS)

    ctl = sub.add_parser("ctl", help="change a running instance's rate: rate R, profile SPEC, pause, resume, status",
                         description="Talks to the control socket of a running `loggend run` (root or the run's "
                         "own user only). Without --socket or --pid it finds the one run in the runtime directory.")
    ctl.add_argument("action", choices=("status", "rate", "profile", "pause", "resume", "inject", "detected"))
    ctl.add_argument("value", nargs="*", help="rate: events/s (250k; 0 = unlimited, else >= 1); "
                     "profile: segments as --profile; inject: NAME [KEY=VALUE...]; detected: ID [TIME]")
    ctl.add_argument("--socket", help="the run's control socket (its ready file says where)")
    ctl.add_argument("--pid", help="the supervisor's pid, when several runs are up")
    ctl.add_argument("--json", action="store_true", help="print the whole reply as JSON")

    limit = sub.add_parser("find-limit", help="search the highest rate the receiver keeps up with (RFC 2544 style)",
                           description="Starts one `loggend run` and steers it by its control socket: trials "
                           "rising from --start-rate until one loses more than --loss percent, a binary search "
                           "to --precision, a confirmation trial. Exit 0: a limit found and confirmed; 1: none.")
    limit.add_argument("--feedback", required=True, help="what the receiver got: sink:http://HOST:PORT (a loggend "
                       "sink --dashboard), prometheus:http://HOST:PORT (with --feedback-query) or command:CMD")
    limit.add_argument("--feedback-query", default="", help="PromQL whose value is the receiver's running total")
    limit.add_argument("--start-rate", default="10k", help="first trial's events/s (default %(default)s)")
    limit.add_argument("--max-rate", default="10M", help="never above this (default %(default)s)")
    limit.add_argument("--precision", default="2", help="stop bisecting within this %% (default %(default)s)")
    limit.add_argument("--loss", default="0.1", help="a trial passes with at most this %% lost (default %(default)s)")
    limit.add_argument("--trial", default="30s", help="length of a trial (default %(default)s)")
    limit.add_argument("--confirm", default="", help="length of the confirmation trial (default 3x --trial)")
    limit.add_argument("--pause", default="5s", help="paused between trials, for the receiver to drain "
                       "(default %(default)s)")
    limit.add_argument("--max-time", default="1h", help="the whole search at most this long (default %(default)s)")
    limit.add_argument("--max-blocked", default="1", help="tcp, tls: a trial fails when the workers wait for the "
                       "receiver more than this %% of the time (default %(default)s)")
    limit.add_argument("--report-dir", default="", help="report.json and report.html (default reports/limit-DATE)")
    limit.add_argument("--config", help=f"the run's YAML config (default {DEFAULT_CONFIG_PATH} if it exists)")
    limit.add_argument("--scenario", action="append", default=[], metavar="NAME[:KEY=VALUE,...]",
                       help="inject this attack scenario at the start of every trial (repeatable; at = seconds "
                       "into the trial); the report shows detection by load level")
    limit.add_argument("--detect", action="append", default=[], help="as for run: how to learn a detection")
    limit.add_argument("--detect-query", default="", help="as for run")
    limit.add_argument("--detect-timeout", default=None, help="as for run")
    for flag, what in (("--target", "HOST or HOST:PORT"), ("--ports", "ports, as for run"),
                       ("--workers", "worker processes"), ("--cpus", "CPUs to pin workers to"),
                       ("--transport", "|".join(TRANSPORTS)), ("--protocol", "|".join(PROTOCOLS)),
                       ("--framing", "|".join(STREAM_FRAMINGS)), ("--format", "|".join(FORMATS))):
        limit.add_argument(flag, help=f"{what} (passed to the run)")

    src = sub.add_parser("sources", help="the log sources: `sources` lists them, `sources show NAME` prints "
                         "the first messages of one, each byte for byte as sent")
    src.add_argument("what", nargs="*", help="nothing (the list), or: show NAME")
    src.add_argument("--count", default="10", help="show: how many messages (default 10)")
    src.add_argument("--format", default="", help="show: one of the source's forms (default: its vendor's own)")
    src.add_argument("--seed", default="1", help="show: the same seed gives the same messages")
    src.add_argument("--utc", action="store_true", help="show: UTC timestamps")

    scn = sub.add_parser("scenarios", help="the attack scenarios: `scenarios` lists them with their keys and a "
                         "sample, `scenarios show NAME[:KEY=VALUE,...]` prints one instance's messages")
    scn.add_argument("what", nargs="*", help="nothing (the list), or: show NAME[:KEY=VALUE,...]")
    scn.add_argument("--seed", default="1", help="the background's seed (its devices and identities)")
    scn.add_argument("--sources", default="", help="the background's mix, as for run (default: the catalogue)")
    scn.add_argument("--format", default="", help="the run's --format")

    check = sub.add_parser("check-config", help="validate a config file (and the LOGGEN_* variables) without running")
    check.add_argument("path", nargs="?", default=DEFAULT_CONFIG_PATH)

    sink = sub.add_parser("sink", help="the dummy SIEM: receive, check sequences, count loss")
    sink.add_argument("--listen", default="127.0.0.1",
                      help="ADDRESS or ADDRESS:PORT (a port replaces --ports; 0 = any free one)")
    sink.add_argument("--ports", default="514-553", help="ports to receive on (ports below 1024 need root)")
    sink.add_argument("--processes", default="0", help="receiving processes sharing the ports (0 = one per CPU)")
    sink.add_argument("--dashboard", default="off",
                      help="ADDRESS:PORT for the sink's /metrics, /api/metrics and dashboard (default off)")
    sink.add_argument("--protocol", default="udp", help="udp, tcp or tls (default %(default)s); tcp and tls "
                      "take octet-counted and LF-framed messages alike (RFC 6587)")
    sink.add_argument("--tls-cert", default="", help="tls: the server certificate (PEM)")
    sink.add_argument("--tls-key", default="", help="tls: its private key (PEM)")
    sink.add_argument("--tls-ca", default="", help="tls: ask clients for a certificate signed by this CA (mutual TLS)")
    sink.add_argument("--dashboard-hosts", default="",
                      help="Host names the dashboard answers to besides its own addresses (* = any)")
    sink.add_argument("--no-gro", action="store_true",
                      help="one datagram per receive, as a SIEM's socket sees them (default: UDP_GRO trains)")
    sink.add_argument("--duration", default="0", help="stop after this long; 0 = until stopped")
    sink.add_argument("--idle-exit", default="0", help="stop after this long without a datagram")
    sink.add_argument("--run-id", default="", help="the run_id label of the sink's metrics (that of the fleet it "
                      "counts)")
    sink.add_argument("--share-ports", action="store_true", help="start even when another socket receives on "
                      "the ports (it takes a share of the datagrams: the loss verdict is then unknown)")

    tune = sub.add_parser("tune", help="kernel network tuning: apply (saving what was there), restore, show")
    tune.add_argument("action", choices=("apply", "restore", "show"))
    tune.add_argument("--state", default=None, help="where apply saves the previous values")
    tune.add_argument("--sysctl-root", default=None, help="a scratch copy of /proc/sys (for testing)")

    perf = sub.add_parser("perftest", help="generator + sink at a rate for a duration; report PASS / FAIL per target")
    perf.add_argument("--duration", default="30m", help="how long (default %(default)s)")
    perf.add_argument("--rate", default="4M", help="events/s to send (default %(default)s)")
    perf.add_argument("--scenario", action="append", default=[], metavar="NAME[:KEY=VALUE,...]",
                      help="inject this attack scenario during the run, as run does (repeatable); the report "
                      "shows whether and how late it was detected")
    perf.add_argument("--detect", action="append", default=[], help="as for run: how to learn a detection")
    perf.add_argument("--detect-query", default="", help="as for run")
    perf.add_argument("--detect-timeout", default=None, help="as for run")
    perf.add_argument("--workers", default="40", help="generator workers (default %(default)s)")
    perf.add_argument("--ports", default="55000-55039", help="loopback ports the sink receives on")
    perf.add_argument("--sink-processes", default="0", help="sink processes (0 = one per CPU)")
    perf.add_argument("--protocol", default="udp", help="udp, tcp or tls (default %(default)s; tls with a "
                      "throw-away certificate)")
    perf.add_argument("--framing", default="", help="tcp and tls: octet-counting (default) or lf")
    perf.add_argument("--format", default="rfc3164", help=f"{', '.join(FORMATS)} (default %(default)s)")
    perf.add_argument("--report-dir", default="", help="where report.json and report.html go (default reports/DATE)")
    perf.add_argument("--no-optimize", action="store_true", help="leave the kernel tuning alone")
    perf.add_argument("--target-eps", default="4M", help="events/s to sustain (default %(default)s)")
    perf.add_argument("--target-cpu", default="75", help="mean system CPU %% at most (default %(default)s)")
    perf.add_argument("--target-memory", default="12G", help="peak loggen memory at most (default %(default)s)")
    perf.add_argument("--target-loss", default="0.5", help="loss %% below (default %(default)s)")

    soak = sub.add_parser("soak", help="a long run into the local sink, watched for growing memory, descriptors, "
                          "threads and inexact counts; PASS / FAIL")
    soak.add_argument("--duration", default="1h", help="how long (default %(default)s)")
    soak.add_argument("--rate", default="200k", help="events/s to send (default %(default)s)")
    soak.add_argument("--workers", default="40", help="generator workers (default %(default)s)")
    soak.add_argument("--ports", default="61000-61039", help="loopback ports the sink receives on (default "
                      "%(default)s: above the kernel's ephemeral range, where no other program's free port is)")
    soak.add_argument("--interval", default="10s", help="between samples (default %(default)s)")
    soak.add_argument("--warmup", default="", help="left out of the slopes (default a tenth, at least 30 s)")
    soak.add_argument("--max-growth", default="1M", help="memory may grow less than this per hour (default 1M)")
    soak.add_argument("--report-dir", default="", help="where soak.json goes (default reports/soak-DATE)")

    bench = sub.add_parser("bench", help="speed tables: senders against the machine's ceiling, the sink, worker counts")
    bench.add_argument("--seconds", default="3", help="per measurement (default %(default)s)")
    bench.add_argument("--repeats", default="3", help="runs per figure; the median is printed (default %(default)s)")
    bench.add_argument("--yardstick", default="", help="folder of the C reference tools to compare with")
    bench.add_argument("--tables", default="senders,sink,workers,streams,render",
                       help="which tables, comma-separated (default %(default)s)")
    bench.add_argument("--worker-seconds", default="6", help="steady seconds per worker-count figure (default 6)")
    bench.add_argument("--worker-repeats", default="1", help="rounds of the worker-count table (default 1)")
    prof = sub.add_parser("profile", help="sample where a live worker spends its time: a flame graph (needs py-spy)",
                          description="Samples a process of a running `loggend run` with py-spy (root, or the "
                          "right to ptrace it). Processes are found by name: loggend-run (the supervisor), "
                          "loggend-w0.. (or loggend-p0.. serving several workers), loggend-sink0.., loggend-web.")
    prof.add_argument("--worker", default="0", help="worker index to profile (default %(default)s)")
    prof.add_argument("--name", help="any process of a run by name instead: loggend-sink0, loggend-web...")
    prof.add_argument("--supervisor", action="store_true", help="profile the supervisor itself (loggend-run)")
    prof.add_argument("--pid", help="the supervisor's pid, when several runs are up")
    prof.add_argument("--seconds", default="10", help="whole seconds to sample (default %(default)s)")
    prof.add_argument("--format", default="flamegraph", help="flamegraph (SVG, default), speedscope (JSON) or "
                      "raw (collapsed stacks)")
    prof.add_argument("--output", help="file to write (default ./profile-<name>.svg|.json|.txt)")
    prof.add_argument("--dump", action="store_true", help="print the stacks right now instead of sampling "
                      "(--format and --output do not apply)")
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict[str, tuple[str, object]]:
    """The flags the user gave, as config keys labelled with the flag's name."""
    out: dict[str, tuple[str, object]] = {}
    for dest, key in FLAG_KEYS.items():
        value = getattr(args, dest)
        if value is not None:
            out[key] = ("--" + dest.replace("_", "-"), value)
    if args.utc:
        out["messages.timezone"] = ("--utc", "utc")
    if args.no_sequence:
        out["messages.sequence"] = ("--no-sequence", False)
    if args.local_sink:
        out["local_sink"] = ("--local-sink", True)
    if args.quiet:
        out["quiet"] = ("--quiet", True)
    if args.sink_share_ports:
        out["sink_share_ports"] = ("--sink-share-ports", True)
    for dest, (label, key) in LEGACY_FLAGS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if dest == "legacy_duration":
            value = parse_duration(label, value, bare_unit="m")
        out[key] = (label, value)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    overrides = overrides_from_args(args)
    if args.config:
        args.config = os.path.abspath(args.config)     # a daemon re-reads it on SIGHUP from /

    def loader() -> Config:
        return load(args.config, overrides)

    config = loader()
    if config.local_sink:
        from loggend.control.fdlimit import ensure_fds
        ensure_fds(len(config.ports), "ports", format_ports(config.ports))
    start_at = parse_start_at("--start-at", args.start_at) if args.start_at is not None else None
    summary_path = os.path.abspath(args.summary_json) if args.summary_json else ""
    from loggend.content.scenarios import parse_all
    scenarios = parse_all("--scenario", args.scenario)
    truth_path = os.path.abspath(args.truth) if args.truth else ""
    if truth_path and not scenarios and not args.inject:
        raise UsageError("--truth: only with --scenario or --inject (the ground truth of what was injected)")
    from loggend.control.detect import DEFAULT_TIMEOUT, MAX_TIMEOUT, parse_detect
    detect = tuple(parse_detect("--detect", d, args.detect_query) for d in args.detect)
    if detect and not scenarios and not args.inject:
        raise UsageError("--detect: only with --scenario or --inject (what it detects)")
    if args.detect_query and not any(d.kind == "prometheus" for d in detect):
        raise UsageError("--detect-query: only with --detect prometheus:URL")
    detect_timeout = DEFAULT_TIMEOUT
    if args.detect_timeout is not None:
        detect_timeout = parse_duration("--detect-timeout", args.detect_timeout)
        if not 1 <= detect_timeout <= MAX_TIMEOUT:
            raise UsageError(f"--detect-timeout: {args.detect_timeout!r} is not allowed; expected 1s to 24h")
    ready_path = os.path.abspath(args.ready_file) if args.ready_file else ""
    if args.daemon and not args.pidfile:
        raise UsageError("--daemon: needs --pidfile PATH, so that the daemon can be found and stopped")
    if args.log_file and not args.daemon:
        raise UsageError("--log-file: only with --daemon (in the foreground the output is the terminal)")
    from loggend.control.supervisor import claim_outputs
    claim_outputs(summary_path, ready_path, config.control_socket)

    def main(pipe: ReadyPipe | None = None) -> int:
        from loggend.control.supervisor import Supervisor
        supervisor = Supervisor(config, loader=loader, summary_path=summary_path, ready_path=ready_path,
                                on_ready=pipe.ready if pipe else None, start_at=start_at, scenarios=scenarios,
                                truth_path=truth_path, detect=detect, detect_timeout=detect_timeout,
                                injector=args.inject)
        code = supervisor.run()
        if pipe is not None and code != EXIT_OK:
            pipe.failed(supervisor.failure or f"stopped with exit status {code}")
        return code

    if not args.pidfile:
        return main()
    from loggend.control.daemon import AlreadyRunning, PidFile, run_detached
    pidfile = PidFile(args.pidfile)
    try:
        pidfile.acquire()
    except AlreadyRunning as err:
        journal.write(str(err), journal.ERR)
        return err.exit_code
    except OSError as err:
        raise UsageError(f"--pidfile: cannot open {args.pidfile!r}: {err.strerror}") from None
    if not args.daemon:
        pidfile.write(os.getpid())
        try:
            return main()
        finally:
            pidfile.release()
    log_path = os.path.abspath(args.log_file or os.path.splitext(pidfile.path)[0] + ".log")
    try:
        from loggend.files import regular_or_none
        regular_or_none(log_path, "--log-file")           # appended to, never through a link
        open(log_path, "a").close()
    except OSError as err:
        pidfile.release()
        raise UsageError(f"--log-file: cannot write {log_path!r}: {err.strerror}") from None
    except UsageError:
        pidfile.release()
        raise
    return run_detached(pidfile, log_path, main)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load(args.path)
    print(f"{config.source}: ok: {config.describe()}")
    return 0


def cmd_sink(args: argparse.Namespace) -> int:
    from loggend.config import parse_server_tls
    from loggend.control.sinkd import SinkCommand
    from loggend.parsers import parse_choice
    from loggend.sink.spec import SinkSpec
    from loggend.web.child import WebSettings
    host, port = split_target("--listen", args.listen, lowest_port=0)
    ports = (port,) if port is not None else parse_ports("--ports", args.ports)
    processes = parse_int("--processes", args.processes, 0, MAX_SINK_PROCESSES) or len(os.sched_getaffinity(0))
    dashboard = parse_dashboard("--dashboard", args.dashboard)
    protocol = parse_choice("--protocol", args.protocol, PROTOCOLS)
    tls = parse_server_tls(("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key), ("--tls-ca", args.tls_ca))
    if (protocol == "tls") != (tls is not None):
        raise UsageError("--tls-cert and --tls-key: needed with --protocol tls, and only with it")
    hosts = parse_hosts("--dashboard-hosts", args.dashboard_hosts)
    from loggend.control.fdlimit import ensure_fds
    ensure_fds(len(ports), "--ports", args.ports)
    return SinkCommand(
        SinkSpec(resolve_host("--listen", host), ports, protocol, gro=not args.no_gro, tls=tls,
                 proofs=registry.proofs()),
        processes=processes,
        duration=parse_duration("--duration", args.duration),
        idle_exit=parse_duration("--idle-exit", args.idle_exit),
        dashboard=WebSettings(*dashboard, hosts=hosts) if dashboard else None,
        run_id=parse_run_id("--run-id", args.run_id),
        share=args.share_ports,
    ).run()


def cmd_bench(args: argparse.Namespace) -> int:
    from loggend.parsers import parse_choice
    from loggend.tools.bench import TABLES, run_bench
    tables = tuple(parse_choice("--tables", t.strip(), TABLES) for t in args.tables.split(",") if t.strip())
    return run_bench(
        seconds=parse_duration("--seconds", args.seconds),
        repeats=parse_int("--repeats", args.repeats, 1, 99),
        yardstick=args.yardstick,
        tables=tables,
        worker_seconds=parse_duration("--worker-seconds", args.worker_seconds),
        worker_repeats=parse_int("--worker-repeats", args.worker_repeats, 1, 99),
    )


def cmd_tune(args: argparse.Namespace) -> int:
    from loggend.control.tuning import STATE_PATH, SYSCTL_ROOT, Tuner, TuningError
    tuner = Tuner(root=args.sysctl_root or SYSCTL_ROOT, state=args.state or STATE_PATH)
    try:
        if args.action == "show":
            print(f"{'sysctl':32} {'current':>22} {'loggen':>22} {'saved':>22}")
            for key, current, value, saved in tuner.show():
                print(f"{key:32} {current:>22} {value:>22} {saved or '-':>22}")
            return 0
        had_state = tuner.saved() is not None
        changed = tuner.apply() if args.action == "apply" else tuner.restore()
    except TuningError as err:
        journal.write(f"tune {args.action}: {err}", journal.ERR)
        return EXIT_FAILURE
    for key, before, after in changed:
        print(f"tune: {key} {before} -> {after}")
    if args.action == "apply":
        print(f"tune: applied ({len(changed)} changed); previous values in {tuner.state}; "
              "`loggend tune restore` puts them back")
    else:
        print(f"tune: restored ({len(changed)} changed)" if had_state else "tune: nothing to restore")
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from loggend.config import MAX_WORKERS
    from loggend.files import check_writable_dir
    from loggend.parsers import parse_rate, parse_size
    from loggend.tools.soak import Soak
    duration = parse_duration("--duration", args.duration)
    interval = parse_duration("--interval", args.interval)
    if not duration or not interval or interval > duration:
        raise UsageError(f"--duration {args.duration} --interval {args.interval}: both above 0, the interval "
                         "at most the duration")
    rate = parse_rate("--rate", args.rate)
    report_dir = Path(args.report_dir or time.strftime("reports/soak-%Y%m%d-%H%M%S"))
    check_writable_dir("--report-dir", report_dir)
    return Soak(duration=duration, rate=str(int(rate)) if rate.is_integer() else str(rate),
                workers=parse_int("--workers", args.workers, 1, MAX_WORKERS),
                ports=format_ports(parse_ports("--ports", args.ports)), interval=interval, report_dir=report_dir,
                max_growth=parse_size("--max-growth", args.max_growth),
                warmup=parse_duration("--warmup", args.warmup) if args.warmup else None).run()


def cmd_perftest(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from loggend.config import MAX_WORKERS
    from loggend.parsers import parse_choice, parse_rate, parse_size
    from loggend.tools.perftest import PerfTest, Targets
    duration = parse_duration("--duration", args.duration)
    if not duration:
        raise UsageError("--duration: 0 is not allowed; expected a duration such as 20s or 30m")
    rate = parse_rate("--rate", args.rate)
    targets = Targets(
        events_per_second=parse_rate("--target-eps", args.target_eps),
        cpu_percent=parse_percent("--target-cpu", args.target_cpu),
        memory_bytes=parse_size("--target-memory", args.target_memory),
        loss_percent=parse_percent("--target-loss", args.target_loss),
    )
    report_dir = Path(args.report_dir or time.strftime("reports/%Y%m%d-%H%M%S"))
    protocol = parse_choice("--protocol", args.protocol, PROTOCOLS)
    framing = parse_choice("--framing", args.framing, STREAM_FRAMINGS) if args.framing else ""
    if framing and protocol == "udp":
        raise UsageError("--framing: only with --protocol tcp or tls")
    if protocol == "tls" and framing == "lf":
        raise UsageError("--framing: 'lf' is not allowed with tls; RFC 5425 requires octet-counting")
    return PerfTest(duration=duration, rate=str(int(rate)) if rate.is_integer() else str(rate),
                    workers=parse_int("--workers", args.workers, 1, MAX_WORKERS),
                    ports=format_ports(parse_ports("--ports", args.ports)), report_dir=report_dir, targets=targets,
                    optimize=not args.no_optimize,
                    sink_processes=parse_int("--sink-processes", args.sink_processes, 0, MAX_SINK_PROCESSES),
                    protocol=protocol, framing=framing, fmt=parse_choice("--format", args.format, FORMATS),
                    scenarios=tuple(args.scenario), detect_args=perftest_detect_args(args)).run()


def perftest_detect_args(args: argparse.Namespace) -> tuple[str, ...]:
    """perftest's --scenario (checked here: exit 2 now, not in the run) and its --detect flags for the run."""
    _, flags = scenario_args(args)
    return tuple(f for f in flags if f != "--inject")


def cmd_profile(args: argparse.Namespace) -> int:
    from loggend.config import MAX_WORKERS
    from loggend.parsers import parse_choice
    from loggend.tools.profile import (
        FORMATS,
        default_output,
        process_comm,
        process_name,
        profile,
        served_by,
        worker_process,
    )
    worker = parse_int("--worker", args.worker, 0, MAX_WORKERS - 1)
    label = "--supervisor" if args.supervisor else "--name" if args.name else "--worker"
    fmt = parse_choice("--format", args.format, FORMATS)
    seconds = parse_int("--seconds", args.seconds, 1, 3600)
    parent = parse_int("--pid", args.pid, 1, 2**22) if args.pid else None
    name, pid = process_name(worker, args.name, args.supervisor), None
    if label == "--worker":
        pid, why = served_by(worker, parent)        # the run knows; the names are a guess without it
        if pid == 0:
            journal.write(why, journal.ERR)
            return EXIT_FAILURE
        name = process_comm(pid) if pid else worker_process(worker, parent)
        if name != f"loggend-w{worker}":           # a process serving several workers
            guess = "" if pid else f"; a guess from the process names: {why}"
            journal.write(f"worker {worker} is served by {name} (worker_processes: process p serves workers p, "
                          f"p+P, p+2P...){guess}", journal.NOTICE)
    return profile(name, label, seconds, args.output or default_output(name, fmt), fmt, args.dump, parent, pid)


def cmd_ctl(args: argparse.Namespace) -> int:
    import json

    from loggend.control.ctlsocket import ControlError, find_socket, request
    from loggend.parsers import parse_rate
    from loggend.profiles import parse_profile
    line = args.action
    if len(args.value) > 1 and args.action not in ("inject", "detected"):
        raise UsageError(f"ctl {args.action}: takes one value (got {' '.join(args.value)!r})")
    if args.action in ("inject", "detected"):
        if not args.value:
            raise UsageError(f"ctl {args.action}: needs a value, e.g. " +
                             ("inject ssh-bruteforce attempts=10" if args.action == "inject" else
                              "detected ssh-bruteforce-1 1796603273.4"))
        if args.action == "inject":
            from loggend.content.scenarios import get as get_scenario
            from loggend.content.scenarios import parse_pairs
            scenario = get_scenario(args.value[0])
            if scenario is None:
                from loggend.content.scenarios import names
                raise UsageError(f"ctl inject: {args.value[0]!r} is not allowed; expected a scenario: "
                                 + ", ".join(names()))
            parse_pairs("ctl inject", scenario, args.value[1:], " ".join(args.value))
        line = f"{args.action} {' '.join(args.value)}"
        args.value = None
    elif args.value:
        args.value = args.value[0]
    else:
        args.value = None
    if args.action in ("rate", "profile"):
        if not args.value:
            raise UsageError(f"ctl {args.action}: needs a value, e.g. " +
                             ("250k" if args.action == "rate" else "ramp:10k-200k/60s"))
        if args.action == "rate":
            parse_rate("rate", args.value)
        elif parse_profile("profile", args.value) is None:
            raise UsageError("ctl profile: needs segments, e.g. ramp:10k-200k/60s")
        line = f"{args.action} {args.value}"
    elif args.value:
        raise UsageError(f"ctl {args.action}: takes no value (got {args.value!r})")
    try:
        path = args.socket or find_socket(parse_int("--pid", args.pid, 1, 2**22) if args.pid else None)
        reply = request(path, line)
    except ControlError as err:
        journal.write(f"ctl: {err}", journal.ERR)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(reply, indent=1))
    elif args.action == "status" and reply.get("ok"):
        print(status_text(reply["status"]))
    elif reply.get("ok"):
        print(reply.get("message", ""))
    else:
        journal.write(f"ctl {line}: {reply.get('message', '')}", journal.ERR)
    if reply.get("usage"):
        return EXIT_USAGE
    return 0 if reply.get("ok") else EXIT_FAILURE


def status_text(st: dict[str, Any]) -> str:
    """``loggend ctl status`` for people."""
    target = "unlimited" if st["unlimited"] else f"{st['target_rate']:,.0f} ev/s now"
    planned = st.get("planned")
    lines = [f"state     {st['state']} (pid {st['pid']}, {st['workers']} workers -> {st['target']})",
             f"target    {target}, following {st['following']} ({st['phase_seconds']} s in)",
             f"sent      {st['sent']:,}" + (f" of {planned:,} planned" if isinstance(planned, int) else ""),
             f"live      {plural(st['changes'], 'change')}, paused {st['paused_seconds']} s in all"]
    sink = st.get("sink")
    if isinstance(sink, dict):
        lines.append(f"sink      received {sink['received']:,}, lost {sink['lost']:,}")
    if st.get("end_in_seconds") is not None:
        lines.append(f"ends in   {st['end_in_seconds']} s")
    return "\n".join(lines)


def cmd_find_limit(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from loggend.parsers import parse_rate
    from loggend.tools.feedback import parse_feedback
    from loggend.tools.findlimit import FindLimit
    from loggend.tools.limitsearch import Settings
    feedback = parse_feedback(args.feedback, args.feedback_query)
    start, top = parse_rate("--start-rate", args.start_rate), parse_rate("--max-rate", args.max_rate)
    if not 0 < start <= top:
        raise UsageError(f"--start-rate {args.start_rate} / --max-rate {args.max_rate}: expected 0 < start rate "
                         "<= max rate")
    precision = parse_percent("--precision", args.precision)
    if not 0 < precision < 100:
        raise UsageError(f"--precision: {args.precision!r} is not allowed; expected a percentage above 0 and below 100")
    trial = parse_duration("--trial", args.trial)
    confirm = parse_duration("--confirm", args.confirm) if args.confirm else 3 * trial
    for flag, value in (("--trial", trial), ("--confirm", confirm)):
        if not value > 0:
            raise UsageError(f"{flag}: 0 is not allowed; expected a duration such as 30s")
    settings = Settings(start_rate=start, max_rate=top, precision=precision / 100,
                        loss_percent=parse_percent("--loss", args.loss), trial=trial, confirm=confirm,
                        pause=parse_duration("--pause", args.pause),
                        max_time=parse_duration("--max-time", args.max_time),
                        max_blocked=parse_percent("--max-blocked", args.max_blocked))
    if settings.trial + settings.pause > settings.max_time:
        raise UsageError(f"--max-time {args.max_time}: shorter than one trial and its pause")
    run_args = ["--config", os.path.abspath(args.config)] if args.config else []
    overrides = {}
    for flag in ("target", "ports", "workers", "cpus", "transport", "protocol", "framing", "format"):
        value = getattr(args, flag)
        if value is not None:
            run_args += [f"--{flag}", value]
            overrides[flag] = (f"--{flag}", value)
    run = load(os.path.abspath(args.config) if args.config else None, overrides)      # bad run flags: exit 2 now
    inject, detect_args = scenario_args(args)
    report_dir = Path(args.report_dir or time.strftime("reports/limit-%Y%m%d-%H%M%S"))
    return FindLimit(settings, feedback, run_args + detect_args, report_dir, protocol=run.protocol,
                     inject=inject).run()


def scenario_args(args: argparse.Namespace) -> tuple[tuple[str, ...], list[str]]:
    """perftest's and find-limit's --scenario/--detect...: the ``ctl inject`` lines and the run's flags."""
    from loggend.content.scenarios import parse_all
    from loggend.control.detect import MAX_TIMEOUT, parse_detect
    requests = parse_all("--scenario", args.scenario)
    lines = tuple(" ".join([r.name, *(f"{k}={v}" for k, v in r.given)]) for r in requests)
    for d in args.detect:
        parse_detect("--detect", d, args.detect_query)
    if args.detect and not requests:
        raise UsageError("--detect: only with --scenario (what it detects)")
    if args.detect_query and not args.detect:
        raise UsageError("--detect-query: only with --detect prometheus:URL")
    flags: list[str] = ["--inject"] if requests else []
    for d in args.detect:
        flags += ["--detect", d]
    if args.detect_query:
        flags += ["--detect-query", args.detect_query]
    if args.detect_timeout is not None:
        timeout = parse_duration("--detect-timeout", args.detect_timeout)
        if not 1 <= timeout <= MAX_TIMEOUT:
            raise UsageError(f"--detect-timeout: {args.detect_timeout!r} is not allowed; expected 1s to 24h")
        flags += ["--detect-timeout", f"{timeout:g}s"]
    return lines, flags


def parse_percent(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise UsageError(f"{key}: {text!r} is not allowed; expected a percentage from 0 to 100")
    return value


def cmd_sources(args: argparse.Namespace) -> int:
    from loggend.tools.sources import MAX_SHOW, listing, show
    if not args.what:
        print(listing())
        return EXIT_OK
    if args.what[0] != "show" or len(args.what) != 2:
        raise UsageError(f"sources {' '.join(args.what)}: expected `loggend sources` or `loggend sources show NAME`")
    count = parse_int("--count", args.count, 1, MAX_SHOW)
    seed = parse_int("--seed", args.seed, 0, 2**63 - 1)
    return show(args.what[1], count, args.format, seed, args.utc)


def cmd_scenarios(args: argparse.Namespace) -> int:
    from loggend.content.mix import parse_sources
    from loggend.content.scenarios import Background
    from loggend.tools.scenarios import listing, show
    seed = parse_int("--seed", args.seed, 0, 2**63 - 1)
    mix = tuple(name for name, _ in parse_sources("--sources", args.sources)) if args.sources else ()
    background = Background(seed=seed, mix=mix, form=args.format)
    if not args.what:
        print(listing(background))
        return EXIT_OK
    if args.what[0] != "show" or len(args.what) != 2:
        raise UsageError(f"scenarios {' '.join(args.what)}: expected `loggend scenarios` or "
                         "`loggend scenarios show NAME[:KEY=VALUE,...]`")
    return show(args.what[1], background)


COMMANDS = {"perftest": cmd_perftest, "soak": cmd_soak, "sources": cmd_sources, "scenarios": cmd_scenarios,
            "run": cmd_run, "check-config": cmd_check_config, "sink": cmd_sink, "bench": cmd_bench, "tune": cmd_tune,
            "profile": cmd_profile, "ctl": cmd_ctl, "find-limit": cmd_find_limit}


def main(argv: list[str] | None = None) -> int:
    from loggend.control.fdlimit import raise_nofile
    raise_nofile()                          # children inherit it: a sink may open many ports
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as err:
        text = str(err)
        if len(text) > ERROR_LINE_CHARS:               # one readable line, whatever was quoted in it
            text = f"{text[:ERROR_LINE_CHARS]}... ({len(text):,} characters)"
        journal.write(f"error: {text}", journal.ERR)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:                     # `| head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        return EXIT_OK
