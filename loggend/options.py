"""Every command of ``loggend`` and the options that are not config keys, as data.

``loggend.cli`` builds argparse from these and from the settings registry (``loggend run``'s flags are
the keys' flags, ``loggend.settings``); the man page and the shell completion are made from the same
(``loggend.tools.reference``). Values are checked by each command, with the parsers of
``loggend.parsers``: one line and exit 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

from loggend import settings
from loggend.config import DEFAULT_CONFIG_PATH
from loggend.engine.formats import FORMATS
from loggend.engine.spec import PROTOCOLS, STREAM_FRAMINGS, TRANSPORTS

HIDDEN = argparse.SUPPRESS


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]                # ("--count",) or ("action",) for a positional
    help: str
    default: str | None = None
    choices: tuple[str, ...] = ()
    switch: bool = False                  # a flag without a value (store_true)
    repeat: bool = False                  # a flag that may be given several times (a list)
    nargs: str | None = None
    required: bool = False
    complete: str = ""                    # "file" or "dir": what the shell completes for it
    dest: str = ""
    key: str = ""                         # the config key it sets (run's flags)

    @property
    def positional(self) -> bool:
        return not self.flags[0].startswith("-")

    @property
    def hidden(self) -> bool:
        return self.help == HIDDEN

    def argparse_kwargs(self) -> dict[str, object]:
        kw: dict[str, object] = {"help": self.help}
        if self.switch:
            kw["action"] = "store_true"
        if self.repeat:
            kw["action"] = "append"
        if self.default is not None:
            kw["default"] = self.default
        if self.choices and self.positional:
            kw["choices"] = self.choices
        for name in ("nargs", "dest"):
            if getattr(self, name):
                kw[name] = getattr(self, name)
        if self.required:
            kw["required"] = True
        return kw


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str
    options: tuple[Option, ...]


def O(*flags: str, **kw: object) -> Option:  # noqa: E743  (a row of the tables below)
    return Option(flags, **kw)  # type: ignore[arg-type]


def run_options() -> Iterator[Option]:
    """``loggend run``: --config, every key's flag and switch (the registry), the run's own options, and
    the original tool's single-dash flags (hidden)."""
    yield O("--config", help=f"YAML config (default {DEFAULT_CONFIG_PATH} if it exists)", complete="file")
    for s in settings.SETTINGS:
        if s.flag:
            yield O(s.flag, help=s.help, choices=s.choices, complete=s.complete, key=s.key, repeat=s.repeat)
        if s.switch:
            yield O(s.switch[0], help=s.switch[2], switch=True, key=s.key)
    yield from RUN_OWN
    for s in settings.SETTINGS:
        if s.legacy:
            yield O(s.legacy, help=HIDDEN, dest=LEGACY_DEST + s.key, key=s.key)
    yield O(LEGACY_DASHBOARD_PORT, help=HIDDEN, dest=LEGACY_DEST + "dashboard_port", key="dashboard_port")


LEGACY_DEST = "legacy:"
LEGACY_DASHBOARD_PORT = "-dashboard-port"
RUN_DESCRIPTION = (
    "Every flag overrides the same key of the config file and its LOGGEN_* environment variable (LOGGEN_RATE, "
    "LOGGEN_MESSAGES_SEED...): file < environment < flags. Without a config, rate and duration are 0: it sends "
    "as fast as it can until stopped. Units: a rate's m/M is million (--rate 4m = 4,000,000 ev/s); a "
    "duration's m is minutes (--duration 4m = 240 s) and a bare number is seconds (--duration 5 = 5 s; only the "
    "original tool's -duration=5 means minutes).")
