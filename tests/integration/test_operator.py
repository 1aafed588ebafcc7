"""What operators expect of the real program: journal priorities, the live line's pace and --quiet,
LOGGEN_* variables, and a loud word about an unlimited run."""

import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from tests.support.console import live_lines
from tests.support.processes import ROOT, assert_sent_as_due, child_environ, run_loggend

UNREACHABLE = ("run", "--config", "/dev/null", "--target", "255.255.255.255:9", "--workers", "1",
               "--dashboard", "off", "--pool-size", "1000")


def run_into_one_pipe(*args: str, journal: str | None, timeout: float = 30.0) -> list[str]:
    """Run loggend with stdout and stderr on one pipe, as systemd connects a service to the journal;
    ``journal`` is what JOURNAL_STREAM says: "pipe" (this pipe's DEVICE:INODE), another value, or None."""
    r, w = os.pipe()
    st = os.fstat(w)
    env: dict[str, str | None] = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}" if journal == "pipe" else journal}
    proc = subprocess.Popen([sys.executable, "-m", "loggend", *args], stdout=w, stderr=w, env=child_environ(env),
                            cwd=ROOT, start_new_session=True)
    os.close(w)
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(r, 65536), b"")), daemon=True)
    reader.start()
    try:
        proc.wait(timeout)
        reader.join(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(r)
    return b"".join(chunks).decode().splitlines()


def test_log_lines_carry_journal_priorities_when_the_output_is_the_journal():
    lines = run_into_one_pipe(*UNREACHABLE, journal="pipe")
    logged = [line for line in lines if "loggend: " in line]
    assert any(line.startswith("<6>loggend: config /dev/null") for line in logged), lines
    assert any(line.startswith("<4>loggend: rate 0 and duration 0: sending as fast as it can, until stopped")
               for line in logged), lines
    assert any(re.match(r"<3>loggend: worker 0: cannot start sending to 255\.255\.255\.255:9: ", line)
               for line in logged), lines
    assert "<3>loggend: worker 0 could not start sending to 255.255.255.255:9; stopping" in logged
    assert all(re.match(r"<[0-7]>loggend: ", line) for line in logged), logged      # none falls back to info
    assert "summary:" in lines                    # the summary keeps the unit's default priority, info


@pytest.mark.slow
@pytest.mark.parametrize("journal", [None, "1:2"])
def test_no_prefixes_when_the_output_is_not_the_journal(journal):
    """Not set, or set for another stream (a child whose output was redirected inherits the variable)."""
    lines = run_into_one_pipe(*UNREACHABLE, journal=journal)
    assert "loggend: worker 0 could not start sending to 255.255.255.255:9; stopping" in lines
    assert not any(line.startswith("<") for line in lines), lines


@pytest.mark.slow
def test_the_live_line_comes_every_10_s_into_a_pipe_and_not_at_all_with_quiet(receiver):
    args = ("run", "--config", "/dev/null", "--target", f"127.0.0.1:{receiver.port}", "--workers", "1",
            "--rate", "500", "--duration", "3.5s", "--dashboard", "off", "--pool-size", "1000")
    default = run_loggend(*args, env={"LOGGEN_LIVE_INTERVAL": None})
    assert default.returncode == 0, default.stderr
    assert len(live_lines(default.stdout)) == 1, default.stdout           # the first one, then every 10 s
    assert "summary:" in default.stdout
    quiet = run_loggend(*args, "--quiet", env={"LOGGEN_LIVE_INTERVAL": None})
    assert quiet.returncode == 0 and live_lines(quiet.stdout) == [] and "summary:" in quiet.stdout
    every_second = run_loggend(*args)                                      # LOGGEN_LIVE_INTERVAL=1s
    assert len(live_lines(every_second.stdout)) >= 3, every_second.stdout


def test_loggen_variables_override_the_file_and_flags_override_them(tmp_path):
    path = tmp_path / "loggen.yaml"
    path.write_text("workers: 2\nrate: 1000\n")
    checked = run_loggend("check-config", str(path), env={"LOGGEN_RATE": "2k", "LOGGEN_MESSAGES_SEED": "9",
                                                          "LOGGEN_MESSAGES_POOL_SIZE": None})
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{path} + LOGGEN_LIVE_INTERVAL, LOGGEN_MESSAGES_SEED, LOGGEN_RATE: ok: "
                                     "2 workers -> 127.0.0.1:514-553, 2,000 ev/s"), checked.stdout
    flagged = run_loggend("run", "--config", str(path), "--rate", "3k", "--target", "255.255.255.255:9",
                          "--dashboard", "off", "--pool-size", "1000", env={"LOGGEN_RATE": "2k"})
    assert "2 workers -> 255.255.255.255:9, 3,000 ev/s" in flagged.stderr, flagged.stderr


@pytest.mark.parametrize("env,message", [
    ({"LOGGEN_RATE": "fast"}, "loggend: error: LOGGEN_RATE: 'fast' is not allowed; expected events per second"),
    ({"LOGGEN_TARGET": "127.1"}, "loggend: error: LOGGEN_TARGET: '127.1' is not allowed"),
    ({"LOGGEN_WROKERS": "2"}, "loggend: error: LOGGEN_WROKERS: no such setting"),
])
def test_a_bad_variable_is_one_line_naming_it_and_exit_2(env, message):
    result = run_loggend("run", "--config", "/dev/null", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


@pytest.mark.slow
def test_a_reader_that_goes_away_does_not_cut_the_run_short(receiver, tmp_path):
    """`loggend run ... 2>&1 | head -1` ended a 5 s run after 2.3 s with exit 0 and no summary file."""
    import json
    import time
    summary = tmp_path / "summary.json"
    read, write = os.pipe()
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "loggend", "run", "--config", "/dev/null", "--target",
                             f"127.0.0.1:{receiver.port}", "--workers", "1", "--rate", "1000", "--duration", "3s",
                             "--dashboard", "off", "--pool-size", "1000", "--summary-json", str(summary)],
                            stdout=write, stderr=write, cwd=ROOT, env=child_environ())
    os.close(write)
    with os.fdopen(read, "rb") as head:
        assert head.readline()                    # `head -1`: one line, then the reader is gone
    assert proc.wait(30) == 0
    assert time.monotonic() - start >= 3.0
    doc = json.loads(summary.read_text())
    assert_sent_as_due(doc, 3000)
