import re
import socket
from dataclasses import replace

import pytest

from loggend.config import parse_pool_size, parse_pri_mix
from loggend.engine.schedule import NS, Plan
from loggend.errors import ConfigError
from loggend.parsers import (
    parse_duration,
    parse_int,
    parse_int_list,
    parse_port,
    parse_rate,
    parse_run_duration,
    parse_size,
    resolve_host,
    split_target,
)


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


def test_a_bad_duration_says_what_0_means_only_where_it_means_something():
    with pytest.raises(ConfigError, match=r"expected a duration such as 90s, 30m or 1h \(0 = until stopped\)$"):
        parse_run_duration("duration", "soon")
    with pytest.raises(ConfigError, match=r"expected a duration such as 90s, 30m or 1h$"):
        parse_duration("--trial", "soon")


@pytest.mark.parametrize("text,rate", [("0", 0), ("50000", 50000), ("250k", 250_000), ("4M", 4_000_000),
                                       ("1.5k", 1500), (7, 7.0), ("1", 1.0), (0, 0.0)])
def test_rates(text, rate):
    assert parse_rate("--rate", text) == rate


@pytest.mark.parametrize("text", ["-5", "fast", "1G", "2e9", "nan"])
def test_bad_rates(text):
    with pytest.raises(ConfigError, match="--rate"):
        parse_rate("--rate", text)


@pytest.mark.parametrize("text", ["0.4", "0.0000001", 0.999, "0.5"])
def test_rates_between_0_and_1_are_refused_they_would_show_and_round_as_0_unlimited(text):
    with pytest.raises(ConfigError, match=r"^--rate: .* expected events per second of at least 1, or 0 \(unlimited\)$"):
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


def test_tls_files_are_checked_whatever_the_protocol(tmp_path):
    """A missing CA on a UDP run is an error now, not at the reload that turns TLS on; it is not sent with."""
    from loggend.config import load
    with pytest.raises(ConfigError, match=r"^--tls-ca: .* a readable file \(no such file\)"):
        load("/dev/null", {"tls_ca": ("--tls-ca", str(tmp_path / "none.pem"))}, usable_cpus={0})
    assert not load("/dev/null", {"tls_verify": ("--tls-verify", "false")}, usable_cpus={0}).tls.ca


@pytest.mark.parametrize("overrides,usable,expected", [
    ({}, {0, 1}, 2),                                                    # UDP: one process per CPU
    ({"workers": ("--workers", "3")}, {0, 1, 2, 3, 4, 5, 6, 7}, 3),     # never more than the workers
    ({"cpus": ("--cpus", "1")}, {0, 1}, 1),                             # the CPUs it is pinned to
    ({"worker_processes": ("--worker-processes", "40")}, {0, 1}, 40),   # one each, as asked
    ({"worker_processes": ("--worker-processes", "99")}, {0, 1}, 40),
    ({"worker_processes": ("--worker-processes", "auto")}, {0, 1, 2}, 3),
    ({"protocol": ("--protocol", "tcp")}, {0, 1}, 40),                  # TCP/TLS: one per worker
    ({"protocol": ("--protocol", "tcp"), "worker_processes": ("--worker-processes", "4")}, {0, 1}, 4),
])
def test_worker_processes(overrides, usable, expected):
    from loggend.config import load
    assert load("/dev/null", overrides, usable_cpus=usable).worker_processes == expected


@pytest.mark.parametrize("value", ["-1", "two", "1.5", "1025"])
def test_bad_worker_processes_name_the_flag(value):
    from loggend.config import load
    with pytest.raises(ConfigError, match="--worker-processes"):
        load("/dev/null", {"worker_processes": ("--worker-processes", value)}, usable_cpus={0, 1})


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


# --- the environment: LOGGEN_* ---------------------------------------------------------------------------

def test_every_key_has_one_environment_variable():
    from loggend.config import DEFAULTS, ENV_KEYS, env_name
    assert env_name("rate") == "LOGGEN_RATE" and env_name("messages.seed") == "LOGGEN_MESSAGES_SEED"
    assert sorted(ENV_KEYS.values()) == sorted(DEFAULTS)            # one each, no two keys on one name


