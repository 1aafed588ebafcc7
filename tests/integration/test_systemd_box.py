"""The front door under a real systemd: the README's "Under systemd" steps, command by command.

A throw-away systemd is booted in systemd-nspawn on the machine's own root (``tests.support.nspawn``:
a private network with only ``lo``, an overlay that vanishes at power-off). Inside it, as root:
``make install`` from a copy of this checkout (``man loggend`` and bash completion work there), the config
of the README written to /etc/loggen.yaml, ``systemctl start loggen`` (READY), ``/metrics``, a reload to a
new rate, a reload of a broken file (an error in ``journalctl -p err``, the old config running on), the
watchdog fed,
a SIGKILL of the main process (systemd restarts it; no worker of the old one is left), ``systemctl
stop`` (Result=success), the journal's start lines and summary, a loggen@ instance, and ``make
uninstall``. The README's section must contain every command run here and the config written, so
the two cannot drift apart.

The box has no route to a package index: the wheels ``make install`` needs are downloaded on the
host first (``pip download --only-binary=:all:``) and bound read-only at /wheelhouse.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import tomllib
from pathlib import Path

import pytest

from tests.support import nspawn
from tests.support.processes import ROOT

pytestmark = [pytest.mark.root, pytest.mark.slow]

PIP_OFFLINE = {"PIP_CONFIG_FILE": "/dev/null", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheelhouse",
               "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
# What the README tells a newcomer to put in /etc/loggen.yaml for a first run, and the edits after it.
CONFIG = """\
target: 127.0.0.1
ports: 5514-5515
rate: 2k
workers: 2
local_sink: true
sink_processes: 1
dashboard: 127.0.0.1:8080
"""
FASTER = CONFIG.replace("rate: 2k", "rate: 4k")
BROKEN = CONFIG.replace("rate: 2k", "rate: lots")
SECOND = CONFIG.replace("5514-5515", "5516-5517").replace("dashboard: 127.0.0.1:8080", "dashboard: 127.0.0.1:8081") \
    + "optimize: true\n"
WATCHDOG_DROPIN = "[Service]\nWatchdogSec=3s\n"
WATCHDOG_SECONDS = 3.0
# Every command the README's section shows, run here as it is written there (without `sudo `).
COMMANDS = {
    "install": "sudo make install",
    "dropin": "sudo mkdir -p /etc/systemd/system/loggen.service.d && "
              "printf '[Service]\\nWatchdogSec=3s\\n' | sudo tee /etc/systemd/system/loggen.service.d/watchdog.conf",
    "daemon-reload": "sudo systemctl daemon-reload",
    "start": "sudo systemctl start loggen",
    "status": "systemctl show loggen -p ActiveState,SubState,StatusText",
    "metrics": "curl -s http://127.0.0.1:8080/metrics | grep -E '^loggen_(events_sent|sink_received)_total'",
    "reload": "sudo systemctl reload loggen",
    "reloaded": "journalctl -u loggen -g reload:",
    "errors": "journalctl -u loggen -p err",
    "ctl-rate": "sudo loggend ctl rate 3k",
    "ctl-status": "sudo loggend ctl status",
    "stop": "sudo systemctl stop loggen",
    "journal": "journalctl -u loggen -o cat",
    "instance": "sudo systemctl start loggen@second",
    "instance-warnings": "journalctl -u loggen@second -p warning",
    "instance-stop": "sudo systemctl stop loggen@second",
    "uninstall": "sudo make uninstall",
}


def readme_section() -> str:
    """The manual's systemd page (docs/systemd.md), which the README points to."""
    return (ROOT / "docs" / "systemd.md").read_text()


def test_the_readme_shows_exactly_what_the_box_test_runs():
    section = readme_section()
    for name, command in COMMANDS.items():
        assert command in section, (name, command)
    for config in (CONFIG, "rate: 4k", "rate: lots", SECOND):
        assert config in section, config
    assert WATCHDOG_DROPIN.replace("\n", "\\n") in section


