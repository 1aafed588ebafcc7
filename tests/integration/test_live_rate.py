"""Profiles and live rate control on the real program: exact totals, no silent moment at the receiver
when the rate changes, ``loggend ctl`` rate/pause/resume/status, SIGUSR1/SIGUSR2, who may control."""

import json
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import tests.support.processes as P
from loggend.engine.schedule import ROUNDING
from loggend.profiles import parse_profile
from tests.support.console import eps_of, largest_gap, live_lines
from tests.support.processes import ROOT, run_config, run_loggend, seq_of, stream_of, summary_of, wait_until
from tests.support.receivers import free_port

# every kind of segment in 4 seconds: 2,000 + 3,000 + 1,100 + 750 events
PROFILE = "ramp:1k-3k/1s,steps:3k-1k+1k/0.5s,burst:500-2k/0.2s/0.5s/1s,sine:1k-2k/1s"


def ctl(sock: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_loggend("ctl", "--socket", sock, *args, timeout=20)


def status(sock: str) -> dict:
    result = ctl(sock, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["status"]


def by_stream(datagrams) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for d in datagrams:
        out.setdefault(stream_of(d), []).append(seq_of(d))
    return out


@pytest.mark.slow
def test_a_timed_profile_sends_exactly_its_integral(tmp_path, receivers, loggend):
    (rx,) = receivers(1)
    expected = math.floor(parse_profile("p", PROFILE).events(4.0) + ROUNDING)
    assert expected in (6849, 6850)
    summary = tmp_path / "summary.json"
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=3), "--profile", PROFILE, "--duration", "4s",
                   "--summary-json", str(summary))
    assert proc.wait(40) == 0, proc.stderr
    doc = json.loads(summary.read_text())
    P.assert_sent_as_due(doc, expected)
    assert doc["profile"] == PROFILE
    assert f"  profile     {PROFILE}\n" in proc.stdout and "rate profile" in proc.stdout   # the sine lasts for ever
    streams = by_stream(rx.wait_for(expected))
    assert sum(len(s) for s in streams.values()) == expected
    assert all(sorted(s) == list(range(len(s))) for s in streams.values())


@pytest.mark.slow
@pytest.mark.serial
def test_rate_changes_inside_a_profile_and_live_leave_no_silent_100_ms(tmp_path, receivers, loggend):
    """Steps up and down and bursts (inside the plan), then a live cut to a tenth and a doubling:
    the receiver never waits 100 ms for a datagram."""
    (rx,) = receivers(1)
    sock = str(tmp_path / "ctl.sock")
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=1), "--control-socket", sock,
                   "--profile", "steps:2k-8k+3k/0.5s,steps:8k-2k+3k/0.5s,burst:2k-8k/0.25s/0.5s/1s,constant:20k",
                   "--summary-json", str(tmp_path / "summary.json"))
    proc.wait_line("(1/1 running)")
    wait_until(lambda: status(sock)["target_rate"] == 20_000, timeout=10, what="the profile's last segment")
    mark = len(rx.arrivals)
    wait_until(lambda: len(rx.arrivals) >= mark + 10_000, what="half a second at 20k ev/s")
    t_cut = time.monotonic()
    assert ctl(sock, "rate", "2k").returncode == 0
    mark = len(rx.arrivals)
    wait_until(lambda: len(rx.arrivals) >= mark + 2000, what="a second at 2k ev/s")
    proc.signal(signal.SIGUSR1)
    proc.wait_line("rate doubled: 4,000 ev/s (was 2,000 ev/s) (SIGUSR1)", stream="err")
    mark = len(rx.arrivals)
    wait_until(lambda: len(rx.arrivals) >= mark + 4000, what="a second at 4k ev/s")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0 and summary_of(tmp_path / "summary.json")["restarts"] == 0
    first, last = rx.arrivals[0], rx.arrivals[-1]
    assert largest_gap(rx.arrivals, first + 0.05, last - 0.05) < 0.1
    assert largest_gap(rx.arrivals, t_cut - 0.5, t_cut + 1.0) < 0.1
    assert "rate: 2,000 ev/s (was profile " in proc.stderr