def test_environment_overrides_the_file_and_flags_override_both(tmp_path):
    from loggend.config import load
    path = tmp_path / "c.yaml"
    path.write_text("rate: 1000\nworkers: 2\nmessages:\n  seed: 3\n")
    env = {"LOGGEN_RATE": "2k", "LOGGEN_MESSAGES_SEED": "7", "LOGGEN_DASHBOARD_HOSTS": "a.example,.b.example",
           "LOGGEN_QUIET": "yes", "PATH": "/bin", "LOGGENX": "not ours"}
    c = load(str(path), env=env, usable_cpus={0})
    assert (c.rate, c.workers, c.messages.seed, c.quiet) == (2000, 2, 7, True)
    assert c.dashboard_hosts == ("a.example", ".b.example")
    assert c.source == f"{path} + LOGGEN_DASHBOARD_HOSTS, LOGGEN_MESSAGES_SEED, LOGGEN_QUIET, LOGGEN_RATE"
    flagged = load(str(path), {"rate": ("--rate", "3k")}, env=env, usable_cpus={0})
    assert flagged.rate == 3000 and flagged.messages.seed == 7
    assert load(str(path), env={}, usable_cpus={0}).rate == 1000


@pytest.mark.parametrize("env,message", [
    ({"LOGGEN_WORKERS": "many"}, "LOGGEN_WORKERS: 'many' is not allowed; expected a whole number from 1 to 1024"),
    ({"LOGGEN_MESSAGES_SEED": "-1"}, "LOGGEN_MESSAGES_SEED: '-1' is not allowed"),
    ({"LOGGEN_TARGET": "5"}, "LOGGEN_TARGET: '5' is not allowed"),
    ({"LOGGEN_RAET": "5"}, "LOGGEN_RAET: no such setting (did you mean LOGGEN_RATE?)"),
])
def test_a_bad_variable_is_refused_naming_it(env, message):
    from loggend.cli import ERROR_LINE_CHARS
    from loggend.config import load
    from loggend.errors import UsageError
    with pytest.raises(UsageError) as err:
        load("/dev/null", env=env, usable_cpus={0})
    assert message in str(err.value)
    assert len(str(err.value)) <= ERROR_LINE_CHARS      # whole: the list of 59 variables was cut mid-name


# --- targets: a host name or an address written in full --------------------------------------------------

@pytest.mark.parametrize("target", ["5", "127.1", "10.1", "0x7f.1", "2130706433", "10.0.0.010", "1.2.3.4."])
def test_address_shorthand_is_refused(target):
    from loggend.config import load
    with pytest.raises(ConfigError, match="shorthand such as 5 or 127.1 is not accepted"):
        load("/dev/null", {"target": ("target", target)}, usable_cpus={0}, env={})


@pytest.mark.parametrize("target,host", [("127.0.0.1", "127.0.0.1"), ("localhost", "127.0.0.1"), ("::1", "::1"),
                                         ("[::1]:5514", "::1"), ("127.0.0.1:5514", "127.0.0.1")])
def test_full_addresses_and_names_are_accepted(target, host):
    from loggend.config import load
    assert load("/dev/null", {"target": ("target", target)}, usable_cpus={0}, env={}).host == host


def test_yaml_number_target_is_refused(tmp_path):
    from loggend.config import load
    path = tmp_path / "c.yaml"
    path.write_text("target: 5\n")
    with pytest.raises(ConfigError, match=r"c.yaml: target: '5' is not allowed"):
        load(str(path), usable_cpus={0}, env={})


# --- output and dashboard keys ---------------------------------------------------------------------------

def test_live_interval_and_dashboard_hosts():
    from loggend.config import LIVE_AUTO, parse_hosts, parse_live_interval
    assert parse_live_interval("k", "auto") == LIVE_AUTO and parse_live_interval("k", "60s") == 60
    for bad in ("0.5s", "2h", "often"):
        with pytest.raises(ConfigError):
            parse_live_interval("k", bad)
    assert parse_hosts("k", ["LoadGen.example", ".example", "*", "[::1]", "10.0.0.5"]) == (
        "loadgen.example", ".example", "*", "::1", "10.0.0.5")
    for bad in ("http://x", "a b", "x/y"):
        with pytest.raises(ConfigError):
            parse_hosts("k", bad)


