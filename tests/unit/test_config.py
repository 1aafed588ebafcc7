import pytest

from loggend.config import (
    parse_duration,
    parse_pool_size,
    parse_port,
    parse_pri_mix,
    parse_rate,
    resolve_host,
    split_target,
)
from loggend.errors import ConfigError


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
