"""Replay of files a capture can really produce: lines far longer than a datagram (a gzip of
hundreds of megabytes without a line end), and timestamps that are no time (``0000-00-00``,
month 13). Memory stays bounded, the worker starts, every sendable line goes out, and what was
skipped or left unstamped is counted."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from loggend.engine.replay import MAX_LINE
from tests.support.processes import ROOT, RUN, child_environ, run_loggend

pytestmark = pytest.mark.slow

HUGE_LINE = 400 << 20         # bytes of a gzip'd line without an end: the old reader held all of it
MEMORY_SLACK = 64 << 20       # what reading past it may add to the peak of a file of one short line
GOOD = "<13>Nov 29 06:00:0{i} app-1 shop[7]: line {i}"


def peak_rss_of_check(config: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """check-config of ``config`` in a child of a fresh interpreter: (its result, its peak RSS in bytes)."""
    probe = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); print(r.returncode); "
             "sys.stderr.write(r.stderr)")
    result = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "loggend", "check-config", config],
                            capture_output=True, text=True, timeout=120, env=child_environ(), cwd=ROOT)
    peak, code = result.stdout.split()
    return subprocess.CompletedProcess(result.args, int(code), "", result.stderr), int(peak) << 10


def test_a_gzip_without_a_line_end_is_refused_in_bounded_memory(tmp_path):
    small, huge = tmp_path / "small.log.gz", tmp_path / "huge.log.gz"
    small.write_bytes(gzip.compress(b"x" * (MAX_LINE + 1)))
    with gzip.open(huge, "wb", compresslevel=1) as f:
        block = b"x" * (1 << 20)
        for _ in range(HUGE_LINE // len(block)):
            f.write(block)
    peaks = {}
    for path in (small, huge):
        config = tmp_path / f"{path.stem}.yaml"
        config.write_text(f"replay: {path}\n")
        result, peaks[path] = peak_rss_of_check(str(config))
        assert result.returncode == 2 and "no line to replay" in result.stderr, result.stderr
    assert peaks[huge] < peaks[small] + MEMORY_SLACK, peaks


def test_one_huge_line_among_a_few_is_skipped_counted_and_the_worker_starts(tmp_path, receiver, loggend):
    """The pass of 10,000 is filled by repeating 3 lines: the 10 MB one was read again each time
    (30 GB for one pass: the worker was killed as hung after 30 s, and restarted, again and again)."""
    path = tmp_path / "capture.log"
    lines = [GOOD.format(i=i) for i in range(3)]
    path.write_text(lines[0] + "\n" + "y" * (10 << 20) + "\n" + "\n".join(lines[1:]) + "\n")
    out = tmp_path / "summary.json"
    run = loggend(*RUN, "--replay", str(path), "--target", f"127.0.0.1:{receiver.port}", "--rate", "300",
                  "--duration", "2s", "--pool-size", "10000", "--summary-json", str(out))
    assert run.wait(60) == 0, run.stderr[-3000:]
    assert "its 4 lines of the file, repeated to fill a pass of 10,000" in run.stderr
    assert "1 longer than a datagram skipped" in run.stderr and "hung" not in run.stderr
    assert json.loads(out.read_text())["sent"] == 600
    assert len(receiver.wait_for(600)) == 600


@pytest.mark.parametrize("at", [1, 2500], ids=["first pass", "later pass"])
def test_a_timestamp_that_is_no_time_is_sent_unchanged_and_counted(tmp_path, receiver, at):
    lines = [f"<13>Nov 29 06:00:0{i % 10} app-1 shop[7]: line {i}" for i in range(4000)]
    bad = ["0000-00-00 00:00:00 zeroed", "2026-13-01 10:00:00 month 13"]
    lines[at:at] = bad
    path = tmp_path / "capture.log"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "summary.json"
    rate = 5000                                     # a 1-s run: five passes of 1,000, the file and a bit again
    r = run_loggend(*RUN, "--replay", str(path), "--target", f"127.0.0.1:{receiver.port}", "--rate", str(rate),
                    "--duration", "1s", "--pool-size", "1000", "--summary-json", str(out))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "cannot" not in r.stderr
    got = receiver.wait_for(rate)
    assert len(got) == rate and json.loads(out.read_text())["sent"] == rate
    sent = [m.rsplit(b" stream=", 1)[0] for m in got]
    for text in bad:                                # every pass of the file, the later ones too; behind the
        wrapped = sum(m.endswith(b" " + text.encode()) for m in sent)     # header that wraps a non-syslog line
        assert wrapped == sum(lines[k % len(lines)] == text for k in range(rate)), text
    if at < 1000:
        assert "2 without a valid timestamp of their own (their text sent unchanged)" in r.stderr


def test_without_sequence_numbers_every_pass_of_the_file_is_sent(tmp_path, receiver):
    """The pass number used to stay 0 without sequence numbers: pass 1 was read again and again."""
    lines = [f"<13>Nov 29 06:00:0{i % 10} app-1 shop[7]: line {i}" for i in range(3000)]
    path = tmp_path / "capture.log"
    path.write_text("\n".join(lines) + "\n")
    r = run_loggend(*RUN, "--replay", str(path), "--target", f"127.0.0.1:{receiver.port}", "--rate", "1000",
                    "--duration", "3s", "--pool-size", "1000", "--no-sequence")
    assert r.returncode == 0, r.stderr[-3000:]
    got = receiver.wait_for(3000)
    assert sorted(m.split(b": ", 1)[1] for m in got) == sorted(f"line {i}".encode() for i in range(3000))
