from dataclasses import replace

import pytest

from loggend.config import parse_pool_size, parse_pri_mix
from loggend.engine.schedule import NS, Plan
from loggend.errors import ConfigError
from loggend.parsers import parse_duration, parse_port, parse_rate, resolve_host, split_target


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("30m", 1800), ("1h", 3600), ("1.5h", 5400),
                                          ("250ms", 0.25), ("0", 0), ("45", 45)])
def test_durations_take_units(text, seconds):
    assert parse_duration("--duration", text) == seconds


def test_bare_duration_unit_is_selectable():
    assert parse_duration("-duration", "5", bare_unit="m") == 300


@pytest.mark.parametrize("text", ["", "5x", "-1s", "s", "1 h", "1e3"])
def test_bad_durations_name_the_key(text):
    with pytest.raises(ConfigError, match="^--duration: "):
        parse_duration("--duration", text)


@pytest.mark.parametrize("text,rate", [("0", 0), ("50000", 50000), ("250k", 250_000), ("4M", 4_000_000),
                                       ("1.5k", 1500), (7, 7.0)])
def test_rates(text, rate):
    assert parse_rate("--rate", text) == rate


@pytest.mark.parametrize("text", ["-5", "fast", "1G", "2e9", "nan"])
def test_bad_rates(text):
    with pytest.raises(ConfigError, match="--rate"):
        parse_rate("--rate", text)


def test_targets_and_ports():
    assert split_target("t", "10.0.0.1:514") == ("10.0.0.1", 514)
    assert split_target("t", "siem.example") == ("siem.example", None)
    assert split_target("t", "[::1]:5514") == ("::1", 5514)
    assert split_target("t", "::1") == ("::1", None)
    assert resolve_host("t", "localhost") in ("127.0.0.1", "::1")
    for bad in ("0", "65536", "x"):
        with pytest.raises(ConfigError):
            parse_port("p", bad)
    with pytest.raises(ConfigError):
        resolve_host("t", "no-such-host.invalid")


def test_pri_mix():
    assert parse_pri_mix("m", "auth.info=3,local7.err") == ((38, 3.0), (187, 1.0))
    assert parse_pri_mix("m", "") == ()
    for bad in ("auth=1", "auth.loud=1", "auth.info=-1", "auth.info=x"):
        with pytest.raises(ConfigError):
            parse_pri_mix("m", bad)


def test_pool_size_is_a_power_of_ten():
    assert parse_pool_size("p", "10000") == 10_000
    with pytest.raises(ConfigError):
        parse_pool_size("p", "5000")


# --- the file, the flags and the legacy flags ------------------------------------------------------

def test_shipped_config_documents_exactly_the_defaults():
    from pathlib import Path

    import yaml

    from loggend.config import DEFAULTS, load
    root = Path(__file__).resolve().parents[2]
    shipped = load(str(root / "config/loggen.yaml"), usable_cpus={0, 1})
    assert shipped == replace(load("/dev/null", usable_cpus={0, 1}), source=shipped.source)
    data = yaml.safe_load((root / "config/loggen.yaml").read_text())
    flat = {f"messages.{k}": v for k, v in data.pop("messages").items()} | data
    assert flat == DEFAULTS                       # every key is in the file, with its default
    text = (root / "config/loggen.yaml").read_text().splitlines()
    for i, line in enumerate(text):               # and every key has a comment just above it
        if line.strip() and not line.lstrip().startswith("#") and line.strip() != "messages:":
            assert text[i - 1].lstrip().startswith("#"), line


def test_defaults_are_forty_workers_on_514_to_553():
    from loggend.config import load
    c = load("/dev/null", usable_cpus={0, 1})
    assert c.workers == 40 and c.ports == tuple(range(514, 554)) and c.rate == 0 and c.cpus == (0, 1)
    specs = [c.worker_spec(i) for i in range(40)]
    assert [s.port for s in specs] == list(range(514, 554))
    assert [s.cpu for s in specs[:4]] == [0, 1, 0, 1] and specs[7].stream == "w7"
    assert c.messages.pool_size == 10_000 and c.dashboard == ("127.0.0.1", 8080)
    assert c.memory_limit == 12 << 30 and c.hung_timeout == 10.0


def test_overrides_win_and_rate_is_split():
    from loggend.config import load
    c = load("/dev/null", {"rate": ("--rate", "4M"), "workers": ("--workers", "8"),
                           "ports": ("--ports", "600-601,700")}, usable_cpus={0, 1, 2, 3})
    plan = Plan(c.profile(), c.workers).start(NS, 1.0)
    assert plan.worker_rate(NS) == 500_000 and sum(plan.quota(i) for i in range(8)) == 4_000_000
    assert c.ports == (600, 601, 700)
    assert [c.worker_spec(i).port for i in range(4)] == [600, 601, 700, 600]
    assert [c.worker_spec(i).cpu for i in range(5)] == [0, 1, 2, 3, 0]
    assert load("/dev/null", {"target": ("--target", "127.0.0.1:9999")}, usable_cpus={0}).ports == (9999,)


def test_legacy_flags_of_the_original_tool():
    from loggend.cli import build_parser, overrides_from_args
    from loggend.config import load
    args = build_parser().parse_args(["run", "-target=127.0.0.2", "-duration=30", "-dashboard-port=9000",
                                      "-optimize=true"])
    c = load("/dev/null", overrides_from_args(args), usable_cpus={0})
    assert (c.host, c.duration, c.dashboard, c.optimize) == ("127.0.0.2", 1800.0, ("127.0.0.1", 9000), True)


@pytest.mark.parametrize("text,expected", [("514-553", tuple(range(514, 554))), (514, (514,)),
                                           ([514, "600-601"], (514, 600, 601)), ("7,9", (7, 9))])
def test_ports(text, expected):
    from loggend.parsers import format_ports, parse_ports
    assert parse_ports("ports", text) == expected
    assert parse_ports("ports", format_ports(expected)) == expected


def test_cpus_sizes_and_pool_sizes():
    from loggend.config import auto_pool_size, parse_cpus
    from loggend.parsers import parse_size
    assert parse_cpus("cpus", "auto", {3, 1}) == (1, 3)
    assert parse_cpus("cpus", [1], {0, 1}) == (1,)
    with pytest.raises(ConfigError, match="CPUs this process may use: 0,1"):
        parse_cpus("cpus", "2", {0, 1})
    assert parse_size("m", "12G") == 12 << 30 and parse_size("m", "512MiB") == 512 << 20
    assert parse_size("m", 0) == 0 and parse_size("m", "1.5k") == 1536
    assert [auto_pool_size(w) for w in (1, 2, 10, 40, 1000)] == [100_000, 10_000, 10_000, 10_000, 10_000]