RUN_OWN = (
    O("--start-at", help="set up, then start at this time: RFC 3339 (2026-11-29T10:53:00Z) or +30s (after the "
      "command was started)"),
    O("--summary-json", help="also write the end-of-run summary to this file as JSON", complete="file"),
    O("--ready-file", help="once every worker sends, write JSON here: pid, dashboard URL, target", complete="file"),
    O("--daemon", switch=True, help="detach from the shell once every worker sends (exit 0), or say why not "
      "(exit 1); needs --pidfile"),
    O("--pidfile", help="write the pid here; refuse to start if it is held", complete="file"),
    O("--log-file", help="daemon output (default: the pidfile's name with .log)", complete="file"),
)
PASSED_TO_RUN = (("--target", "HOST or HOST:PORT", ()), ("--ports", "ports, as for run", ()),
                 ("--workers", "worker processes", ()), ("--cpus", "CPUs to pin workers to", ()),
                 ("--transport", "|".join(TRANSPORTS), TRANSPORTS), ("--protocol", "|".join(PROTOCOLS), PROTOCOLS),
                 ("--framing", "|".join(STREAM_FRAMINGS), STREAM_FRAMINGS), ("--format", "|".join(FORMATS), FORMATS))

DETECT_OPTIONS = (
    O("--detect", repeat=True, help="as for run: how to learn a detection (repeatable)"),
    O("--detect-query", default="", help="as for run: with --detect prometheus:URL, the PromQL"),
    O("--detect-timeout", help="as for run: an instance not detected this long after its first event is missed"),
)

