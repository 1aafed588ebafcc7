"""Command line: ``loggend run | ctl | find-limit | check-config | sink | perftest | soak | tune | bench | profile |
sources | scenarios``, built from ``loggend.options`` (the commands) and ``loggend.settings`` (run's flags: one
per key).

Bad input is one line and exit 2.

``run`` reads ``/etc/loggen.yaml`` (or ``--config PATH``), lays the ``LOGGEN_*`` environment
variables over it and its flags over both (file < environment < flags). The original tool's
flags keep working: ``-target=HOST``, ``-dashboard-port=PORT``, ``-duration=MINUTES`` (a bare
number is minutes there, seconds in ``--duration``) and ``-optimize=true|false``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from loggend.control.signals import hold_early

if sys.argv[1:2] in (["run"], ["sink"]):        # before the imports below (a second or more): a SIGHUP
    hold_early()                                # while they load must reload, not end the run

from loggend import __version__, options, settings  # noqa: E402
from loggend.config import DASHBOARD_PORT, Config, as_written, load
from loggend.content import registry
from loggend.engine import journal
from loggend.engine.spec import PROTOCOLS
from loggend.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError
from loggend.fleet import MAX_INSTANCES, parse_run_id, parse_start_at
from loggend.parsers import (
    format_ports,
    parse_dashboard,
    parse_duration,
    parse_hosts,
    parse_int,
    parse_ports,
    parse_run_duration,
    resolve_host,
    split_target,
)
from loggend.settings import MAX_SINK_PROCESSES
from loggend.tools import commands

if TYPE_CHECKING:
    from loggend.control.daemon import ReadyPipe

ERROR_LINE_CHARS = 1000       # an error line longer than this is cut


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2, and takes no abbreviation (``--rat 1k``
    ran as ``--rate``: a typo of one flag could be another's prefix)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> Parser:
    """Every command and its options, from ``loggend.options`` and (run's flags) the settings registry."""
    parser = Parser(prog="loggend", description="Syslog load generator for SIEM ingestion tests.")
    parser.add_argument("--version", action="version", version=f"loggend {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in options.COMMANDS:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.description or None)
        for option in options.options(command):
            sub_parser.add_argument(*option.flags, **option.argparse_kwargs())  # type: ignore[arg-type]
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict[str, tuple[str, object]]:
    """The flags the user gave, as config keys labelled with the flag's name: a key's flag, then its switch
    (--utc over --timezone), then the original tool's single-dash flag."""
    out: dict[str, tuple[str, object]] = {}
    for s in settings.SETTINGS:
        value = getattr(args, s.dest) if s.flag else None
        if value is not None:
            out[s.key] = (s.flag, as_written(s.key, s.flag, value))
    for s in settings.SETTINGS:
        if s.switch and getattr(args, s.switch[0].lstrip("-").replace("-", "_")):
            out[s.key] = (s.switch[0], s.switch[1])
    for option in options.run_options():
        value = getattr(args, option.dest) if option.dest.startswith(options.LEGACY_DEST) else None
        if value is None:
            continue
        if option.key == "duration":
            value = parse_run_duration(option.flags[0], value, bare_unit="m")
        out[DASHBOARD_PORT if option.key == "dashboard_port" else option.key] = (option.flags[0], value)
    return out


def cmd_run(args: argparse.Namespace) -> int:
    hold_early()
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
    ready_path = os.path.abspath(args.ready_file) if args.ready_file else ""
    if args.daemon and not args.pidfile:
        raise UsageError("--daemon: needs --pidfile PATH, so that the daemon can be found and stopped")
    if args.log_file and not args.daemon:
        raise UsageError("--log-file: only with --daemon (in the foreground the output is the terminal)")
    from loggend.control.supervisor import claim_outputs
    claim_outputs(summary_path, ready_path, config.control_socket)

    def main(pipe: ReadyPipe | None = None) -> int:
        from loggend.control.supervisor import Supervisor
        supervisor = Supervisor(config, sys.stdout, sys.stderr, loader=loader, summary_path=summary_path,
                                ready_path=ready_path, on_ready=pipe.ready if pipe else None, start_at=start_at)
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
    hold_early()
    from loggend.config import parse_server_tls
    from loggend.control.sinkd import SinkCommand
    from loggend.parsers import parse_choice
    from loggend.sink.sinkspec import SinkSpec
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
        duration=parse_run_duration("--duration", args.duration),
        idle_exit=parse_duration("--idle-exit", args.idle_exit, zero="never"),
        dashboard=WebSettings(*dashboard, hosts=hosts) if dashboard else None,
        run_id=parse_run_id("--run-id", args.run_id),
        share=args.share_ports,
        expect_instances=parse_int("--expect-instances", args.expect_instances, 0, MAX_INSTANCES),
        out=sys.stdout,
    ).run()


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run, "check-config": cmd_check_config, "sink": cmd_sink, "perftest": commands.cmd_perftest,
    "soak": commands.cmd_soak, "sources": commands.cmd_sources, "bench": commands.cmd_bench,
    "tune": commands.cmd_tune, "profile": commands.cmd_profile, "ctl": commands.cmd_ctl,
    "find-limit": commands.cmd_find_limit, "scenarios": commands.cmd_scenarios}


LONG_COMMANDS = ("run", "sink", "perftest", "soak", "find-limit")


def main(argv: list[str] | None = None) -> int:
    from loggend.control.fdlimit import raise_nofile
    raise_nofile()                          # children inherit it: a sink may open many ports
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra and args.command == "ctl" and not any(e.startswith("-") for e in extra):
            args.value += extra                 # `ctl rate --force 25k`: argparse ends the values at the flag
        elif extra:
            parser.parse_args(argv)             # its usual error for what it does not know
        if args.command in LONG_COMMANDS:
            journal.guard_streams()             # `| head` does not cut a measurement short
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