def test_a_variable_or_flag_writes_a_list_or_a_mapping_as_the_file_does():
    """The file takes `ports: [514, 600-610]` and `estate: {...}`; LOGGEN_* (and flags) take the same
    flow form; a target in brackets is an IPv6 address, not a list."""
    from loggend.config import as_written, load
    from loggend.errors import UsageError
    c = load("", env={"LOGGEN_PORTS": "[56700, 56702]", "LOGGEN_ESTATE": "{cisco-asa: 4, linux: 300}"},
             usable_cpus={0, 1})
    assert c.ports == (56700, 56702)
    assert {name for name, _ in c.messages.sources} >= {"cisco-asa", "linux"}
    assert as_written("target", "--target", "[::1]:514") == "[::1]:514"
    assert as_written("ports", "--ports", "[514, 600-610]") == [514, "600-610"]
    with pytest.raises(UsageError, match="LOGGEN_ESTATE: line 1"):
        load("", env={"LOGGEN_ESTATE": "{cisco-asa: 4"}, usable_cpus={0, 1})


def test_the_truth_file_replaces_only_its_own_and_never_follows_a_link(tmp_path):
    from loggend.config import load
    from loggend.errors import UsageError
    other, link, old = tmp_path / "notes.txt", tmp_path / "link", tmp_path / "truth.jsonl"
    other.write_text("my notes\n")
    link.symlink_to(other)
    old.write_text('{"scenario": "ssh-bruteforce", "instance": "ssh-bruteforce#1"}\n')
    env = {"LOGGEN_SCENARIOS": "ssh-bruteforce"}
    with pytest.raises(UsageError, match="is not a truth file of loggen's"):
        load("", env={**env, "LOGGEN_TRUTH": str(other)}, usable_cpus={0, 1})
    with pytest.raises(UsageError, match="never follows links"):
        load("", env={**env, "LOGGEN_TRUTH": str(link)}, usable_cpus={0, 1})
    assert load("", env={**env, "LOGGEN_TRUTH": str(old)}, usable_cpus={0, 1}).truth == str(old)


@pytest.mark.parametrize("estate, why", [
    ("aws-vpc-flow=10000000", "5,000,000,000 ev/s, above the 1e+09"),     # a rate --rate would refuse
    ("sudo=4", "0.4 ev/s, less than one a second"),                        # it would read 0: unlimited
    (",,,", "an empty one is refused"),                                    # only commas: as empty as ""
    ("sudo=1,windows-dc=1000000", "the source would send nothing"),        # a share that rounds to nothing
    ("=4", "a device kind before each ="),
])
def test_an_estate_that_cannot_be_a_run_is_refused(estate, why):
    from loggend.config import load
    from loggend.errors import UsageError
    with pytest.raises((UsageError, ConfigError), match="LOGGEN_ESTATE") as err:
        load("", env={"LOGGEN_ESTATE": estate}, usable_cpus={0, 1})
    assert why in str(err.value)


def test_a_small_estate_gives_the_shares_of_a_rate_given_beside_it():
    from loggend.config import load
    c = load("", env={"LOGGEN_ESTATE": "sudo=4", "LOGGEN_RATE": "100"}, usable_cpus={0, 1})
    assert c.rate == 100 and [name for name, _ in c.messages.sources] == ["sudo"]


@pytest.mark.parametrize("mix", ["preset:enterprise,cisco-asa=5", "cisco-asa=5,preset:enterprise"])
def test_a_preset_is_a_whole_mix_not_a_part_of_one(mix):
    from loggend.config import load
    with pytest.raises(ConfigError, match="a preset alone"):
        load("", env={"LOGGEN_SOURCES": mix}, usable_cpus={0, 1})


def test_a_weight_without_a_name_says_so():
    from loggend.config import load
    with pytest.raises(ConfigError, match="a source name before each ="):
        load("", env={"LOGGEN_SOURCES": "cisco-asa=2,=5"}, usable_cpus={0, 1})


def test_show_takes_native_as_a_run_does():
    from loggend.content import registry
    from loggend.tools.sources import messages
    linux = registry.get("linux")
    assert linux is not None
    assert list(messages(linux, 2, "native", now=1.7e9)) == list(messages(linux, 2, "", now=1.7e9))


def test_sources_and_estate_in_one_file_name_the_file_once(tmp_path):
    from loggend.config import load
    from loggend.errors import UsageError
    path = tmp_path / "both.yaml"
    path.write_text("sources: cisco-asa\nestate: {cisco-asa: 2}\n")
    with pytest.raises(UsageError) as err:
        load(str(path), env={}, usable_cpus={0, 1})
    assert str(err.value) == (f"{path}: sources and estate: give one of them (an estate is turned into the shares "
                              "of a mix)")


