"""A run as one instance of a fleet: --instance, --run-id, --start-at, the stream labels, the start gate."""

import datetime as dt
import io
import math
import os
from dataclasses import replace

import psutil
import pytest

from loggend import config as config_module
from loggend.config import DEFAULTS, MAX_WORKERS, Config, load
from loggend.control.shared import SharedRun
from loggend.control.workers import START_LEAD_NS, START_POLL_SECONDS, Workers
from loggend.engine import counters as C
from loggend.engine.render import CORPUS_CHUNK, CORPUS_SIZE, STREAM_ROOM, Corpus
from loggend.engine.schedule import NS, Plan
from loggend.engine.spec import MessageSpec
from loggend.errors import ConfigError
from loggend.fleet import (
    MAX_INSTANCES,
    format_time,
    parse_instance,
    parse_run_id,
    parse_start_at,
    process_start_unix,
    stream_prefix,
)

NOW = 1_790_000_000.0              # 2026-09-21


@pytest.mark.parametrize("text,want", [("0/1", (0, 1)), ("2/3", (2, 3)), (" 1 / 2 ", (1, 2)),
                                       (f"{MAX_INSTANCES - 1}/{MAX_INSTANCES}", (MAX_INSTANCES - 1, MAX_INSTANCES))])
def test_instances(text, want):
    assert parse_instance("--instance", text) == want


@pytest.mark.parametrize("text", ["3/3", "0/0", "-1/2", "1", "1/2/3", "a/b", f"0/{MAX_INSTANCES + 1}", ""])
def test_bad_instances_name_the_flag(text):
    with pytest.raises(ConfigError, match=r"^--instance: .* expected I/N with 0 <= I < N"):
        parse_instance("--instance", text)


def test_run_ids():
    assert parse_run_id("run_id", "") == ""
    assert parse_run_id("run_id", "soak-2026.11:a_1") == "soak-2026.11:a_1"
    for bad in ("two words", "a/b", "x" * 65, 'q"uote'):
        with pytest.raises(ConfigError, match="^run_id: "):
            parse_run_id("run_id", bad)


def test_start_at_rfc3339_with_its_offset():
    assert parse_start_at("--start-at", "2026-09-22T08:00:00Z", now=NOW) == \
        dt.datetime(2026, 9, 22, 8, tzinfo=dt.UTC).timestamp()
    assert parse_start_at("--start-at", "2026-09-22T09:00:00.250+01:00", now=NOW) == \
        dt.datetime(2026, 9, 22, 8, 0, 0, 250_000, tzinfo=dt.UTC).timestamp()
    assert parse_start_at("--start-at", "2026-09-22t08:00:00z", now=NOW) == \
        dt.datetime(2026, 9, 22, 8, tzinfo=dt.UTC).timestamp()


def test_relative_start_counts_from_the_process_start_not_from_parsing():
    # parsed 0.4 s after the process started: +3s is 2.6 s from now, as for a sibling started with it
    assert parse_start_at("--start-at", "+3s", now=NOW, started=NOW - 0.4) == pytest.approx(NOW + 2.6)
    assert parse_start_at("--start-at", "+1.5m", now=NOW, started=NOW) == NOW + 90


@pytest.mark.parametrize("text,why", [
    ("2020-01-01T00:00:00Z", "still ahead"), ("+0s", "still ahead"),
    ("2026-09-22T08:00:00", "with its offset"), ("tomorrow", "RFC 3339"), ("+soon", "DURATION"),
    ("2031-01-01T00:00:00Z", "days ahead")])
def test_bad_start_times_are_one_line(text, why):
    with pytest.raises(ConfigError, match=f"^--start-at: .*{why}"):
        parse_start_at("--start-at", text, now=NOW, started=NOW)


@pytest.mark.parametrize("text", ["+soon", "+\uff15s", "+5x", "+ 5s"])
def test_a_bad_relative_start_time_is_echoed_as_written(text):
    with pytest.raises(ConfigError) as err:
        parse_start_at("--start-at", text, now=NOW, started=NOW)
    assert str(err.value).startswith(f"--start-at: {text!r} is not allowed; expected an RFC 3339 time"), err.value