COMMANDS: tuple[Command, ...] = (
    Command("run", "send syslog to a target (the supervisor daemon)", RUN_DESCRIPTION, ()),
    Command("ctl", "change a running instance's rate: rate R, profile SPEC, pause, resume, status, reload; "
            "inject a scenario, report a detection",
            "Talks to the control socket of a running `loggend run` (root or the run's own user only). Without "
            "--socket or --pid it finds the one run in the runtime directory.", (
                O("action", help="status, rate, profile, pause, resume, reload, inject or detected",
                  choices=("status", "rate", "profile", "pause", "resume", "reload", "inject", "detected")),
                O("value", nargs="*", help="rate: events/s (250k; 0 = unlimited, else >= 1); profile: segments "
                  "as --profile; inject: NAME [KEY=VALUE...]; detected: ID [TIME]"),
                O("--socket", help="the run's control socket (its ready file says where)", complete="file"),
                O("--pid", help="the supervisor's pid, when several runs are up"),
                O("--json", switch=True, help="print the whole reply as JSON"),
                O("--force", switch=True, help="rate, profile, reload: go past max_rate, or more than 10 times the "
                  "rate in force"))),
    Command("find-limit", "search the highest rate the receiver keeps up with (RFC 2544 style)",
            "Starts one `loggend run` and steers it by its control socket: trials rising from --start-rate until "
            "one loses more than --loss percent, a binary search to --precision, a confirmation trial. Exit 0: a "
            "limit found and confirmed; 1: none.", (
                O("--feedback", required=True, help="what the receiver got: sink:http://HOST:PORT (a loggend sink "
                  "--dashboard), prometheus:http://HOST:PORT (with --feedback-query) or command:CMD"),
                O("--feedback-query", default="", help="PromQL whose value is the receiver's running total"),
                O("--start-rate", default="10k", help="first trial's events/s (default %(default)s)"),
                O("--max-rate", default="10M", help="never above this (default %(default)s)"),
                O("--precision", default="2", help="stop bisecting within this %% (default %(default)s)"),
                O("--loss", default="0.1", help="a trial passes with at most this %% lost (default %(default)s)"),
                O("--trial", default="30s", help="length of a trial (default %(default)s)"),
                O("--confirm", default="", help="length of the confirmation trial (default 3x --trial)"),
                O("--pause", default="5s", help="paused between trials, for the receiver to drain (default "
                  "%(default)s)"),
                O("--max-time", default="1h", help="the whole search at most this long (default %(default)s)"),
                O("--max-blocked", default="1", help="tcp, tls: a trial fails when the workers wait for the "
                  "receiver more than this %% of the time (default %(default)s)"),
                O("--report-dir", default="", help="report.json and report.html (default reports/limit-DATE)",
                  complete="dir"),
                O("--config", help=f"the run's YAML config (default {DEFAULT_CONFIG_PATH} if it exists)",
                  complete="file"),
                O("--scenario", repeat=True, help="inject this attack scenario at the start of every trial "
                  "(repeatable; at = seconds into the trial); the report shows detection by load level"),
                *DETECT_OPTIONS,
                *(O(flag, help=f"{what} (passed to the run)", choices=choices)
                  for flag, what, choices in PASSED_TO_RUN))),
    Command("sources", "the log sources: `sources` lists them, `sources show NAME` prints the first messages of "
            "one, each byte for byte as sent", "", (
                O("what", nargs="*", help="nothing (the list), or: show NAME"),
                O("--count", default="10", help="show: how many messages (default 10)"),
                O("--format", default="", help="show: one of the source's forms (default: its vendor's own)"),
                O("--seed", default="1", help="show: the same seed gives the same messages"),
                O("--utc", switch=True, help="show: UTC timestamps"))),
    Command("scenarios", "the attack scenarios: `scenarios` lists them with their keys and a sample, "
            "`scenarios show NAME[:KEY=VALUE,...]` prints one instance's messages", "", (
                O("what", nargs="*", help="nothing (the list), or: show NAME[:KEY=VALUE,...]"),
                O("--seed", default="1", help="the background's seed (its devices and identities)"),
                O("--sources", default="", help="the background's mix, as for run (default: the catalogue)"),
                O("--format", default="", help="the run's --format"))),
    Command("check-config", "validate a config file (and the LOGGEN_* variables) without running", "", (
        O("path", nargs="?", default=DEFAULT_CONFIG_PATH, help=f"the config file (default {DEFAULT_CONFIG_PATH})",
          complete="file"),)),
    Command("sink", "the dummy SIEM: receive, check sequences, count loss", "", (
        O("--listen", default="127.0.0.1", help="ADDRESS or ADDRESS:PORT (a port replaces --ports; 0 = any free one)"),
        O("--ports", default=str(settings.BY_KEY["ports"].default), help="ports to receive on (ports below 1024 need "
          "root)"),
        O("--processes", default="0", help="receiving processes sharing the ports (0 = one per CPU)"),
        O("--dashboard", default="off", help="ADDRESS:PORT for the sink's /metrics, /api/metrics and dashboard "
          "(default off)"),
        O("--protocol", default="udp", choices=PROTOCOLS, help="udp, tcp or tls (default %(default)s); tcp and tls "
          "take octet-counted and LF-framed messages alike (RFC 6587)"),
        O("--tls-cert", default="", help="tls: the server certificate (PEM)", complete="file"),
        O("--tls-key", default="", help="tls: its private key (PEM)", complete="file"),
        O("--tls-ca", default="", help="tls: ask clients for a certificate signed by this CA (mutual TLS)",
          complete="file"),
        O("--dashboard-hosts", default="", help="Host names the dashboard answers to besides its own addresses "
          "(* = any)"),
        O("--no-gro", switch=True, help="one datagram per receive, as a SIEM's socket sees them (default: UDP_GRO "
          "trains)"),
        O("--duration", default="0", help="stop after this long; 0 = until stopped"),
        O("--idle-exit", default="0", help="once messages have come, stop after this long without one (0 = never)"),
        O("--run-id", default="", help="the run_id label of the sink's metrics (that of the fleet it counts)"),
        O("--expect-instances", default="0", help="the fleet's instance count: instances the sink never heard "
          "from are named and the loss is then unknown, not 0 (default 0: not checked)"),
        O("--share-ports", switch=True, help="start even when another socket receives on the ports (it takes a "
          "share of the datagrams: the loss verdict is then unknown)"))),
    Command("tune", "kernel network tuning: apply (saving what was there), restore, show", "", (
        O("action", help="apply, restore or show", choices=("apply", "restore", "show")),
        O("--state", help="where apply saves the previous values", complete="file"),
        O("--sysctl-root", help="a scratch copy of /proc/sys (for testing)", complete="dir"))),
    Command("perftest", "generator + sink at a rate for a duration; report PASS / FAIL per target", "", (
        O("--duration", default="30m", help="how long (default %(default)s)"),
        O("--rate", default="4M", help="events/s to send (default %(default)s)"),
        O("--workers", default="40", help="generator workers (default %(default)s)"),
        O("--ports", default="55000-55039", help="loopback ports the sink receives on"),
        O("--sink-processes", default="0", help="sink processes (0 = one per CPU)"),
        O("--protocol", default="udp", choices=PROTOCOLS, help="udp, tcp or tls (default %(default)s; tls with a "
          "throw-away certificate)"),
        O("--framing", default="", choices=STREAM_FRAMINGS, help="tcp and tls: octet-counting (default) or lf"),
        O("--format", default="rfc3164", choices=FORMATS, help=f"{', '.join(FORMATS)} (default %(default)s)"),
        O("--report-dir", default="", help="where report.json and report.html go (default reports/DATE)",
          complete="dir"),
        O("--no-optimize", switch=True, help="leave the kernel tuning alone"),
        O("--target-eps", default="4M", help="events/s to sustain (default %(default)s)"),
        O("--target-cpu", default="75", help="mean system CPU %% at most (default %(default)s)"),
        O("--target-memory", default="12G", help="peak loggen memory at most (default %(default)s)"),
        O("--target-loss", default="0.5", help="loss %% below (default %(default)s)"),
        O("--scenario", repeat=True, help="inject this attack scenario during the run, as run does (repeatable); "
          "the report shows whether and how late it was detected"),
        *DETECT_OPTIONS)),
    Command("soak", "a long run into the local sink, watched for growing memory, descriptors, threads and inexact "
            "counts; PASS / FAIL", "", (
                O("--duration", default="1h", help="how long (default %(default)s)"),
                O("--rate", default="200k", help="events/s to send (default %(default)s)"),
                O("--workers", default="40", help="generator workers (default %(default)s)"),
                O("--ports", default="61000-61039", help="loopback ports the sink receives on (default %(default)s: "
                  "above the kernel's ephemeral range, where no other program's free port is)"),
                O("--interval", default="10s", help="between samples (default %(default)s)"),
                O("--warmup", default="", help="left out of the slopes (default a tenth, at least 30 s)"),
                O("--max-growth", default="1M", help="memory may grow less than this per hour (default 1M)"),
                O("--report-dir", default="", help="where soak.json goes (default reports/soak-DATE)",
                  complete="dir"))),
    Command("bench", "speed tables: senders against the machine's ceiling, the sink, worker counts", "", (
        O("--seconds", default="3", help="per measurement (default %(default)s)"),
        O("--repeats", default="3", help="runs per figure; the median is printed (default %(default)s)"),
        O("--yardstick", default="", help="folder of the C reference tools to compare with", complete="dir"),
        O("--tables", default="senders,sink,workers,streams,render",
          help="which tables, comma-separated (default %(default)s)"),
        O("--worker-seconds", default="6", help="steady seconds per worker-count figure (default 6)"),
        O("--worker-repeats", default="1", help="rounds of the worker-count table (default 1)"))),
    Command("profile", "sample where a live worker spends its time: a flame graph (needs py-spy)",
            "Samples a process of a running `loggend run` with py-spy (root, or the right to ptrace it). Processes "
            "are found by name: loggend-run (the supervisor), loggend-w0.. (or loggend-p0.. serving several "
            "workers), loggend-sink0.., loggend-web.", (
                O("--worker", default="0", help="worker index to profile (default %(default)s)"),
                O("--name", help="any process of a run by name instead: loggend-sink0, loggend-web..."),
                O("--supervisor", switch=True, help="profile the supervisor itself (loggend-run)"),
                O("--pid", help="the supervisor's pid, when several runs are up"),
                O("--seconds", default="10", help="whole seconds to sample (default %(default)s)"),
                O("--format", default="flamegraph", choices=("flamegraph", "speedscope", "raw"),
                  help="flamegraph (SVG, default), speedscope (JSON) or raw (collapsed stacks)"),
                O("--output", help="file to write (default ./profile-<name>.svg|.json|.txt)", complete="file"),
                O("--dump", switch=True, help="print the stacks right now instead of sampling (--format and "
                  "--output do not apply)"))),
)


def options(command: Command) -> tuple[Option, ...]:
    """A command's options; ``run``'s are made from the settings registry."""
    return tuple(run_options()) if command.name == "run" else command.options
