"""Replay and user templates through the real program on loopback: exact counts across passes of
a file larger than the pool, the file's own timing at 10x, and timestamps current at sending."""

import calendar
import gzip
import json
import re
import time

import pytest

from tests.support.processes import RUN, run_loggend
from tests.support.receivers import free_port

pytestmark = pytest.mark.slow


@pytest.mark.serial          # 20,000 in 1 s: on a starved CPU the workers fall behind and the run ends short
def test_a_file_larger_than_the_pool_is_replayed_exactly_by_two_workers(tmp_path):
    lines = [f'10.0.{i // 256 % 256}.{i % 256} - - [29/Nov/2026:06:{i // 600 % 60:02d}:{i // 10 % 60:02d} +0000] '
             f'"GET /item/{i} HTTP/1.1" 200 {i % 9000} "-" "curl/8.5.0"' for i in range(5000)]
    path = tmp_path / "access.log.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    out = tmp_path / "summary.json"
    r = run_loggend(*RUN, "--workers", "2", "--replay", str(path), "--rate", "20000", "--duration", "1s",
                    "--pool-size", "1000", "--local-sink", "--sink-processes", "1", "--target", "127.0.0.1",
                    "--ports", str(free_port(udp=True, tcp=False)), "--summary-json", str(out))
    assert r.returncode == 0, r.stderr
    s = json.loads(out.read_text())
    # every message sent arrived, over several passes of each worker's 1,000 lines (a starved box gives up
    # what is over a second behind, and the summary says so: the sent count, not the plan)
    assert s["planned"] == 20000 and s["sent"] == s["planned"] - s["shortfall"] and s["sent"] > 4000, s
    assert s["sink"]["received"] == s["sent"] and s["sink"]["lost"] == 0
    assert "replay: 1,000 lines in its first pass, 0 without a valid timestamp of their own" in r.stderr


@pytest.mark.serial
def test_the_files_own_timing_at_10x_and_timestamps_rewritten_to_now(tmp_path, receiver):
    # 20 s of file time: 100 lines in the first 10 s, 1,900 in the last 10; at 10x a 2 s run
    lines = [f"<13>Nov 29 06:00:{i // 10:02d} app-1 shop[7]: quiet {i}" for i in range(100)]
    lines += [f"<13>Nov 29 06:00:{10 + i * 10 // 1900:02d} app-1 shop[7]: busy {i}" for i in range(1900)]
    path = tmp_path / "capture.log"
    path.write_text("\n".join(lines) + "\n")
    r = run_loggend(*RUN, "--replay", str(path), "--speed", "10", "--target", f"127.0.0.1:{receiver.port}",
                    "--pool-size", "1000", "--utc")
    assert r.returncode == 0, r.stderr
    assert "the file's own timing x10" in r.stderr
    got = receiver.wait_for(2000)
    assert len(got) == 2000
    first = receiver.arrivals[0]
    early = sum(1 for t in receiver.arrivals if t < first + 0.8)
    assert early < 400, early                        # about 100 in the first second, not all at once
    assert {m.split(b": ", 1)[1].split()[0] for m in got} == {b"quiet", b"busy"}
    now = time.time()
    for m in got[::97]:
        stamp = re.match(rb"<13>(\w{3} [ \d]\d \d\d:\d\d:\d\d) ", m)[1].decode()
        t = calendar.timegm(time.strptime(f"{time.gmtime(now).tm_year} {stamp}", "%Y %b %d %H:%M:%S"))
        assert abs(t - now) < 10, m                   # rewritten to the sending time


def test_every_pass_of_a_file_larger_than_the_pool_carries_the_second_it_is_sent_in(tmp_path, receiver):
    """Passes of 2 s: each new pass is a new pool, and the second-by-second patch has to follow it
    (it used to patch the first pass's pool, so later passes carried the second they were read in)."""
    lines = [f"<13>Nov 29 06:{i // 60 % 60:02d}:{i % 60:02d} app-1 shop[7]: line {i}" for i in range(3000)]
    path = tmp_path / "capture.log"
    path.write_text("\n".join(lines) + "\n")
    r = run_loggend(*RUN, "--replay", str(path), "--rate", "500", "--duration", "5s", "--target",
                    f"127.0.0.1:{receiver.port}", "--pool-size", "1000", "--utc")
    assert r.returncode == 0, r.stderr
    got = receiver.wait_for(2500)
    assert len(got) == 2500
    year, wall = time.gmtime().tm_year, time.time() - time.monotonic()       # arrivals are monotonic times
    lags = []
    for m, arrived in zip(got, (wall + t for t in receiver.arrivals)):
        stamp = re.match(rb"<13>(\w{3} [ \d]\d \d\d:\d\d:\d\d) ", m)[1].decode()
        lags.append(arrived - calendar.timegm(time.strptime(f"{year} {stamp}", "%Y %b %d %H:%M:%S")))
    assert max(lags) < 1.5 and min(lags) > -0.5, (min(lags), max(lags))      # its own second, not an old one