RESUME_SLACK = 0.5      # the workers take up a resume a moment after the ctl call returns (the paused time ends then)


@pytest.mark.slow
@pytest.mark.serial
def test_ctl_rate_pause_resume_and_status_keep_a_timed_run_exact(tmp_path, receivers, loggend):
    """2k ev/s for 6 s of sending, paused 1.5 s in the middle: still exactly 12,000, and nothing arrives
    while it is paused."""
    (rx,) = receivers(1)
    sock = str(tmp_path / "ctl.sock")
    ready = tmp_path / "ready.json"
    summary = tmp_path / "summary.json"
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=2, rate="2k", duration="6s"),
                   "--control-socket", sock, "--ready-file", str(ready), "--summary-json", str(summary))
    wait_until(ready.exists, what="the ready file")
    assert json.loads(ready.read_text())["control_socket"] == sock
    assert oct(stat.S_IMODE(os.stat(sock).st_mode)) == "0o600"
    st = status(sock)
    assert st["state"] == "running" and st["target_rate"] == 2000 and st["workers"] == 2
    time.sleep(0.5)
    t_asked = time.monotonic()                                      # before the pause: bounds the paused time
    paused = ctl(sock, "pause")
    t_pause = time.monotonic()
    assert paused.returncode == 0 and re.fullmatch(r"paused: 2,000 ev/s frozen \d\.\d s in\n", paused.stdout)
    left = 6.0 - float(paused.stdout.split("frozen ")[1].split()[0])
    time.sleep(0.3)
    mark = len(rx.arrivals)
    time.sleep(1.2)
    assert len(rx.arrivals) == mark                                 # nothing while paused
    st = status(sock)
    assert st["state"] == "paused" and st["target_rate"] == 0 and st["end_in_seconds"] is None
    assert "target paused" in proc.out[-1]
    resumed = ctl(sock, "resume")
    held = time.monotonic() - t_asked + RESUME_SLACK                # at least 1.5 s; more on a busy box
    said = re.search(r"after (\d+\.\d) s paused", resumed.stdout)
    assert resumed.returncode == 0 and said and 1.4 <= float(said.group(1)) <= held, (resumed.stdout, held)
    assert proc.wait(30) == 0, proc.stderr
    elapsed = time.monotonic() - t_pause
    doc = json.loads(summary.read_text())
    P.assert_sent_as_due(doc, 12_000)
    assert doc["live_changes"] == 2
    assert 1.4 < doc["paused_seconds"] <= held
    assert elapsed > doc["paused_seconds"] + left - 0.3           # what was left was sent after the pause
    streams = by_stream(rx.wait_for(12_000))
    assert sorted(len(s) for s in streams.values()) == [6000, 6000]
    assert "paused: 2,000 ev/s frozen" in proc.stderr and "resumed: 2,000 ev/s from" in proc.stderr
    assert ctl(sock, "status").returncode == 1                      # the run is over: the socket is gone
    assert not os.path.exists(sock)


@pytest.mark.slow
@pytest.mark.serial
def test_ctl_rate_and_profile_change_the_rate_in_place(tmp_path, receivers, loggend):
    (rx,) = receivers(1)
    sock = str(tmp_path / "ctl.sock")
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=2, rate="2k"), "--control-socket", sock,
                   "--summary-json", str(tmp_path / "summary.json"))
    proc.wait_line("(2/2 running)")
    result = ctl(sock, "rate", "6k")
    assert result.returncode == 0 and result.stdout.strip() == "rate: 6,000 ev/s (was 2,000 ev/s)"
    mark = len(proc.out)
    wait_until(lambda: len(proc.out) >= mark + 3, what="live lines at the new rate")
    assert 5500 < eps_of(live_lines(proc.out)[-1]) < 6500 and "target 6,000" in live_lines(proc.out)[-1]
    assert ctl(sock, "profile", "ramp:6k-1k/20s").returncode == 0      # slow: seen on its way down, however busy
    wait_until(lambda: 3000 < status(sock)["target_rate"] < 6000, what="the ramp taking the rate down")
    st = status(sock)
    assert st["following"] == "profile ramp:6k-1k/20s" and st["changes"] == 2
    assert ctl(sock, "resume").stdout.strip() == "not paused"
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0 and summary_of(tmp_path / "summary.json")["live_changes"] == 2
    assert "rate 2,000 ev/s as configured" in proc.stdout and "; at the end profile ramp:6k-1k/20s" in proc.stdout


