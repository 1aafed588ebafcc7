"""The real program: python -m loggend on loopback, high ports."""

import os
import signal
import subprocess
import sys

import pytest

from tests.support.processes import ROOT, RUN, child_environ, run_loggend, seq_of, wait_until
from tests.unit.test_render import RFC3164

BAD_INPUT = [
    (["run", "--transport", "carrier-pigeon"], "--transport"),
    (["run", "--transport", "gso", "--protocol", "tcp"], "--transport: only with --protocol udp"),
    (["run", "--framing", "lf"], "--framing: only with --protocol tcp or tls"),
    (["run", "--rate", "-5"], "--rate"),
    (["run", "--rate", "lots"], "--rate"),
    (["run", "--target", "no-such-host.invalid:514"], "--target"),
    (["run", "--target", "127.0.0.1:0"], "--target"),
    (["run", "--target", "127.0.0.1:70000"], "--target"),
    (["run", "--duration", "5 minutes"], "--duration"),
    (["run", "--duration", "-3s"], "--duration"),
    (["run", "--seed", "x"], "--seed"),
    (["run", "--hosts", "0"], "--hosts"),
    (["run", "--timezone", "mars"], "--timezone"),
    (["run", "--pri-mix", "auth.loud=1"], "--pri-mix"),
    (["run", "--max-length", "20"], "--max-length"),
    (["run", "--pool-size", "1234"], "--pool-size"),
    (["run", "--stream-id", "has space"], "--stream-id"),
    (["run", "--bogus"], "--bogus"),
    (["run", "--rat", "1k"], "--rat"),                    # no abbreviations: a typo is not another flag
    (["launch"], "launch"),
    (["sink", "--listen", "127.0.0.1:99999"], "--listen"),
    (["sink", "--ports", "514-x"], "--ports"),
    (["sink", "--processes", "-1"], "--processes"),
    (["sink", "--dashboard", "nowhere"], "--dashboard"),
    (["perftest", "--duration", "0"], "--duration"),
    (["perftest", "--rate", "fast"], "--rate"),
    (["perftest", "--target-cpu", "150"], "--target-cpu"),
    (["perftest", "--target-memory", "lots"], "--target-memory"),
    (["tune", "fly"], "fly"),
    (["run", "--sink-processes", "999"], "--sink-processes"),
    (["run", "--dashboard-token", "short"], "--dashboard-token"),
    (["run", "--dashboard-interval", "0s"], "--dashboard-interval"),
    (["run", "--instance", "3/3"], "--instance"),
    (["run", "--instance", "0/0"], "--instance"),
    (["run", "--instance", "two of three"], "--instance"),
    (["run", "--instance", "1/1001"], "--instance"),
    (["run", "--run-id", "has space"], "--run-id"),
    (["run", "--start-at", "2020-01-01T00:00:00Z"], "--start-at"),
    (["run", "--start-at", "2099-01-01T00:00:00"], "--start-at"),      # no offset: whose midnight?
    (["run", "--start-at", "tomorrow"], "--start-at"),
    (["run", "--start-at", "+soon"], "--start-at"),
    (["sink", "--run-id", "a/b"], "--run-id"),
    (["run", "--profile", "ramp:10k/60s"], "--profile"),
    (["run", "--profile", "wobble:1-2/3s"], "--profile"),
    (["run", "--profile", "constant:1k,constant:2k"], "--profile"),
    (["run", "--profile", "burst:1k-2k/5s/5s"], "--profile"),
    (["run", "--profile", "constant:1k/1s", "--rate", "5k"], "--profile"),
    (["run", "--control-socket", "/tmp/" + "x" * 200], "--control-socket"),
    (["ctl", "rate", "fast"], "rate"),
    (["ctl", "rate"], "ctl rate"),
    (["ctl", "pause", "now"], "ctl pause"),
    (["ctl", "profile", "ramp:1k"], "profile"),
    (["ctl", "jump"], "jump"),
    (["find-limit"], "--feedback"),
    (["find-limit", "--feedback", "carrier:pigeon"], "--feedback"),
    (["find-limit", "--feedback", "sink:localhost"], "--feedback"),
    (["find-limit", "--feedback", "prometheus:http://127.0.0.1:9090"], "--feedback-query"),
    (["find-limit", "--feedback", "sink:http://127.0.0.1:1", "--feedback-query", "up"], "--feedback-query"),
    (["find-limit", "--feedback", "command:true", "--start-rate", "0"], "--start-rate"),
    (["find-limit", "--feedback", "command:true", "--start-rate", "2M", "--max-rate", "1M"], "--max-rate"),
    (["find-limit", "--feedback", "command:true", "--precision", "0"], "--precision"),
    (["find-limit", "--feedback", "command:true", "--loss", "101"], "--loss"),
    (["find-limit", "--feedback", "command:true", "--trial", "0s"], "--trial"),
    (["find-limit", "--feedback", "command:true", "--max-time", "10s"], "--max-time"),
    (["find-limit", "--feedback", "command:true", "--workers", "0"], "--workers"),
    # a detect command that cannot be started was found out at the end of the run (every instance 'unknown')
    (["run", "--scenario", "ssh-bruteforce", "--detect", "command:./no-such-detector.sh"],
     "a command that can be run (./no-such-detector.sh: no such file)"),
    # one instance at the start of every trial: a repeating one, or one outlasting the trial, was judged at the
    # rate of a later trial (every= failed the first trial instead)
    (["find-limit", "--feedback", "command:true", "--trial", "2s", "--scenario", "ssh-bruteforce:every=5"],
     "every= is not allowed here"),
    (["find-limit", "--feedback", "command:true", "--trial", "2s", "--scenario", "port-scan:at=3"],
     "--trial is 2 s"),
]


