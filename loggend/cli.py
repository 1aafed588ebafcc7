"""Command line: ``loggend run | sink | bench``. Bad input is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from loggend import __version__
from loggend.config import (
    MAX_HOSTS,
    Config,
    check_timezone,
    check_transport,
    parse_duration,
    parse_int,
    parse_max_length,
    parse_pool_size,
    parse_pri_mix,
    parse_rate,
    parse_stream_id,
    resolve_host,
    split_target,
)
from loggend.engine.spec import TIMEZONES, TRANSPORTS, MessageSpec
from loggend.errors import EXIT_USAGE, UsageError

DEFAULT_TARGET = "127.0.0.1:514"
DEFAULT_PORT = 514
DEFAULT_RATE = "10000"
MAX_SEED = 2**63 - 1


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line and exits 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def build_parser() -> Parser:
    parser = Parser(prog="loggend", description="Syslog load generator for SIEM ingestion tests.")
    parser.add_argument("--version", action="version", version=f"loggend {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    run = sub.add_parser("run", help="send syslog to a target")
    run.add_argument("--target", default=DEFAULT_TARGET, help="HOST[:PORT] (default %(default)s)")
    run.add_argument("--rate", default=DEFAULT_RATE, help="events/s, e.g. 50000, 250k, 4M; 0 = unlimited")
    run.add_argument("--duration", default="0", help="90s, 30m, 1h; 0 = until stopped")
    run.add_argument("--seed", default="1", help="stream seed: the same seed gives the same messages")
    run.add_argument("--transport", default="auto", help="|".join(TRANSPORTS))
    run.add_argument("--hosts", default="1000", help="simulated hosts (default %(default)s)")
    run.add_argument("--timezone", default="local", help="|".join(TIMEZONES) + " timestamps")
    run.add_argument("--utc", action="store_true", help="same as --timezone utc")
    run.add_argument("--no-sequence", action="store_true", help="omit the stream=/seq= fields")
    run.add_argument("--pri-mix", default="", help="FACILITY.SEVERITY=WEIGHT,... (default: per template)")
    run.add_argument("--max-length", default="1024", help="bytes per message (default %(default)s)")
    run.add_argument("--pool-size", default="100000", help="pre-rendered messages per worker")
    run.add_argument("--stream-id", default="", help="label in every message (default w<worker>)")

    sink = sub.add_parser("sink", help="count syslog datagrams received on a port")
    sink.add_argument("--listen", default="127.0.0.1:5514", help="ADDRESS:PORT to bind")
    sink.add_argument("--duration", default="0", help="stop after this long; 0 = until stopped")
    sink.add_argument("--idle-exit", default="0", help="stop after this long without a datagram")

    bench = sub.add_parser("bench", help="measure each transport on one core")
    bench.add_argument("--seconds", default="3", help="per measurement")
    bench.add_argument("--repeats", default="3", help="runs per figure (the median is printed)")
    bench.add_argument("--yardstick", default="", help="folder of the C reference tools to compare with")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    host_text, port = split_target("--target", args.target)
    messages = MessageSpec(
        seed=parse_int("--seed", args.seed, 0, MAX_SEED),
        hosts=parse_int("--hosts", args.hosts, 1, MAX_HOSTS),
        pool_size=parse_pool_size("--pool-size", args.pool_size),
        sequence=not args.no_sequence,
        timezone="utc" if args.utc else check_timezone("--timezone", args.timezone),
        pri_mix=parse_pri_mix("--pri-mix", args.pri_mix),
        max_length=parse_max_length("--max-length", args.max_length),
    )
    return Config(
        host=resolve_host("--target", host_text),
        port=port if port is not None else DEFAULT_PORT,
        rate=parse_rate("--rate", args.rate),
        duration=parse_duration("--duration", args.duration),
        transport=check_transport("--transport", args.transport),
        target_name=host_text,
        stream_id=parse_stream_id("--stream-id", args.stream_id) if args.stream_id else "",
        messages=messages,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from loggend.supervisor import Supervisor
    return Supervisor(config_from_args(args)).run()


def cmd_sink(args: argparse.Namespace) -> int:
    from loggend.sink import Sink
    host, port = split_target("--listen", args.listen, lowest_port=0)
    if port is None:
        raise UsageError(f"--listen: {args.listen!r} has no port; expected ADDRESS:PORT (PORT 0 = any free port)")
    return Sink(
        host=resolve_host("--listen", host),
        port=port,
        duration=parse_duration("--duration", args.duration),
        idle_exit=parse_duration("--idle-exit", args.idle_exit),
    ).run()


def cmd_bench(args: argparse.Namespace) -> int:
    from loggend.bench import run_bench
    return run_bench(
        seconds=parse_duration("--seconds", args.seconds),
        repeats=parse_int("--repeats", args.repeats, 1, 99),
        yardstick=args.yardstick,
    )


COMMANDS = {"run": cmd_run, "sink": cmd_sink, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except UsageError as err:
        print(f"loggend: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
