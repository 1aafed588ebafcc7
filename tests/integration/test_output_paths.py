"""Paths loggen creates (control socket, pidfile, ready file, summary) never replace or delete
what is already there, never follow links, and a file system that cannot take them is found at
the start (exit 2) or makes the exit status non-zero at the end."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from tests.support.processes import RUN, child_environ, run_loggend, wait_until

SHORT = ("--rate", "20", "--duration", "1s", "--quiet")


def run_to(receiver, *args: str) -> subprocess.CompletedProcess[str]:
    return run_loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", *SHORT, *args, timeout=60)


def assert_refused(result: subprocess.CompletedProcess[str], flag: str, path) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and flag in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def data_and_link(tmp_path):
    data = tmp_path / "data"
    data.write_text("someone's data\n")
    link = tmp_path / "link"
    link.symlink_to(data)
    return data, link


@pytest.mark.parametrize("flag", ["--control-socket", "--pidfile", "--ready-file", "--summary-json"])
def test_an_existing_file_or_link_is_refused_and_left_as_it_was(receiver, tmp_path, flag):
    data, link = data_and_link(tmp_path)
    for path in (data, link):
        result = run_to(receiver, flag, str(path))
        assert_refused(result, flag.lstrip("-").replace("-", "_") if flag == "--control-socket" else flag, path)
        assert data.read_text() == "someone's data\n" and link.is_symlink() and os.readlink(link) == str(data)
    assert receiver.datagrams == []


def test_a_daemon_log_file_is_appended_to_but_never_through_a_link(receiver, tmp_path):
    data, link = data_and_link(tmp_path)
    pidfile = tmp_path / "run.pid"
    result = run_to(receiver, "--daemon", "--pidfile", str(pidfile), "--log-file", str(link))
    assert_refused(result, "--log-file", link)
    assert data.read_text() == "someone's data\n" and not pidfile.exists()


def test_a_directory_is_refused(receiver, tmp_path):
    for flag in ("--control-socket", "--ready-file", "--summary-json"):
        result = run_to(receiver, flag, str(tmp_path))
        assert result.returncode == 2 and "a directory" in result.stderr, result.stderr
    assert tmp_path.is_dir()


def test_the_socket_of_a_run_that_ended_is_taken_over_and_removed(receiver, tmp_path):
    path = tmp_path / "ctl.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))                 # bound, never listening: a connect is refused, as after a kill
    dead.close()
    result = run_to(receiver, "--control-socket", str(path))
    assert result.returncode == 0, result.stderr
    assert f"control socket: {path}" in result.stderr
    assert not path.exists()


def test_the_socket_of_a_live_run_is_refused_and_stays(receiver, loggend, tmp_path):
    path, ready = tmp_path / "ctl.sock", tmp_path / "ready.json"
    first = loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--rate", "20", "--duration", "30s",
                    "--control-socket", str(path), "--ready-file", str(ready))
    wait_until(ready.exists, 30, what="the first run's ready file")
    second = run_to(receiver, "--control-socket", str(path))
    assert second.returncode == 2 and "another run is listening there" in second.stderr, second.stderr
    assert path.is_socket() and first.proc.poll() is None
    os.kill(first.pid, 15)
    assert first.wait(30) == 0
    assert not path.exists()


def test_a_file_put_where_the_socket_or_ready_file_was_is_not_deleted_at_exit(receiver, loggend, tmp_path):
    path, ready = tmp_path / "ctl.sock", tmp_path / "ready.json"
    run = loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--rate", "20", "--duration", "30s",
                  "--control-socket", str(path), "--ready-file", str(ready))
    wait_until(ready.exists, 30, what="the ready file")
    for put in (path, ready):
        put.unlink()
        put.write_text("put here since\n")
    os.kill(run.pid, 15)
    assert run.wait(30) == 0
    assert path.read_text() == ready.read_text() == "put here since\n"


def test_outputs_of_an_earlier_run_are_replaced(receiver, tmp_path):
    summary, ready, pidfile = tmp_path / "summary.json", tmp_path / "ready.json", tmp_path / "run.pid"
    summary.write_text(json.dumps({"target": "x", "sent": 1}))
    ready.write_text(json.dumps({"pid": 2 ** 22 + 1, "target": "x", "started_unix": 1}))   # above pid_max
    pidfile.write_text("12345\n")
    empty = tmp_path / "mktemp"
    empty.touch()
    result = run_to(receiver, "--summary-json", str(summary), "--ready-file", str(ready), "--pidfile", str(pidfile))
    assert result.returncode == 0, result.stderr
    assert json.loads(summary.read_text())["sent"] == 20
    assert not ready.exists() and not pidfile.exists()
    result = run_to(receiver, "--summary-json", str(empty))
    assert result.returncode == 0, result.stderr
    assert json.loads(empty.read_text())["sent"] == 20


def test_the_ready_file_of_a_live_run_is_refused(receiver, tmp_path):
    ready = tmp_path / "ready.json"
    ready.write_text(json.dumps({"pid": os.getpid(), "target": "x", "started_unix": 1}))
    result = run_to(receiver, "--ready-file", str(ready))
    assert_refused(result, "--ready-file", ready)
    assert json.loads(ready.read_text())["pid"] == os.getpid()


# --- file systems that cannot take the files (item 19): a private mount namespace, as root ----------

def in_private_mount(tmp_path, setup: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``loggend ARGS`` in a mount namespace of its own, where ``setup`` (sh) mounted ``tmp_path/m``."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) to mount a read-only or full tmpfs in a private namespace")
    mnt = tmp_path / "m"
    mnt.mkdir()
    script = f"set -e; {setup.format(m=mnt)}; exec {sys.executable} -m loggend \"$@\""
    result = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", *args],
                            capture_output=True, text=True, timeout=60, env=child_environ(), cwd=tmp_path)
    if "unshare failed" in result.stderr or "mount:" in result.stderr:
        pytest.skip(f"cannot mount in a private namespace here: {result.stderr.strip()}")
    return result


READ_ONLY = "mount -t tmpfs -o size=64k,ro tmpfs {m}"
FULL = "mount -t tmpfs -o size=64k tmpfs {m}; cat /dev/zero > {m}/fill 2>/dev/null || true"


@pytest.mark.parametrize("flag", ["--summary-json", "--ready-file"])
def test_a_read_only_file_system_is_refused_at_the_start(receiver, tmp_path, flag):
    target = tmp_path / "m" / "out.json"
    result = in_private_mount(tmp_path, READ_ONLY, *RUN, "--target", f"127.0.0.1:{receiver.port}", *SHORT,
                              flag, str(target))
    assert_refused(result, flag, target)
    assert "Read-only file system" in result.stderr
    assert receiver.datagrams == []


def test_a_summary_that_cannot_be_written_at_the_end_is_a_failed_exit(receiver, tmp_path):
    target = tmp_path / "m" / "summary.json"
    result = in_private_mount(tmp_path, FULL, *RUN, "--target", f"127.0.0.1:{receiver.port}", *SHORT,
                              "--summary-json", str(target))
    assert result.returncode == 4, result.stderr
    assert f"cannot write the summary {target}: No space left on device" in result.stderr
    assert "sent" in result.stdout                       # the summary is printed all the same


def test_a_ready_file_that_cannot_be_written_stops_the_run(receiver, tmp_path):
    target = tmp_path / "m" / "ready.json"
    result = in_private_mount(tmp_path, FULL, *RUN, "--target", f"127.0.0.1:{receiver.port}", "--rate", "20",
                              "--duration", "30s", "--quiet", "--ready-file", str(target))
    assert result.returncode == 1, result.stderr
    assert f"cannot write the ready file {target}: No space left on device" in result.stderr
    assert "ready file cannot say the run is up; stopping" in result.stderr


@pytest.mark.parametrize("daemon", [False, True], ids=["foreground", "daemon"])
def test_a_pidfile_that_cannot_be_written_is_one_line_and_left_nowhere(receiver, tmp_path, daemon):
    """A full file system: the pid cannot be written (it was a traceback and a 0-byte pidfile)."""
    pidfile = tmp_path / "m" / "loggen.pid"
    extra = ["--daemon", "--log-file", str(tmp_path / "daemon.log")] if daemon else []
    setup = FULL + "; trap 'ls -A {m} > {m}.left' EXIT; " + f"{sys.executable} -m loggend \"$@\"; rc=$?; exit $rc #"
    result = in_private_mount(tmp_path, setup, *RUN, "--target", f"127.0.0.1:{receiver.port}", *SHORT,
                              "--pidfile", str(pidfile), *extra)
    assert "Traceback" not in result.stderr, result.stderr
    assert f"--pidfile: cannot write {pidfile}: No space left on device" in result.stderr, result.stderr
    assert result.returncode == (1 if daemon else 2), result.stderr
    assert (tmp_path / "m.left").read_text().split() == ["fill"]        # no pidfile left behind
    assert receiver.datagrams == []