@pytest.mark.parametrize("args,name", BAD_INPUT)
def test_bad_input_is_one_line_naming_the_flag_and_exit_2(args, name):
    if args[0] == "run":
        args = ["run", "--config", "/dev/null", *args[1:]]
    result = run_loggend(*args, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_the_transport_is_said_once_not_once_a_worker(receiver):
    result = run_loggend(*RUN, "--workers", "3", "--target", f"127.0.0.1:{receiver.port}", "--rate", "300",
                         "--duration", "1s")
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if ": transport " in line] == [
        "loggend: worker 0: transport gso: the kernel accepts UDP_SEGMENT"], result.stderr


@pytest.mark.slow
def test_run_sends_exactly_rate_times_duration_and_reports(receiver):
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--rate", "4000", "--duration", "2s",
                         "--pool-size", "1000", "--seed", "7")
    assert result.returncode == 0, result.stderr
    got = receiver.wait_for(8000)
    assert len(got) == 8000
    assert [seq_of(d) for d in got] == list(range(8000))
    assert all(RFC3164.fullmatch(d) for d in got)
    assert "sent        8,000 events" in result.stdout
    assert "ev/s" in result.stdout.splitlines()[0]               # live lines come first
    assert "transport gso" in result.stdout
    assert "worker 0: transport gso" in result.stderr


@pytest.mark.slow
@pytest.mark.alone
def test_pacing_spreads_traffic_over_the_run(receiver):
    rate, seconds = 2000, 3
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--rate", str(rate),
                         "--duration", f"{seconds}s", "--pool-size", "1000")
    assert result.returncode == 0, result.stderr
    got = receiver.wait_for(rate * seconds)
    assert len(got) == rate * seconds
    times = receiver.arrivals
    assert times[-1] - times[0] > seconds * 0.8                  # not one burst
    window, most = 0.1, 0
    j = 0
    for i in range(len(times)):                                  # busiest 100 ms window
        while times[i] - times[j] > window:
            j += 1
        most = max(most, i - j + 1)
    assert most < rate * seconds * 0.25                           # expected ~200 of 6000


def test_sigterm_stops_gracefully_with_a_summary(receiver):
    env = child_environ()
    proc = subprocess.Popen([sys.executable, "-m", "loggend", *RUN, "--target", f"127.0.0.1:{receiver.port}",
                             "--rate", "20000", "--pool-size", "1000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        wait_until(lambda: receiver.datagrams, timeout=20, what="the first datagram")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert "summary:" in out
    sent = int(out.split("sent        ")[1].split(" events")[0].replace(",", ""))
    assert len(receiver.wait_for(sent)) == sent


def test_unreachable_target_fails_with_a_message_not_a_loop():
    result = run_loggend(*RUN, "--target", "255.255.255.255:9", "--duration", "5s", "--pool-size", "1000")
    assert result.returncode == 1
    assert "cannot start sending to 255.255.255.255:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_hot_path_imports_only_the_standard_library_and_the_engine():
    code = (
        "import sys, loggend.engine.worker as w\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('flask', 'yaml', 'prometheus_client', 'psutil')]\n"
        "ours = [m for m in sys.modules if m.startswith('loggend') and not m.startswith('loggend.engine')]\n"
        "print(bad, [m for m in ours if m not in ('loggend', 'loggend.errors')])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=30)
    assert result.stdout.strip() == "[] []", result.stdout + result.stderr
    # loggend.errors is allowed only because it imports nothing at all
    import ast
    tree = ast.parse((ROOT / "loggend" / "errors.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [getattr(n, "module", None) for n in imports] == ["__future__"]


@pytest.mark.slow
def test_sd_notify_ready_status_watchdog_reloading_and_stopping(receiver, tmp_path):
    import socket as s
    path = str(tmp_path / "notify")
    notify = s.socket(s.AF_UNIX, s.SOCK_DGRAM)
    notify.bind(path)
    notify.settimeout(20)
    env = child_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    proc = subprocess.Popen([sys.executable, "-m", "loggend", *RUN, "--target", f"127.0.0.1:{receiver.port}",
                             "--rate", "1000", "--pool-size", "1000"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    seen: list[bytes] = []
    try:
        while not (any(m.startswith(b"READY=1") for m in seen) and any(m.startswith(b"STATUS=") for m in seen)
                   and seen.count(b"WATCHDOG=1") >= 2):
            seen.append(notify.recv(4096))
        proc.send_signal(signal.SIGHUP)          # a reload: RELOADING=1, then READY=1 again
        while not any(m.startswith(b"RELOADING=1") for m in seen):
            seen.append(notify.recv(4096))
        mark = len(seen)
        while not any(m.startswith(b"READY=1") for m in seen[mark:]):
            seen.append(notify.recv(4096))
        proc.send_signal(signal.SIGTERM)
        while b"STOPPING=1" not in seen:
            seen.append(notify.recv(4096))
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        notify.close()
    ready = next(m for m in seen if m.startswith(b"READY=1"))
    assert receiver.datagrams                       # READY=1 came once the worker was sending
    assert b"STATUS=sending to 127.0.0.1" in ready
    assert any(b"ev/s" in m for m in seen if m.startswith(b"STATUS="))
