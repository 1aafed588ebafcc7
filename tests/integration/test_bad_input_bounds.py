"""Bad input that once got through (issue 12): numbers without bounds, config files that are not
files, alias bombs, error lines megabytes long. Each is one line naming the key, and exit 2; a
reload with such a value is logged and ignored, and the run goes on."""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.support.processes import assert_sent_as_due, run_loggend, summary_of, write_config
from tests.support.receivers import free_port

HUGE = "9" * 400
# 9 levels of 9 aliases each: 9**9 (387 million) values once expanded, in a few hundred bytes
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


def one_line(result, *parts: str) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[:2000]
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("text,message", [
    (f"duration: {HUGE}\n", "duration: 9999999"),
    (f"duration: {HUGE}s\n", "is not allowed; expected a duration of at most 3650d"),
    (f"memory_limit: {HUGE}\n", "is not allowed; expected a size of at most 1.0 EiB"),
    (f"hung_timeout: {HUGE}\n", "hung_timeout"),
    ("hung_timeout: 2h\n", "hung_timeout: '2h' is not allowed; expected from 1s"),
    (f"ports: {'9' * 5000}\n", "line 1, column 8: a value out of any range: Exceeds the limit (4300 digits)"),
    (f"ports: {'9' * 4000}\n", "ports: 99999"),
    (f"instance: {'9' * 5000}/3\n", "instance:"),
    (f"dashboard_interval: {HUGE}\n", "dashboard_interval"),
    (f"messages:\n  pri_mix: auth.info={HUGE}\n", "messages.pri_mix"),
])
def test_numbers_without_bounds_are_refused(tmp_path, text, message):
    """`check-config` once accepted a 400-digit duration as "inf s"; `hung_timeout: 9...9` silently
    disabled hung detection. (`run` reads the file the same way: the duration case runs it too.)"""
    path = write_config(tmp_path / "big.yaml", text)
    args = ("check-config", path)
    if text.startswith("duration"):
        one_line(run_loggend("run", "--config", path, "--dashboard", "off", timeout=30), message)
    line = one_line(run_loggend(*args, timeout=30), message)
    assert len(line) < 600 and not re.search(r"\binf\b", line), line