@pytest.mark.parametrize(("parse", "text"), [
    (lambda t: parse_rate("--rate", t), "５k"), (lambda t: parse_duration("--duration", t), "５s"),
    (lambda t: parse_port("--ports", t), "５１４"), (lambda t: parse_int("--count", t, 1, 100), "５"),
    (lambda t: parse_int("--count", t, 1, 100), "٥"), (lambda t: parse_size("memory_limit", t), "５G"),
    (lambda t: parse_int_list("--ports", t, "ports", 1, 65535), "５１４-５１５")])
def test_numbers_are_written_with_the_digits_0_to_9(parse, text):
    """int() and regular expressions take other scripts' digits (a fullwidth ５, an Arabic-Indic ٥) as
    numbers; a value is refused as written, so what is checked is what the user sees."""
    with pytest.raises(ConfigError):
        parse(text)


@pytest.mark.parametrize("host", ["４7400", "５", "１０.１", "１２７.０.０.１", "127。1", "⑩.0.0.1", "⒑0.0.1",
                                  "¹²⁷.0.0.1"])
def test_a_host_written_with_other_digits_or_dots_is_refused_not_resolved(host):
    """The resolver's IDNA reads a fullwidth ４7400 as 47400 and then as the shorthand address 0.0.185.40,
    an address off the box: a host is judged as the resolver will read it, and other digits are refused."""
    from loggend.parsers import parse_host_name
    with pytest.raises(ConfigError):
        resolve_host("--target", host)
    with pytest.raises(ConfigError):
        parse_host_name("tls_server_name", host)           # nor a TLS name (127.1 is shorthand there too)


@pytest.mark.parametrize("host", ["exa\u200bmple.com", "localhost\u00ad", "\ufefflocalhost", "127.0.0.1\u200d",
                                  "local\u034fhost", "127.0.0.1\ufe0f", "127.0.0.1\u3164", "local\U000e0001host",
                                  "local\thost"])
def test_a_host_with_a_character_that_shows_as_nothing_is_refused_not_resolved(host):
    """IDNA drops a zero-width space, a soft hyphen or a byte-order mark: the name looked up (or sent
    and verified in TLS) would be another than the one on screen."""
    from loggend.parsers import parse_host_name
    with pytest.raises(ConfigError, match="without invisible characters"):
        resolve_host("--target", host)
    with pytest.raises(ConfigError, match="without invisible characters"):
        parse_host_name("tls_server_name", host)


@pytest.mark.parametrize(("env", "value"), [
    ("LOGGEN_MESSAGES_PRI_MIX", "auth.info=５"), ("LOGGEN_INSTANCE", "１/２"), ("LOGGEN_REPLAY_SPEED", "５x"),
    ("LOGGEN_SCENARIOS", "ssh-bruteforce:attempts=５")])
def test_other_digits_are_refused_wherever_a_number_is_read(env, value):
    from loggend.config import load
    from loggend.errors import UsageError
    with pytest.raises(UsageError):
        load("", env={env: value}, usable_cpus={0, 1})


def test_other_digits_are_refused_in_templates_percentages_and_detection_times():
    from loggend.control.detect import parse_time
    from loggend.engine.tokens import parse_args
    from loggend.errors import UsageError
    from loggend.tools.commands import parse_percent
    for kind, text in (("choice", "a*５|b"), ("hex", "１6"), ("float", "0-1/２")):
        with pytest.raises(ValueError):
            parse_args(kind, text)
    with pytest.raises(UsageError):
        parse_percent("--loss", "０.1")
    assert parse_time("１７００００００００") is None and parse_time("1700000000") == 1.7e9


@pytest.mark.parametrize(("target", "why"), [("127.0.0.1:", "a port"), ("127.0.0.1:\uff16\uff15", "a port"),
                                             ("[::1]:x", "a port")])
def test_a_bad_port_is_quoted_with_its_whole_target(target, why):
    with pytest.raises(ConfigError, match=f"^--target: {re.escape(repr(target))} is not allowed; expected {why}"):
        split_target("--target", target)


@pytest.mark.parametrize("host", ["no-such-host.invalid", "SIEM.Invalid.", "invalid", "127.0.0.1:25000:1"])
def test_a_name_under_invalid_or_with_a_colon_is_refused_without_asking_a_dns_server(host, monkeypatch):
    """RFC 6761: no name under .invalid exists, and no name has a colon: none is looked up (the box's DNS server
    is off it)."""
    def asked(*args, **kwargs):
        raise AssertionError(f"looked up {args[0]!r}")
    monkeypatch.setattr(socket, "getaddrinfo", asked)
    with pytest.raises(ConfigError, match="a host name that resolves|HOST:PORT"):
        resolve_host("--target", host)