def test_a_relative_start_time_too_far_says_so_with_its_plus():
    with pytest.raises(ConfigError, match=r"^--start-at: '\+99999d' is not allowed; expected a duration of at most"):
        parse_start_at("--start-at", "+99999d", now=NOW, started=NOW)


def test_a_start_time_already_past_says_by_how_much():
    with pytest.raises(ConfigError, match=r"that one is 2\.0 s past"):
        parse_start_at("--start-at", "+1s", now=NOW, started=NOW - 3)


def test_process_start_from_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    # pid (comm with ") " inside) state ... field 22 (starttime) = 12345 ticks
    fields = ["S"] + ["0"] * 18 + ["12345"] + ["0"] * 10
    stat.write_text("4242 (a) b) " + " ".join(fields) + "\n")
    start = process_start_unix(str(stat), clock_ticks=100, boottime=lambda: 124.95, wallclock=lambda: NOW)
    assert start == pytest.approx(NOW - 1.5)
    assert process_start_unix(str(tmp_path / "missing"), wallclock=lambda: NOW) == NOW
    real = process_start_unix()
    # this very test process, as psutil sees it (not "less than 10 minutes ago": a whole suite may take that)
    assert real == pytest.approx(psutil.Process().create_time(), abs=1.0)


def test_format_time():
    assert format_time(dt.datetime(2026, 9, 22, 8, 0, 0, 250_000, tzinfo=dt.UTC).timestamp()) == \
        "2026-09-22T08:00:00.250Z"


# --- the split and the stream labels ---------------------------------------------------------------

def test_config_keys_and_stream_labels():
    lone = load("", {})
    assert (lone.instance, lone.instances, lone.run_id) == (0, 1, "")
    assert lone.worker_spec(3).stream == "w3"                      # a lone instance is what it always was
    two = load("", {"instance": ("--instance", "2/3"), "run_id": ("--run-id", "soak-1"),
                    "messages.stream_id": ("--stream-id", "gen")})
    assert (two.instance, two.instances, two.run_id) == (2, 3, "soak-1")
    assert two.worker_spec(7).stream == "i2.gen7"
    assert two.instance_rate == two.rate / 3
    assert "instance 2/3" in two.describe()
    assert DEFAULTS["instance"] == "0/1" and DEFAULTS["run_id"] == ""


def test_every_stream_of_a_fleet_is_distinct_and_fits():
    base = load("", {"workers": ("--workers", 4)})
    labels = [replace(base, instance=i, instances=3).worker_spec(w).stream for i in range(3) for w in range(4)]
    assert len(set(labels)) == 12 and labels[:2] == ["i0.w0", "i0.w1"]
    longest = stream_prefix(MAX_INSTANCES - 1, MAX_INSTANCES) + "x" * 12 + str(MAX_WORKERS - 1)
    assert len(longest) <= STREAM_ROOM <= C.STREAM_NAME_BYTES            # every message keeps room for it
    assert config_module.STREAM_ID_RE.fullmatch("x" * 12) and not config_module.STREAM_ID_RE.fullmatch("x" * 13)


def test_a_fleet_adds_up_to_the_planned_total_exactly():
    duration, workers, instances, rate = 7.3, 3, 4, 12_345.0
    t0 = 10 * NS
    plans = [Plan(Config(host="127.0.0.1", rate=rate).profile(), workers, instance=i, instances=instances)
             .start(t0, duration) for i in range(instances)]
    quotas = [p.quota(w) for p in plans for w in range(workers)]
    assert sum(q for q in quotas if q is not None) == math.floor(rate * duration)
    assert max(quotas) - min(q for q in quotas if q is not None) <= 1          # as even as whole events allow


# --- the start gate ---------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.mono_ns = 50 * NS
        self.wall = NOW

    def advance(self, seconds: float) -> None:
        self.mono_ns += round(seconds * NS)
        self.wall += seconds