def test_config_files_that_are_not_regular_files_are_refused(tmp_path):
    """`/dev/zero` was read until MemoryError, and a FIFO hung the start."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    one_line(run_loggend("check-config", "/dev/zero", timeout=30), "/dev/zero: is a character device; expected a "
             "regular file")
    one_line(run_loggend("run", "--config", str(fifo), timeout=30), f"{fifo}: is a FIFO; expected a regular file")
    one_line(run_loggend("check-config", str(tmp_path), timeout=30), "is a directory; expected a regular file")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (2 << 20) + "\nrate: 5\n")
    one_line(run_loggend("check-config", str(big), timeout=30), f"{big}: larger than 1,024 KiB")
    assert run_loggend("check-config", "/dev/null", timeout=30).returncode == 0     # the usual empty config


def test_an_alias_bomb_is_refused_before_it_is_built(tmp_path):
    """A YAML alias bomb once took 2.5 GB before a traceback."""
    path = write_config(tmp_path / "bomb.yaml", BOMB)
    assert len(BOMB) < 400
    one_line(run_loggend("check-config", path, timeout=60), f"{path}: its aliases expand to more than 1,000,000 "
             "values (an alias bomb?)")
    loop = write_config(tmp_path / "loop.yaml", "rate: &r [1, *r]\n")
    one_line(run_loggend("check-config", loop, timeout=30), "its aliases expand to more than")


def test_a_key_given_twice_is_refused_not_silently_the_last(tmp_path):
    """YAML loaders keep the last of two equal keys: `rate: 1000` then, 40 lines down, `rate: 5000`
    would run at 5000 without a word."""
    path = write_config(tmp_path / "twice.yaml", "rate: 1000\nworkers: 2\nrate: 5000\n")
    one_line(run_loggend("check-config", path, timeout=30),
             f"{path}: line 3, column 1: 'rate' is given twice (first on line 1); YAML would keep only the last")
    inner = write_config(tmp_path / "inner.yaml", "templates:\n  - name: a\n    message: x\n    name: b\n")
    one_line(run_loggend("check-config", inner, timeout=30), "line 4, column 5: 'name' is given twice")
    shared = write_config(tmp_path / "shared.yaml", "templates:\n  - &t {name: a, message: x}\n  - *t\n")
    assert "given twice" not in run_loggend("check-config", shared, timeout=30).stderr      # an alias is not a key


def test_a_small_bomb_under_a_key_gives_a_short_error_line(tmp_path):
    """A 377-byte bomb under `ports:` once gave a 39 MB error line: under the alias cap (9**6 values),
    it is refused as a bad value, quoted cut short."""
    levels = ["&l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"] + [f"&l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 6)]
    text = f"ports: [{', '.join(levels)}]\n"
    assert len(text) < 400
    path = write_config(tmp_path / "ports.yaml", text)
    line = one_line(run_loggend("check-config", path, timeout=60), f"{path}: ports: [[1, 1, 1, 1, 1, 1, ...], ",
                    "is not allowed; expected ports from 1 to 65535")
    assert len(line) < 400, len(line)


@pytest.mark.slow
def test_a_reload_with_a_400_digit_duration_is_logged_and_ignored(loggend, receiver, tmp_path):
    """A 400-digit `duration` or `memory_limit` sent with SIGHUP once killed the live run with an
    OverflowError; the README promises an invalid reload is logged and ignored."""
    path = tmp_path / "loggen.yaml"
    body = f"target: 127.0.0.1\nports: {receiver.port}\nworkers: 1\nrate: 2000\ndashboard: off\n"
    write_config(path, body + "duration: 4s\n")
    proc = loggend("run", "--config", str(path), "--summary-json", str(tmp_path / "summary.json"))
    proc.wait_line("(1/1 running)")
    for bad in (f"duration: {HUGE}\n", f"memory_limit: {HUGE}\n", f"hung_timeout: {HUGE}\n"):
        write_config(path, body + ("" if bad.startswith("duration") else "duration: 4s\n") + bad)
        seen = len(proc.err)
        proc.signal(signal.SIGHUP)
        err = proc.wait_line("keeping the running config", stream="err", after=seen)
        assert "is not allowed" in err and len(err.splitlines()[-1]) < 600
    assert proc.wait(30) == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "OverflowError" not in proc.stderr
    doc = summary_of(tmp_path / "summary.json")
    assert_sent_as_due(doc, 8000)


@pytest.mark.parametrize("name,shown", [("a" * 300, "'aaaaaaaaaa"), ("my host", "'my host'"),
                                        ("a..example", "'a..example'")])
def test_a_tls_server_name_no_handshake_can_use_is_refused_at_load(tmp_path, name, shown):
    """A 300-character or spaced tls_server_name passed check-config and stopped the run with exit 1."""
    path = write_config(tmp_path / "tls.yaml", f"protocol: tls\ntarget: 127.0.0.1:{free_port(udp=False)}\n"
                        f"tls_server_name: {name}\n")
    for args in (("check-config", path), ("run", "--config", path, "--dashboard", "off", "--duration", "1s")):
        one_line(run_loggend(*args, timeout=30), f"tls_server_name: {shown}", "is not allowed; expected a host name "
                 "(labels of 1 to 63 letters, digits or hyphens, at most 253 characters in all) or an IP address")


def test_good_tls_server_names_pass(tmp_path):
    for name in ("siem.example.com", "127.0.0.1", "::1", "exämple.com", "siem-01.example.", "in_put.local"):
        path = write_config(tmp_path / "tls.yaml", f"protocol: tls\ntarget: 127.0.0.1:{free_port(udp=False)}\n"
                            f"tls_server_name: '{name}'\n")
        result = run_loggend("check-config", path, timeout=30)
        assert result.returncode == 0, (name, result.stderr)
