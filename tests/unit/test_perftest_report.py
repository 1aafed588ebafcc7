"""The perftest's end: the loss by sequence (or unknown), the sink named as the bottleneck, charts a
reader can read, and a report that is whole or absent, with an exit status that says which."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

from loggend.errors import EXIT_FAILURE, EXIT_REPORT_FAILED
from loggend.tools.perftest import PerfTest, Sample, Targets, split_cpus, verdicts
from tests.support.processes import ROOT, child_environ

SUMMARY = {"sent": 8000, "sent_minus_received": -3, "lost": 0, "loss_verdict": "counted", "loss_unknown_because": [],
           "workers": [], "errors": {}, "restarts": 0,
           "sink": {"received": 8003, "lost": 0, "kernel_drops": 0, "unknown_because": []}}


def samples() -> list[Sample]:
    # sent - received goes negative for an instant (the counters are read apart): the chart must not plot that
    return [Sample(t=i * 1.0, sent_eps=1000, received_eps=1000, sent=1000 * i, received=1000 * i + 3 * (i % 2),
                   lost=0, cpu_percent=10.0, memory_bytes=50 << 20, system_memory_bytes=1 << 30) for i in range(9)]


def perftest(tmp_path: Path, summary: dict | None, cpus: tuple[int, ...] = (0, 1), **kw) -> PerfTest:
    t = PerfTest(duration=8, rate="1000", workers=2, ports="9-10", report_dir=tmp_path, usable_cpus=list(cpus),
                 targets=Targets(events_per_second=900, cpu_percent=90, memory_bytes=1 << 30), **kw)
    if summary is not None:
        (tmp_path / "run-summary.json").write_text(json.dumps(summary))
    t.samples = samples()
    return t


def test_the_loss_is_by_sequence_and_the_chart_plots_it(tmp_path):
    """The 'lost (cumulative)' chart once plotted sent - received (in flight, going negative) while the
    verdict said 0 lost; its axes read 4.4e+06 and had no time ticks."""
    buf = io.StringIO()
    assert perftest(tmp_path, SUMMARY, out=buf)._report(0.0, 0, False) == 0
    out = buf.getvalue()
    assert "PASS  loss (by sequence, at the sink): 0.0000 % (0 of 8,000; sent - received = -3)" in out
    page = (tmp_path / "report.html").read_text()
    assert "lost by sequence (cumulative)" in page and "lost (cumulative)" not in page
    chart = page[page.index('aria-label="lost by sequence'):]
    chart = chart[:chart.index("</svg>")]
    points = re.search(r'points="([^"]+)"', chart).group(1).split()
    assert len({p.split(",")[1] for p in points}) == 1                # flat at 0: nothing was lost
    assert ">0:00<" in chart and ">0:08<" in chart and not re.search(r"\de[+-]\d", page)
    assert re.search(r'<svg [^>]*viewBox="0 0 860 260" width="100%"[^>]*aria-label="lost by seq', page)  # page width
    sink = page[page.index("<h2>sink</h2>"):page.index("<h2>manifest</h2>")]
    assert "<pre>" not in sink and "<td>received</td><td>8,003</td>" in sink       # a table in words, not JSON
    assert "<td>the loss count</td><td>counted exactly</td>" in sink


def test_a_loss_the_sink_could_not_count_is_unknown_and_fails(tmp_path):
    summary = dict(SUMMARY, lost=None, loss_verdict="unknown",
                   loss_unknown_because=["sink behind: 12,345 datagrams unread at stop"],
                   sink=dict(SUMMARY["sink"], kernel_drops=77, unknown_because=["sink behind: 12,345 datagrams "
                                                                                "unread at stop"]))
    buf = io.StringIO()
    assert perftest(tmp_path, summary, out=buf)._report(0.0, 0, False) == EXIT_FAILURE
    out = buf.getvalue()
    assert "FAIL  loss (by sequence, at the sink): unknown (sink behind: 12,345 datagrams unread at stop)" in out
    assert re.search(r"perftest: the local sink is the bottleneck: it could not keep up \(kernel drops 77: its receive "
                     r"queues were full; sink behind: 12,345 datagrams unread at stop\); it shares the 2 CPUs with the "
                     r"workers \(it gets its own from 4\)", out), out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["pass"] is False and report["notes"] and report["verdicts"][-1]["measured"] is None


def test_with_enough_cpus_the_sink_gets_its_own():
    assert split_cpus([0, 1]) is None and split_cpus([0, 1, 2]) is None
    assert split_cpus([0, 1, 2, 3]) == ([0, 1], [2, 3])
    assert split_cpus(list(range(8))) == ([0, 1, 2, 3], [4, 5, 6, 7])
    t = PerfTest(duration=8, rate="1000", workers=2, ports="9-10", report_dir=Path("/nonexistent"),
                 targets=Targets(), usable_cpus=list(range(6)))
    command = " ".join(t.command())
    assert "--cpus 0-2 --sink-cpus 3-5" in command and "--sink-processes 3" in command


def test_a_run_with_no_steady_second_passes_no_cpu_or_memory_target():
    """A run that ended before its steady seconds (every datagram refused, a crash) measured no CPU:
    0.0 % is no PASS."""
    by_target = {v["target"].split(" ")[0]: v for v in verdicts(samples()[:3], Targets(), SUMMARY, 8.0)}
    assert by_target["CPU"]["pass"] is False and by_target["CPU"]["measured"] is None
    assert "not measured" in by_target["CPU"]["shown"]
    none = {v["target"].split(" ")[0]: v for v in verdicts([], Targets(), SUMMARY, 8.0)}
    assert none["memory"]["pass"] is False and none["memory"]["shown"] == "not measured"
    assert {v["target"].split(" ")[0]: v["pass"] for v in verdicts(samples(), Targets(), SUMMARY, 8.0)}["CPU"]


def test_no_summary_means_an_unknown_loss():
    (loss,) = [v for v in verdicts(samples(), Targets(), None) if v["target"].startswith("loss")]
    assert loss["pass"] is False and loss["shown"].startswith("unknown (no summary from the run)")


WRITE_UNDER_A_FULL_DISK = """
import resource, sys
from tests.unit.test_perftest_report import SUMMARY, perftest
from pathlib import Path
t = perftest(Path(sys.argv[1]), SUMMARY)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))    # the disk is full: no file grows past 1,000 bytes
sys.exit(t._report(0.0, 0, False))
"""


def test_a_full_disk_at_the_end_keeps_the_verdict_and_the_old_report(tmp_path):
    """A full disk at the end once left a truncated report.json, with the exit status of a failed target."""
    (tmp_path / "report.json").write_text('{"old": true}')
    result = subprocess.run([sys.executable, "-c", WRITE_UNDER_A_FULL_DISK, str(tmp_path)], capture_output=True,
                            text=True, timeout=60, cwd=ROOT, env=child_environ())
    assert result.returncode == EXIT_REPORT_FAILED, result.stdout + result.stderr
    assert "PASS  loss (by sequence, at the sink)" in result.stdout and "PASS  events per second" in result.stdout
    assert f"PASS: but the report could not be written in {tmp_path}: File too large" in result.stdout
    assert (tmp_path / "report.json").read_text() == '{"old": true}'          # whole or not at all
    assert not list(tmp_path.glob("*.tmp"))