@pytest.mark.slow
def test_sigusr1_doubles_and_sigusr2_halves_and_the_children_ignore_them(tmp_path, loggend):
    sock = str(tmp_path / "ctl.sock")
    proc = loggend("run", "--config", "/dev/null", "--target", f"127.0.0.1:{free_port(tcp=False)}", "--workers", "2",
                   "--rate", "2k", "--dashboard", "off", "--pool-size", "1000", "--control-socket", sock,
                   "--local-sink", "--sink-processes", "1", "--summary-json", str(tmp_path / "summary.json"))
    proc.wait_line("(2/2 running)")
    os.killpg(proc.pid, signal.SIGUSR1)            # the whole group: the workers and the sink must ignore it
    proc.wait_line("rate doubled: 4,000 ev/s (was 2,000 ev/s) (SIGUSR1)", stream="err")
    assert status(sock)["target_rate"] == 4000
    proc.signal(signal.SIGUSR2)
    proc.wait_line("rate halved: 2,000 ev/s (was 4,000 ev/s) (SIGUSR2)", stream="err")
    proc.signal(signal.SIGUSR2)        # after the first was handled: two pending SIGUSR2 would be one
    proc.wait_line("rate halved: 1,000 ev/s (was 2,000 ev/s) (SIGUSR2)", stream="err")
    assert status(sock)["target_rate"] == 1000
    time.sleep(1.5)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    doc = summary_of(tmp_path / "summary.json")
    assert doc["restarts"] == 0 and doc["lost"] == 0 and doc["sink"]["received"] == doc["sent"] > 0, doc


@pytest.mark.slow
def test_unlimited_is_not_doubled(tmp_path, receivers, loggend):
    (rx,) = receivers(1)
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=1, rate=0, duration="3s"),
                   "--control-socket", "off")
    proc.wait_line("(1/1 running)")
    proc.signal(signal.SIGUSR1)
    proc.wait_line("SIGUSR1: ignored: the rate is unlimited", stream="err")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0 and "control socket" not in proc.stderr


@pytest.mark.slow
def test_a_second_run_on_the_same_socket_is_refused(tmp_path, receivers, loggend):
    (rx,) = receivers(1)
    sock = str(tmp_path / "ctl.sock")
    first = loggend("run", "--config", run_config(tmp_path, [rx], workers=1, rate="1k"), "--control-socket", sock)
    first.wait_line("(1/1 running)")
    second = loggend("run", "--config", run_config(tmp_path, [rx], workers=1, rate="1k"), "--control-socket", sock)
    assert second.wait(30) == 2                                    # a path in use: bad input, found before the run
    assert f"control socket {sock}: another run is listening there" in second.stderr
    assert status(sock)["state"] == "running"                     # the first one's socket is untouched
    first.signal(signal.SIGTERM)
    assert first.wait() == 0


