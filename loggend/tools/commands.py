"""The tool commands of ``loggend``: ``ctl``, ``find-limit``, ``sources``, ``tune``, ``perftest``, ``soak``,
``bench`` and ``profile``. Each checks its own options (declared in ``loggend.options``) and runs.

Bad input is one line and exit 2 (a ``UsageError``, printed by ``loggend.cli.main``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from loggend.config import load
from loggend.detectspec import parse_detect
from loggend.engine import journal
from loggend.engine.formats import FORMATS
from loggend.engine.spec import PROTOCOLS, STREAM_FRAMINGS
from loggend.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError
from loggend.parsers import ascii_float, format_ports, parse_duration, parse_int, parse_ports, plural
from loggend.settings import MAX_SINK_PROCESSES


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

    from loggend.files import check_writable_dir
    from loggend.parsers import MAX_WORKERS, parse_rate, parse_size
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
                warmup=parse_duration("--warmup", args.warmup) if args.warmup else None, out=sys.stdout).run()


def cmd_perftest(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from loggend.parsers import MAX_WORKERS, parse_choice, parse_rate, parse_size
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
                    scenarios=tuple(args.scenario or ()), detect_args=perftest_detect_args(args), out=sys.stdout).run()


def cmd_profile(args: argparse.Namespace) -> int:
    from loggend.parsers import MAX_WORKERS, parse_choice
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
    if args.action in SCENARIO_VERBS:
        line, args.value = ctl_scenario_line(args.action, args.value), None
    elif len(args.value) > 1:
        raise UsageError(f"ctl {args.action}: takes one value (got {' '.join(args.value)!r})")
    else:
        args.value = args.value[0] if args.value else None
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
    if args.force:
        if args.action not in ("rate", "profile", "reload"):
            raise UsageError(f"ctl {args.action}: --force is for rate, profile and reload")
        line += " --force"
    try:
        path = args.socket or find_socket(parse_int("--pid", args.pid, 1, 2**22) if args.pid else None)
        reply = request(path, line)
    except ControlError as err:
        journal.write(f"ctl: {err}", journal.ERR)
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(reply, indent=1))
    elif args.action == "status" and reply.get("ok"):
        try:
            print(status_text(reply["status"]))
        except (KeyError, TypeError, ValueError):
            journal.write(f"ctl: {path}: not a loggend control socket (a status of another kind)", journal.ERR)
            return EXIT_FAILURE
    elif reply.get("ok"):
        print(reply.get("message", ""))
    else:
        journal.write(f"ctl {line}: {reply.get('message', '')}", journal.ERR)
    if reply.get("usage"):
        return EXIT_USAGE
    return 0 if reply.get("ok") else EXIT_FAILURE


SCENARIO_VERBS = ("inject", "detected")


def ctl_scenario_line(action: str, words: list[str]) -> str:
    """``ctl inject NAME [KEY=VALUE...]`` (checked here: exit 2 now) or ``ctl detected ID [TIME]``."""
    if not words:
        raise UsageError(f"ctl {action}: needs a value, e.g. " +
                         ("inject ssh-bruteforce attempts=10" if action == "inject" else
                          "detected ssh-bruteforce-1 1796603273.4"))
    if action == "inject":
        from loggend.content.scenarios import get as get_scenario
        from loggend.content.scenarios import names, parse_pairs
        scenario = get_scenario(words[0])
        if scenario is None:
            raise UsageError(f"ctl inject: {words[0]!r} is not allowed; expected a scenario: " + ", ".join(names()))
        parse_pairs("ctl inject", scenario, words[1:], " ".join(words))
    return f"{action} {' '.join(words)}"


def status_text(st: dict[str, Any]) -> str:
    """``loggend ctl status`` for people."""
    target = "unlimited" if st["unlimited"] else f"{st['target_rate']:,.0f} ev/s now"
    planned = st.get("planned")
    lines = [f"state     {st['state']} (pid {st['pid']}, {plural(st['workers'], 'worker')} -> {st['target']})",
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
    # the search steers its run from rate 0 and its bound is its own --max-rate, whatever the config's max_rate
    run_args += ["--max-rate", f"{settings.max_rate:.0f}"]
    overrides.update(profile=("--profile", "constant:0"), max_rate=("--max-rate", f"{settings.max_rate:.0f}"))
    run = load(os.path.abspath(args.config) if args.config else None, overrides)      # bad run flags: exit 2 now
    inject, detect_args = scenario_args(args)
    check_fits_a_trial(args.scenario or [], settings.trial)
    report_dir = Path(args.report_dir or time.strftime("reports/limit-%Y%m%d-%H%M%S"))
    return FindLimit(settings, feedback, run_args + detect_args, report_dir, protocol=run.protocol,
                     inject=inject, out=sys.stdout).run()


def scenario_args(args: argparse.Namespace) -> tuple[tuple[str, ...], list[str]]:
    """perftest's and find-limit's --scenario/--detect...: the ``ctl inject`` lines and the run's flags,
    checked here (exit 2 now, not in the run)."""
    from loggend.content.scenarios import parse_all
    from loggend.settings import parse_detect_timeout
    requests = parse_all("--scenario", args.scenario or [])
    lines = tuple(" ".join([r.name, *(f"{k}={v}" for k, v in r.given)]) for r in requests)
    detect = args.detect or []
    for d in detect:
        parse_detect("--detect", d, args.detect_query)
    if detect and not requests:
        raise UsageError("--detect: only with --scenario (what it detects)")
    if args.detect_query and not detect:
        raise UsageError("--detect-query: only with --detect prometheus:URL")
    flags: list[str] = ["--inject"] if requests else []
    for d in detect:
        flags += ["--detect", d]
    if args.detect_query:
        flags += ["--detect-query", args.detect_query]
    if args.detect_timeout is not None:
        flags += ["--detect-timeout", f"{parse_detect_timeout('--detect-timeout', args.detect_timeout):g}s"]
    return lines, flags


def check_fits_a_trial(texts: list[str], trial: float) -> None:
    """find-limit injects one instance of each --scenario at the start of every trial: one that repeats, or
    that lasts past the trial (its at= and its steps), would send in later trials and be judged at their rate."""
    from loggend.content.scenarios import Background, instance, parse_all
    for request in parse_all("--scenario", texts):
        if "every" in dict(request.given):
            raise UsageError(f"--scenario {request.text}: every= is not allowed here: find-limit injects one "
                             "instance at the start of every trial")
        steps = instance(request, Background(), 1).steps
        ends = request.at + (steps[-1].offset if steps else 0.0)
        if ends >= trial:
            raise UsageError(f"--scenario {request.text}: it sends until {ends:.1f} s into a trial and --trial is "
                             f"{trial:g} s: the rest would go out in later trials, judged at their rate; a smaller "
                             "at= or within=, or a longer --trial")


def perftest_detect_args(args: argparse.Namespace) -> tuple[str, ...]:
    """perftest's --detect flags for its run (its --scenario go to the run as they are)."""
    _, flags = scenario_args(args)
    return tuple(f for f in flags if f != "--inject")


def parse_percent(key: str, text: str) -> float:
    try:
        value = ascii_float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise UsageError(f"{key}: {text!r} is not allowed; expected a percentage from 0 to 100")
    return value


def cmd_sources(args: argparse.Namespace) -> int:
    from loggend.tools.sources import MAX_SHOW, listing, show
    if not args.what:
        given = [flag for flag, value, default in (("--count", args.count, "10"), ("--format", args.format, ""),
                                                   ("--seed", args.seed, "1"), ("--utc", args.utc, False))
                 if value != default]
        if given:
            raise UsageError(f"sources {' '.join(given)}: for `loggend sources show NAME` only (the list has none)")
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
