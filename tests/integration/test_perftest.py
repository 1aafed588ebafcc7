"""scripts/test.sh in a short mode: live lines, a well-formed report, PASS / FAIL and the exit status."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from tests.support.processes import ROOT, alive, child_environ, wait_until

SCRIPT = ROOT / "scripts" / "test.sh"


def free_port_pair() -> str:
    """Two consecutive free UDP ports on loopback, as "P-P+1"."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return f"{port}-{port + 1}"
    raise RuntimeError("no two consecutive free ports")


def run_script(tmp_path, duration: str, target_eps: str, *extra: str, timeout: float = 120):
    env = child_environ({"DURATION": duration, "RATE": "20k", "WORKERS": "2", "TARGET_EPS": target_eps,
                         "REPORT_DIR": str(tmp_path / "report")})
    return subprocess.run([str(SCRIPT), "--no-optimize", "--ports", free_port_pair(), "--sink-processes", "1", *extra],
                          capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.alone
def test_short_run_passes_and_writes_the_report(tmp_path):
    result = run_script(tmp_path, "8s", "15k", "--target-cpu", "100")   # system-wide CPU: other jobs share the box
    assert result.returncode == 0, result.stdout + result.stderr
    live = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(live) >= 5 and all("received" in line and "in flight" in line and "CPU" in line for line in live)
    # a lossless run never shows a loss: what is on its way is in flight (it once said "loss 0.839 %")
    assert all(" lost 0 (0.000 %) " in line for line in live), live
    for name in ("events per second", "CPU", "memory", "loss"):
        assert any(line.startswith("PASS") and name in line for line in result.stdout.splitlines()), name
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["pass"] is True and report["interrupted"] is False
    assert report["final"] == {"sent": 160_000, "received": 160_000}
    assert {v["target"].split(" (")[0] for v in report["verdicts"]} == {"events per second", "CPU", "memory", "loss"}
    assert len(report["samples"]) >= 5 and {"sent_eps", "received_eps", "cpu_percent"} <= set(report["samples"][0])
    assert {"version", "kernel", "cpu_model", "cpus", "sysctls", "transport"} <= set(report["manifest"])
    assert report["manifest"]["transport"] == "gso" and "net.core.rmem_max" in report["manifest"]["sysctls"]
    assert [w["received"] for w in report["workers"]] == [80_000, 80_000]
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count("<svg") == 4 and "PASS" in page and "<polyline" in page


@pytest.mark.slow
def test_a_missed_target_fails_with_a_nonzero_status(tmp_path):
    result = run_script(tmp_path, "5s", "500M")
    assert result.returncode == 1
    assert "FAIL  events per second (received, sustained)" in result.stdout
    assert "PASS  loss" in result.stdout
    assert json.loads((tmp_path / "report" / "report.json").read_text())["pass"] is False


@pytest.mark.slow
def test_ctrl_c_stops_both_cleanly_and_still_reports(tmp_path):
    env = child_environ({"DURATION": "60s", "RATE": "20k", "WORKERS": "2", "REPORT_DIR": str(tmp_path / "report")})
    proc = subprocess.Popen([str(SCRIPT), "--no-optimize", "--ports", free_port_pair(), "--sink-processes", "1"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT, start_new_session=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("[") and "received" in line:
                break
        children = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "report in" in rest
    wait_until(lambda: not [p for p in children if alive(int(p))], timeout=5, what="every child of the run to end")
    assert json.loads((tmp_path / "report" / "report.json").read_text())["interrupted"] is True


def test_a_report_dir_it_cannot_write_is_refused_before_the_run(tmp_path):
    """An unwritable --report-dir was only found at the end of a 30-minute run."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for where, why in ((blocker / "reports", "cannot create it: Not a directory"),
                       (blocker, "cannot create it: File exists")):
        result = subprocess.run([str(ROOT / ".venv" / "bin" / "loggend"), "perftest", "--duration", "1s",
                                 "--no-optimize", "--report-dir", str(where)],
                                capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines == [f"loggend: error: --report-dir: {str(where)!r} is not allowed; {why}"], lines
        assert "received" not in result.stdout                       # nothing ran


@pytest.mark.slow
def test_a_sigkilled_perftest_takes_its_run_with_it(tmp_path):
    """perftest starts its run in a session of its own: SIGKILLed, it left the run sending to the end of --duration."""
    report = tmp_path / "report"
    proc = subprocess.Popen([sys.executable, "-m", "loggend", "perftest", "--no-optimize", "--duration", "120s",
                             "--rate", "5k", "--workers", "1", "--ports", free_port_pair(), "--sink-processes", "1",
                             "--report-dir", str(report)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, start_new_session=True,
                            env=child_environ())
    run = 0
    try:
        run = int(wait_until(lambda: (report / "ready.json").exists() and json.loads((report / "ready.json")
                                                                                     .read_text())["pid"],
                             timeout=60, what="the run perftest starts"))
        os.kill(proc.pid, signal.SIGKILL)                     # perftest alone, not its process group
        proc.wait(10)
        wait_until(lambda: not alive(run), timeout=30, what="the run to end with perftest")
    finally:
        for pid in (proc.pid, run):
            if pid and alive(pid):
                os.killpg(pid, signal.SIGKILL)


@pytest.mark.slow
def test_a_scenario_in_a_perftest_is_reported_with_its_detection(tmp_path):
    detector = tmp_path / "detector.py"          # detects every instance 1 s after its first message
    detector.write_text("import os\nprint(float(os.environ['LOGGEN_SCENARIO_FIRST_SENT']) + 1.0)\n")
    result = subprocess.run(
        [sys.executable, "-m", "loggend", "perftest", "--no-optimize", "--duration", "8s", "--rate", "2k",
         "--workers", "1", "--ports", free_port_pair(), "--sink-processes", "1", "--target-eps", "1k",
         "--target-cpu", "100", "--report-dir", str(tmp_path / "report"),
         "--scenario", "port-scan:ports=5,within=1,at=1", "--detect", f"command:{sys.executable} {detector}",
         "--detect-timeout", "5s"], capture_output=True, text=True, timeout=240, cwd=ROOT, env=child_environ())
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    (level,) = report["detection"]["levels"]
    assert level["rate"] == 2000 and level["instances"] == [
        {"id": "port-scan-1", "scenario": "port-scan", "messages": 5, "state": "detected", "latency_seconds": 1.0}]
    assert report["final"]["sent"] == 16_000
    assert any(line.startswith("detection at 2,000 ev/s (the run): ") for line in result.stdout.splitlines())
    page = (tmp_path / "report" / "report.html").read_text()
    assert "detection by load" in page and page.count("<svg") == 5
    bad = subprocess.run([sys.executable, "-m", "loggend", "perftest", "--scenario", "port-scan:ports=0"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT, env=child_environ())
    assert bad.returncode == 2 and "ports: '0' is not allowed" in bad.stderr