def pool_with_ready_workers(start_at: float | None, clock: Clock, workers: int = 2) -> tuple[Workers, list[str]]:
    config = Config(host="127.0.0.1", rate=1000, workers=workers, duration=10, instance=1, instances=2,
                    messages=MessageSpec(pool_size=10_000))
    shared = SharedRun()
    lines: list[str] = []
    pool = Workers(config, shared, lines.append, (io.StringIO(),), start_at=start_at, wallclock=lambda: clock.wall)
    assert (pool.plan.instance, pool.plan.instances) == (1, 2)        # the plan is this instance's share
    return pool, lines


def set_ready(pool: Workers, indexes: range) -> None:
    for i in indexes:
        pool.shared.block.slot(i)[C.STATE] = C.STATE_READY


def test_without_a_start_time_the_plan_starts_once_every_worker_is_ready():
    clock = Clock()
    pool, _ = pool_with_ready_workers(None, clock)
    set_ready(pool, range(1))
    assert pool.start_when_ready(clock.mono_ns) == START_POLL_SECONDS and not pool.plan.started
    set_ready(pool, range(2))
    assert pool.start_when_ready(clock.mono_ns) == math.inf and pool.plan.started
    assert pool.plan.end_ns - pool.plan.start_ns == 10 * NS


def test_a_start_time_is_met_on_the_monotonic_clock_and_slept_towards():
    clock = Clock()
    pool, lines = pool_with_ready_workers(NOW + 3.0, clock)
    set_ready(pool, range(2))
    clock.advance(0.5)
    wait = pool.start_when_ready(clock.mono_ns)
    assert wait == pytest.approx(2.5 - START_LEAD_NS / NS) and not pool.plan.started   # no polling meanwhile
    assert "starts at " + format_time(NOW + 3.0) in lines[0]
    clock.advance(wait)
    assert pool.start_when_ready(clock.mono_ns) == math.inf
    assert pool.plan.start_ns == pool.requested_start_ns                 # the wall-clock moment, to the
    assert abs(pool.plan.start_ns - (50 + 3) * NS) < 1000                # microsecond (float seconds)
    assert len(lines) == 1


def test_a_start_time_that_passed_during_set_up_starts_at_once():
    clock = Clock()
    pool, _ = pool_with_ready_workers(NOW + 1.0, clock)
    clock.advance(2.0)
    set_ready(pool, range(2))
    assert pool.start_when_ready(clock.mono_ns) == math.inf
    assert pool.plan.start_ns > pool.requested_start_ns                 # late, and the summary will say so
    assert abs(pool.requested_start_ns - 51 * NS) < 1000


def test_a_small_corpus_renders_the_same_windows_as_a_larger_one():
    """The corpus is rendered in chunks from one seed: a shorter one is a prefix of a longer one, so
    the workers' windows (here 2 of 10,000, twenty whole chunks) are the same whatever size it is
    rendered at; the full 100,000 is the same again, only slower."""
    clock = Clock()
    pool, _ = pool_with_ready_workers(None, clock, workers=2)
    spec = pool.config.messages
    size = pool.corpus_size()
    assert size == 2 * spec.pool_size and size % CORPUS_CHUNK == 0        # no message rendered for nothing
    small, larger = Corpus(spec, NOW, size), Corpus(spec, NOW, size + 3 * CORPUS_CHUNK + 100)
    for w in range(2):
        assert small.window(w * spec.pool_size % len(small), spec.pool_size) == \
            larger.window(w * spec.pool_size % len(larger), spec.pool_size)
    pool.config = replace(pool.config, workers=40)
    assert pool.corpus_size() == CORPUS_SIZE                     # 40 windows of 10,000 wrap round the full one


@pytest.mark.slow
def test_sibling_processes_resolve_a_relative_start_alike():
    """Two processes parsing +3s at different moments agree on the start (to the kernel's tick)."""
    import subprocess
    import sys
    code = ("import time; from loggend.fleet import parse_start_at; time.sleep({delay}); "
            "print(repr(parse_start_at('--start-at', '+3s')))")
    procs = [subprocess.Popen([sys.executable, "-c", code.format(delay=d)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=os.getcwd())) for d in (0.0, 0.6)]
    starts = [float(p.communicate(timeout=30)[0]) for p in procs]
    assert abs(starts[0] - starts[1]) < 0.1          # not 0.6 s apart: both count from their own launch
