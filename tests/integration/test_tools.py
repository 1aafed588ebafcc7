"""Developer tools: `loggend profile` on a live worker, and the wheel carrying the dashboard."""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.support.processes import ROOT, RUN

PYSPY = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.skipif(not os.access(PYSPY, os.X_OK), reason="py-spy is not installed (make test installs it)")
def test_profile_samples_a_live_worker_into_collapsed_stacks(loggend, receiver, tmp_path):
    run = loggend(*RUN, "--workers", "4", "--worker-processes", "2", "--target", f"127.0.0.1:{receiver.port}",
                  "--rate", "100000")
    run.wait_line("(4/4 running)")
    out = tmp_path / "w3.txt"
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATH=os.path.dirname(PYSPY) + ":" + os.environ["PATH"])
    result = subprocess.run([sys.executable, "-m", "loggend", "profile", "--worker", "3", "--pid", str(run.pid),
                             "--seconds", "1", "--format", "raw", "--output", str(out)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    stacks = out.read_text()
    assert "worker 3 is served by loggend-p1" in result.stderr        # process 1 of 2 serves workers 1 and 3
    assert "WorkerGroup.loop (loggend/engine/group.py" in stacks     # the hot loop (asleep or sending: --idle)
    assert "Loop.run (loggend/control/loop.py" in stacks             # forked from the supervisor's loop
    missing = subprocess.run([sys.executable, "-m", "loggend", "profile", "--name", "loggend-w7",
                              "--pid", str(run.pid)], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 1 and "no running process named 'loggend-w7'" in missing.stderr
    absent = subprocess.run([sys.executable, "-m", "loggend", "profile", "--worker", "9", "--pid", str(run.pid)],
                            capture_output=True, text=True, env=env, timeout=60)
    assert absent.returncode == 2 and "9 is not a worker of the run" in absent.stderr, absent.stderr


@pytest.mark.slow
def test_the_wheel_carries_the_dashboard_and_the_benchs_c_sender(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("loggend-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"loggend/web/dashboard/index.html", "loggend/web/dashboard/app.js",
            "loggend/web/dashboard/style.css", "loggend/tools/framesend.c"} <= names


def test_profile_finds_the_process_that_serves_a_worker(tmp_path):
    """Process p of P serving several workers is named loggend-p<p> and serves workers p, p+P...:
    worker 7 of a run in 3 processes is in loggend-p1; with a process per worker, its own."""
    from loggend.tools.profile import worker_process

    def fake_proc(names: dict[int, str]) -> None:
        for pid, name in names.items():
            (tmp_path / str(pid)).mkdir()
            (tmp_path / str(pid) / "comm").write_text(name + "\n")
            (tmp_path / str(pid) / "stat").write_text(f"{pid} ({name}) S 100 1 1")
    fake_proc({101: "loggend-p0", 102: "loggend-p1", 103: "loggend-p2", 104: "loggend-web", 201: "loggend-w2"})
    (tmp_path / "201" / "stat").write_text("201 (loggend-w2) S 200 1 1")     # another run, a process per worker
    assert worker_process(7, 100, tmp_path) == "loggend-p1"
    assert worker_process(2, 100, tmp_path) == "loggend-p2"
    assert worker_process(2, 200, tmp_path) == "loggend-w2"
    assert worker_process(7, 999, tmp_path) == "loggend-w7"         # no such run: the name, for the error