def wheelhouse(dest: Path) -> str | None:
    """The wheels `make install` needs, fetched on the host; None, or why they could not be."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = meta["build-system"]["requires"] + meta["project"]["dependencies"]
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
    result = subprocess.run([python, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(dest),
                             *reqs], capture_output=True, text=True, timeout=600)
    if result.returncode:
        return "cannot download the wheels for make install: " + (result.stderr.strip().splitlines() or ["?"])[-1]
    return None


def sh(box: nspawn.Box, command: str, timeout: float = 60.0, **kw) -> subprocess.CompletedProcess[str]:
    """A README command, as root (so without `sudo `)."""
    return box.sh(command.replace("sudo ", ""), timeout, **kw)


def processes(box: nspawn.Box) -> list[tuple[int, int, str]]:
    """(pid, ppid, name) of every loggend process in the box."""
    out = box.run(["ps", "-e", "-o", "pid=,ppid=,comm="], check=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines()]
    return [(int(p), int(pp), name) for p, pp, name in rows if name.startswith("loggend")]


def live_rate(status_text: str) -> float:
    m = re.search(r"\]\s+([\d,]+) ev/s", status_text)
    return float(m.group(1).replace(",", "")) if m else -1.0


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    reason = nspawn.available()
    if reason:
        pytest.skip(f"no booted systemd for the unit test: {reason}")
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (scripts/system-deps.sh installs it as root)")
    work = tmp_path_factory.mktemp("systemd-box")
    wheels = work / "wheelhouse"
    reason = wheelhouse(wheels)
    if reason:
        pytest.skip(reason)
    b = nspawn.Box(ROOT, work / "box", extra_args=[f"--bind-ro={wheels}:/wheelhouse"])
    b.start(60)
    yield b
    b.stop()


def test_install_start_metrics_reload_watchdog_restart_stop_under_systemd(box):
    install = sh(box, COMMANDS["install"], timeout=900, cwd="/src", env=PIP_OFFLINE)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    assert re.search(r"^installed loggend \S+ from /usr/bin/python3", install.stdout, re.M), install.stdout
    # the man page and the shell completion, where man and bash (and zsh) look for them
    page = box.run(["man", "loggend"], env={"MANPAGER": "cat", "MANWIDTH": "100", "LANG": "C.UTF-8"})
    assert page.returncode == 0 and "loggend - syslog load generator" in page.stdout.replace("\u2010", "-"), page
    assert "LOGGEN_MESSAGES_SEED" in page.stdout.replace("\u2010", "").replace("-\n", "")
    completed = box.run(["bash", "-c", ". /usr/local/share/bash-completion/completions/loggend && "
                         "COMP_WORDS=(loggend run --proto) COMP_CWORD=2 && _loggend && echo ${COMPREPLY[*]}"])
    assert completed.stdout == "--protocol\n", completed
    assert box.run(["test", "-s", "/usr/local/share/zsh/site-functions/_loggend"]).returncode == 0
    box.write_file("/etc/loggen.yaml", CONFIG)
    assert sh(box, COMMANDS["dropin"]).returncode == 0
    assert box.run(["cat", "/etc/systemd/system/loggen.service.d/watchdog.conf"]).stdout == WATCHDOG_DROPIN
    assert sh(box, COMMANDS["daemon-reload"]).returncode == 0

    # start: Type=notify, so systemctl returns once READY=1 came (every worker sending)
    t0 = time.monotonic()
    start = sh(box, COMMANDS["start"], timeout=90)
    assert start.returncode == 0, start.stderr + box.journal("loggen")[-3000:]
    started = time.monotonic()
    shown = box.show("loggen", "ActiveState", "SubState", "MainPID", "NRestarts", "WatchdogUSec")
    assert (shown["ActiveState"], shown["SubState"], shown["NRestarts"]) == ("active", "running", "0"), shown
    assert shown["WatchdogUSec"] == "3s"
    first_pid = int(shown["MainPID"])
    assert "ready: 2 of 2 workers sending to 127.0.0.1:5514-5515" in box.journal("loggen")
    status = wait(lambda: s if "ev/s" in (s := sh(box, COMMANDS["status"]).stdout) else None, 10, "a live STATUS")
    assert "ActiveState=active" in status and "SubState=running" in status

    # /metrics answers inside the box, with one charset and the supervisor's process figures
    metrics = sh(box, COMMANDS["metrics"])
    assert metrics.returncode == 0, metrics.stdout
    sent = r'^loggen_events_sent_total\{instance_index="0",run_id="[0-9a-f]{8}",worker="0"\} '
    assert re.search(sent, metrics.stdout, re.M), metrics.stdout
    head = box.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "http://127.0.0.1:8080/metrics"]).stdout
    assert "Content-Type: text/plain; version=0.0.4; charset=utf-8" in head.splitlines(), head
    body = box.run(["curl", "-s", "http://127.0.0.1:8080/metrics"]).stdout
    assert re.search(r"^process_start_time_seconds \S+$", body, re.M)

    # reload: a new rate, in place (same main process), the live rate follows
    box.write_file("/etc/loggen.yaml", FASTER)
    assert sh(box, COMMANDS["reload"]).returncode == 0
    wait(lambda: "reload: 2 workers -> 127.0.0.1:5514-5515, 4,000 ev/s" in sh(box, COMMANDS["reloaded"]).stdout,
         10, "the reload line")
    wait(lambda: abs(live_rate(box.show("loggen", "StatusText")["StatusText"]) - 4000) < 400, 15,
         "the live rate at 4,000 ev/s")
    assert box.show("loggen", "MainPID")["MainPID"] == str(first_pid)
    # a broken file is refused: an error the journal's priority filter finds; the run goes on
    box.write_file("/etc/loggen.yaml", BROKEN)
    assert sh(box, COMMANDS["reload"]).returncode == 0
    wait(lambda: "reload: /etc/loggen.yaml: rate: 'lots' is not allowed" in sh(box, COMMANDS["errors"]).stdout,
         10, "the refused reload in journalctl -p err")
    box.write_file("/etc/loggen.yaml", FASTER)
    assert box.show("loggen", "ActiveState")["ActiveState"] == "active"
    # live control as root: the socket is in the unit's RuntimeDirectory, the unit's user owns it
    changed = sh(box, COMMANDS["ctl-rate"])
    assert changed.returncode == 0 and changed.stdout == "rate: 3,000 ev/s (was 4,000 ev/s)\n", changed
    ctl_status = sh(box, COMMANDS["ctl-status"])
    assert ctl_status.returncode == 0 and f"state     running (pid {first_pid}, 2 workers" in ctl_status.stdout
    assert "following 3,000 ev/s" in ctl_status.stdout, ctl_status.stdout
    wait(lambda: abs(live_rate(box.show("loggen", "StatusText")["StatusText"]) - 3000) < 300, 15,
         "the live rate at 3,000 ev/s")
    assert "rate: 3,000 ev/s (was 4,000 ev/s) (ctl, pid " in box.journal("loggen")
    socket_dir = box.run(["ls", "-l", "/run/loggen/loggen"], check=True).stdout
    assert re.search(rf"^srw------- .* loggend-{first_pid}\.sock$", socket_dir, re.M), socket_dir

    # the watchdog is fed: more than WatchdogSec has passed, no timeout, no restart, pings keep coming
    time.sleep(max(0.0, started + 2 * WATCHDOG_SECONDS - time.monotonic()))
    ping = int(box.show("loggen", "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
    time.sleep(WATCHDOG_SECONDS / 2 + 0.5)
    later = box.show("loggen", "WatchdogTimestampMonotonic", "NRestarts")
    assert int(later["WatchdogTimestampMonotonic"]) > ping and later["NRestarts"] == "0"
    assert "Watchdog timeout" not in box.journal("loggen")

    # SIGKILL of the main process: systemd restarts the unit, and no child of the old one is left
    old = {pid for pid, _, _ in processes(box)}
    assert len(old) == 1 + 2 + 1 + 1                               # supervisor, 2 workers, a sink, the web
    box.run(["kill", "-KILL", str(first_pid)], check=True)
    restarted = box.wait_for("loggen", timeout=30, NRestarts="1", ActiveState="active", SubState="running")
    new_pid = int(box.show("loggen", "MainPID")["MainPID"])
    assert new_pid != first_pid, restarted
    wait(lambda: len(processes(box)) == 5, 15, "the new supervisor's children")
    now = processes(box)
    assert not old & {pid for pid, _, _ in now}, (old, now)        # every old process is gone
    assert all(ppid == new_pid for pid, ppid, _ in now if pid != new_pid), now
    assert {name for _, _, name in now} == {"loggend-run", "loggend-w0", "loggend-w1", "loggend-sink0",
                                            "loggend-web"}, now

    # stop: inactive, Result=success; the journal holds the start lines and the summaries
    assert sh(box, COMMANDS["stop"], timeout=60).returncode == 0
    stopped = box.show("loggen", "ActiveState", "Result")
    assert stopped == {"ActiveState": "inactive", "Result": "success"}, stopped
    journal = sh(box, COMMANDS["journal"]).stdout
    assert journal.count("config /etc/loggen.yaml: 2 workers -> 127.0.0.1:5514-5515") == 2, journal
    assert "summary:" in journal and "local sink:" in journal and "lost " in journal, journal
    assert time.monotonic() - t0 < 120

    # one more instance from its own config (loggen@.service)
    box.run(["mkdir", "-p", "/etc/loggen"], check=True)
    box.write_file("/etc/loggen/second.yaml", SECOND)
    assert sh(box, COMMANDS["instance"], timeout=90).returncode == 0
    assert box.show("loggen@second", "ActiveState")["ActiveState"] == "active"
    assert "config /etc/loggen/second.yaml: 2 workers -> 127.0.0.1:5516-5517" in box.journal("loggen@second")
    # optimize: true cannot tune the kernel from the unit: a warning says so and how, and it sends on
    # (unless the host's own root, the box's lower layer, has a tuning saved by `loggend tune apply`)
    warnings = sh(box, COMMANDS["instance-warnings"]).stdout
    assert ("loggend: optimize: not applied: " in warnings and "run `sudo loggend tune apply` once" in warnings) \
        or "optimize: tuning already applied by `loggend tune apply`" in box.journal("loggen@second"), warnings
    assert sh(box, COMMANDS["instance-stop"], timeout=60).returncode == 0
    assert box.show("loggen@second", "ActiveState", "Result") == {"ActiveState": "inactive", "Result": "success"}

    # uninstall: the units and /opt/loggen go, the edited config stays
    removed = sh(box, COMMANDS["uninstall"], timeout=120, cwd="/src")
    assert removed.returncode == 0 and "kept /etc/loggen.yaml (edited)" in removed.stdout, removed.stderr
    assert box.run(["test", "-e", "/opt/loggen"]).returncode == 1
    assert box.run(["test", "-e", "/etc/systemd/system/loggen.service"]).returncode == 1