@pytest.mark.root
@pytest.mark.slow
def test_only_root_or_the_runs_own_user_may_control_it(receivers, loggend):
    """uid 65534 is refused twice over: by the socket's mode (0600), and, with the mode opened on
    purpose, by SO_PEERCRED."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root to drop to an unprivileged user (setpriv)")
    (rx,) = receivers(1)
    scratch = Path(tempfile.mkdtemp(prefix="loggen-ctl-"))        # pytest's tmp_path is private to root
    os.chmod(scratch, 0o755)
    sock = str(scratch / "ctl.sock")
    proc = loggend("run", "--config", run_config(scratch, [rx], workers=1, rate="1k"), "--control-socket", sock)
    proc.wait_line("(1/1 running)")

    def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
                               "loggend", "ctl", "--socket", sock, *args], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd="/", timeout=30)
    denied = as_nobody("rate", "5k")
    assert denied.returncode == 1 and "permission denied" in denied.stderr
    os.chmod(sock, 0o666)
    refused = as_nobody("rate", "5k")
    assert refused.returncode == 1 and "refused: uid 65534 is neither root nor the run's uid 0" in refused.stderr
    proc.wait_line("control socket: refused pid", stream="err")
    assert status(sock)["target_rate"] == 1000 and status(sock)["changes"] == 0
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    shutil.rmtree(scratch)


@pytest.mark.slow
def test_a_reload_while_paused_stays_paused_and_its_profile_waits_for_the_resume(tmp_path, receivers, loggend):
    (rx,) = receivers(1)
    sock = str(tmp_path / "ctl.sock")
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=1, rate="2k"), "--control-socket", sock,
                   "--summary-json", str(tmp_path / "summary.json"))
    proc.wait_line("(1/1 running)")
    assert ctl(sock, "pause").returncode == 0
    run_config(tmp_path, [rx], workers=1, profile='"constant:4k"')          # the rate becomes a profile
    proc.signal(signal.SIGHUP)
    proc.wait_line("reload: 1 worker", stream="err")
    st = status(sock)
    assert st["state"] == "paused" and st["target_rate"] == 0 and st["following"] == "4,000 ev/s"
    assert st["profile"] == "constant:4k"
    mark = len(rx.arrivals)
    time.sleep(0.5)
    assert len(rx.arrivals) == mark
    assert ctl(sock, "resume").returncode == 0
    wait_until(lambda: status(sock)["target_rate"] == 4000, timeout=5, what="the reloaded profile after the resume")
    wait_until(lambda: len(rx.arrivals) > mark + 1000, timeout=5, what="datagrams after the resume")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0 and summary_of(tmp_path / "summary.json")["restarts"] == 0


@pytest.mark.slow
def test_a_rate_below_1_is_refused_live_as_it_would_show_as_0_which_means_unlimited(tmp_path, receivers, loggend):
    """``ctl rate 0.0000001`` was taken and shown as 0 ev/s; halving 1 ev/s made 0.5, shown as 0 too."""
    from loggend.control.ctlsocket import request
    (rx,) = receivers(1)
    sock = str(tmp_path / "ctl.sock")
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=1, rate="1"), "--control-socket", sock)
    proc.wait_line("(1/1 running)")
    refused = ctl(sock, "rate", "0.0000001")
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "loggend: error: rate: '0.0000001' is not allowed; expected events per second of at least 1, or 0 (unlimited)")
    reply = request(sock, "rate 0.4")                       # the run itself refuses it too, not only the ctl command
    assert reply["ok"] is False and reply["usage"] and "at least 1, or 0 (unlimited)" in reply["message"]
    assert ctl(sock, "profile", "constant:0.5/1s,constant:1k").returncode == 2
    proc.signal(signal.SIGUSR2)
    proc.wait_line("SIGUSR2: ignored: a rate would be under 1 ev/s, the least a rate may be but 0", stream="err")
    assert status(sock)["target_rate"] == 1 and status(sock)["changes"] == 0
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


def test_find_limit_refuses_a_rate_below_1_before_it_sends(tmp_path):
    """``--start-rate 0.4 --max-rate 0.4`` said "from 0 ev/s", flooded (rate 0 is unlimited), then ZeroDivisionError."""
    result = run_loggend("find-limit", "--config", "/dev/null", "--target", f"127.0.0.1:{free_port(tcp=False)}",
                         "--feedback", "command:echo 0", "--start-rate", "0.4", "--max-rate", "0.4",
                         "--report-dir", str(tmp_path / "report"), timeout=30)
    assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
    assert result.stderr.strip() == ("loggend: error: --start-rate: '0.4' is not allowed; expected events per second "
                                     "of at least 1, or 0 (unlimited)")


@pytest.mark.slow
def test_a_live_rise_past_max_rate_or_ten_times_is_refused_unless_forced(tmp_path, loggend):
    """The defect: `ctl rate 100m` on a 20,000 ev/s run was applied at once (a typo for 100k)."""
    sock, path = str(tmp_path / "ctl.sock"), tmp_path / "loggen.yaml"
    port = free_port(tcp=False)

    def config(rate: int) -> None:
        path.write_text(f'target: 127.0.0.1\nports: "{port}"\nworkers: 1\nrate: {rate}\nmax_rate: 5k\n'
                        "dashboard: off\nmessages:\n  pool_size: 1000\n")
    config(100)
    proc = loggend("run", "--config", str(path), "--control-socket", sock, "--local-sink", "--sink-processes", "1")
    proc.wait_line("(1/1 running)")
    refused = ctl(sock, "rate", "2k")                             # 20 times 100 ev/s
    assert refused.returncode == 1 and status(sock)["target_rate"] == 100
    assert "refused: 2,000 ev/s is more than 10 times the rate in force (100 ev/s); add --force if you mean it" \
        in refused.stdout + refused.stderr
    above = ctl(sock, "rate", "6k")
    assert above.returncode == 1 and "6,000 ev/s is above max_rate 5,000 ev/s" in above.stdout + above.stderr
    assert ctl(sock, "rate", "6k", "--force").returncode == 0 and status(sock)["target_rate"] == 6000
    assert ctl(sock, "rate", "3k").returncode == 0
    proc.signal(signal.SIGUSR1)                                   # doubling stops at max_rate
    proc.wait_line("rate scaled x1.67 (to max_rate): 5,000 ev/s (was 3,000 ev/s) (SIGUSR1)", stream="err")
    proc.signal(signal.SIGUSR1)
    proc.wait_line("SIGUSR1: ignored: the rate is at max_rate 5,000 ev/s already", stream="err")
    assert ctl(sock, "rate", "100").returncode == 0
    config(4000)                                                  # 40 times what runs now
    proc.signal(signal.SIGHUP)
    proc.wait_line("reload: 4,000 ev/s is more than 10 times the rate in force (100 ev/s); keeping the running "
                   "config (loggend ctl reload --force applies it)", stream="err")
    assert status(sock)["target_rate"] == 100
    asked = ctl(sock, "reload")                                   # the same by the control socket: said, exit 1
    assert asked.returncode == 1 and "reload: 4,000 ev/s is more than 10 times" in asked.stdout + asked.stderr
    forced = ctl(sock, "reload", "--force")
    assert forced.returncode == 0 and "reload: 1 worker" in forced.stdout, forced.stdout + forced.stderr
    wait_until(lambda: status(sock)["target_rate"] == 4000, what="the forced reload's rate")
    assert ctl(sock, "status", "--force").returncode == 2           # --force means nothing there
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.stderr


def test_a_rate_above_max_rate_is_refused_at_the_start():
    result = run_loggend("run", "--config", "/dev/null", "--target", "127.0.0.1:9", "--rate", "20k", "--max-rate",
                         "10k", "--duration", "1s")
    assert result.returncode == 2 and result.stderr.strip() == \
        "loggend: error: --rate: 20,000 ev/s is above --max-rate 10,000 ev/s; lower it, or raise max_rate"


@pytest.mark.slow
def test_sigusr1_without_max_rate_stops_at_ten_times_the_configured_rate(loggend):
    """Twelve SIGUSR1 took 10 ev/s to 40,960: each step was only 2x, the whole 4,096x."""
    proc = loggend("run", "--config", "/dev/null", "--target", f"127.0.0.1:{free_port(tcp=False)}", "--rate", "100",
                   "--workers", "1", "--dashboard", "off", "--pool-size", "1000", "--control-socket", "off",
                   "--local-sink", "--sink-processes", "1")
    proc.wait_line("(1/1 running)")
    for rate in ("200", "400", "800"):
        proc.signal(signal.SIGUSR1)
        proc.wait_line(f"rate doubled: {rate} ev/s", stream="err")
    proc.signal(signal.SIGUSR1)
    proc.wait_line("SIGUSR1: ignored: the rate would be more than 10 times the configured 100 ev/s (loggend ctl "
                   "rate R --force goes past it)", stream="err")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0, proc.stderr
