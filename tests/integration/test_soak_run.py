"""`loggend soak` for a few seconds: it samples the run's process tree and writes its verdicts."""

import json
import socket

import pytest

from tests.support.processes import assert_sent_as_due, run_loggend


@pytest.mark.slow
def test_a_short_soak_samples_the_whole_run_and_counts_exactly(tmp_path) -> None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    result = run_loggend("soak", "--duration", "8s", "--interval", "1s", "--warmup", "2s", "--workers", "2",
                         "--rate", "5k", "--ports", f"{port}-{port + 1}", "--report-dir", str(tmp_path), timeout=90)
    assert result.returncode in (0, 1), result.stdout + result.stderr     # 8 s of memory is noise: either verdict
    report = json.loads((tmp_path / "soak.json").read_text())
    checks = {c["check"]: c for c in report["checks"]}
    assert set(checks) == {"memory growth", "fds flat", "threads flat", "processes flat", "counts exact"}
    summary = json.loads((tmp_path / "run-summary.json").read_text())
    assert checks["counts exact"]["pass"] and checks["counts exact"]["sent"] == summary["sent"], checks["counts exact"]
    assert_sent_as_due(summary, 40_000)
    assert len(report["samples"]) >= 6
    first = report["samples"][0]
    assert first["processes"] >= 4 and first["fds"] > 10 and first["memory_bytes"] > 50 << 20   # the whole tree
    assert f"{'PASS' if report['pass'] else 'FAIL'}: report in" in result.stdout


def test_bad_soak_flags_are_one_line_and_exit_2(tmp_path) -> None:
    result = run_loggend("soak", "--duration", "5s", "--interval", "10s", "--report-dir", str(tmp_path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--interval" in result.stderr
