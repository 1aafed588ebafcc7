"""Exact through restarts and reloads: current timestamps, exact counts, no silent moment, stream slots."""

import calendar
import json
import os
import re
import signal
import time

import pytest

from tests.support.console import largest_gap, live_lines
from tests.support.processes import run_config, seq_of, stream_of, summary_of, wait_until, worker_pids
from tests.unit.test_render import RFC3164

MONTHS = {m: i for i, m in enumerate(calendar.month_abbr) if m}


def stamp_of(datagram: bytes, year: int) -> float:
    """The RFC 3164 timestamp of a UTC message as a unix time."""
    m = RFC3164.match(datagram)
    return calendar.timegm((year, MONTHS[m["month"].decode()], int(m["day"]), int(m["h"]), int(m["m"]),
                            int(m["s"])))


@pytest.mark.slow
def test_a_replacement_worker_stamps_its_first_message_with_the_current_second(tmp_path, receivers, loggend):
    """The corpus is rendered at the start; a worker restarted 4 s later must not send its second."""
    (rx,) = receivers(1)
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=2, rate=2000), "--utc")
    proc.wait_line("(2/2 running)")
    time.sleep(4.0)                          # let the corpus's second go well out of date
    victim = sorted(worker_pids(proc.pid))[0]
    os.kill(victim, signal.SIGKILL)
    proc.wait_line("restarts 1 ", timeout=10)
    mark = len(rx.datagrams)
    wait_until(lambda: len(rx.datagrams) > mark + 2000, what="datagrams after the restart")
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    offset = time.time() - time.monotonic()
    year = time.gmtime().tm_year
    for datagram, arrived in zip(rx.datagrams[:], rx.arrivals[:]):
        # the stamp is the sending second: never more than a second before the arrival
        assert -1.0 <= offset + arrived - stamp_of(datagram, year) < 2.0, (datagram[:40], arrived)


@pytest.mark.slow
@pytest.mark.serial
def test_a_killed_worker_makes_up_what_it_missed_and_the_count_is_exact(tmp_path, receivers, loggend):
    """125,000 events from 2 workers with one SIGKILLed: the replacement catches up (it was down
    less than the catch-up bound), so exactly 125,000 are sent and received."""
    (rx,) = receivers(1)
    summary = tmp_path / "summary.json"
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=2, rate=25000, duration="5s"),
                   "--summary-json", str(summary))
    proc.wait_line("(2/2 running)")
    time.sleep(1.0)                          # a second into the 5 s run: the catch-up has time left
    os.kill(sorted(worker_pids(proc.pid))[1], signal.SIGKILL)
    assert proc.wait(30) == 0, proc.stderr
    doc = json.loads(summary.read_text())
    assert doc["planned"] == doc["sent"] == 125_000 and doc["shortfall"] == 0 and doc["restarts"] == 1
    down = [w["down_seconds"] for w in doc["workers"]]
    assert down[0] == 0 and 0.3 < down[1] < 1.0                   # the back-off and the new worker's set-up
    got = rx.wait_for(125_000)
    by_stream: dict[str, list[int]] = {}
    for d in got:
        by_stream.setdefault(stream_of(d), []).append(seq_of(d))
    assert once_but_the_kill({s: sorted(v) for s, v in by_stream.items()}, {"w1"}) == \
        {"w0": list(range(62_500)), "w1": list(range(62_500))}


@pytest.mark.slow
@pytest.mark.serial
def test_a_worker_the_box_did_not_run_across_the_end_sends_its_count_when_it_runs_again(tmp_path, receivers, loggend):
    """A timed run's worker not run from 0.8 s before the end until past the end's 1 s grace (SIGSTOP: a
    starved CI box did that to a soak's worker) sends what is due when it runs again: exactly rate x
    duration, as every timed run (it stopped 129 short, "still due when the run ended")."""
    (rx,) = receivers(1)
    summary = tmp_path / "summary.json"
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=1, rate=1000, duration="4s"),
                   "--summary-json", str(summary))
    proc.wait_line("(1/1 running)")
    (worker,) = worker_pids(proc.pid)
    wait_until(lambda: len(rx.arrivals) >= 3200, what="3.2 s of the 4 s run")
    os.kill(worker, signal.SIGSTOP)
    try:
        time.sleep(0.3)
        held = len(rx.arrivals)
        assert held < 4000, held                      # stopped before its count was out
        time.sleep(2.7)                               # until past the end (4 s) and its grace (1 s)
    finally:
        os.kill(worker, signal.SIGCONT)
    assert proc.wait(30) == 0, proc.stderr
    doc = json.loads(summary.read_text())
    assert doc["planned"] == doc["sent"] == 4000 and doc["forgiven"] == 0, doc
    assert len(rx.wait_for(4000)) == 4000 and "4,000 events: all sent" in proc.stdout


@pytest.mark.slow
def test_what_cannot_be_made_up_is_said_in_the_summary(tmp_path, receivers, loggend):
    """A worker kept down past the catch-up bound: the summary says what was planned and why it was not sent."""
    (rx,) = receivers(1)
    summary = tmp_path / "summary.json"
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=2, rate=4000, duration="6s",
                                             hung_timeout="1s"), "--summary-json", str(summary))
    proc.wait_line("(2/2 running)")
    victim = sorted(worker_pids(proc.pid))[1]
    os.kill(victim, signal.SIGSTOP)          # hung: SIGABRT cannot end a stopped process, SIGKILL does
    proc.wait_line(f"(pid {victim}) is hung", stream="err", timeout=10)
    assert proc.wait(40) == 0, proc.stderr
    doc = json.loads(summary.read_text())
    w1 = doc["workers"][1]
    # down for seconds: all but the last second is forgiven, and what the replacement could not catch
    # up before the end is still due; together they are exactly the shortfall
    assert doc["planned"] == 24_000 and doc["shortfall"] >= w1["forgiven"] > 0 and w1["down_seconds"] > 2.0
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("planned"))
    assert re.search(r"worker 1 was down \d+\.\d s \([\d,]+ not made up\)", line), line
    stalled = sum(w["forgiven"] for w in doc["workers"]) - w1["forgiven"]    # a loaded box stalls worker 0 too
    still_due = doc["shortfall"] - w1["forgiven"] - stalled
    assert (f"{still_due:,} still due when the run ended" in line) == (still_due > 0), line
    assert (f"{stalled:,} given up after stalls" in line) == (stalled > 0), line
    assert "SIGABRT" in proc.stderr and "SIGKILL" in proc.stderr


@pytest.mark.slow
@pytest.mark.serial
def test_a_rate_only_reload_changes_the_rate_in_place_without_a_gap(tmp_path, receivers, loggend):
    (rx,) = receivers(1)
    path = run_config(tmp_path, [rx], workers=2, rate=4000)
    proc = loggend("run", "--config", path, "--summary-json", str(tmp_path / "summary.json"))
    proc.wait_line("(2/2 running)")
    pids = worker_pids(proc.pid)
    run_config(tmp_path, [rx], workers=2, rate=8000)
    mark = len(rx.arrivals)
    wait_until(lambda: len(rx.arrivals) >= mark + 4000, what="a second's sending before the reload")
    t_reload = time.monotonic()
    proc.signal(signal.SIGHUP)
    proc.wait_line("reload: 2 workers", stream="err")
    mark = len(proc.out)
    wait_until(lambda: len(proc.out) >= mark + 3, what="three live lines after the reload")
    after = worker_pids(proc.pid)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert worker_pids(proc.pid) == [] and summary_of(tmp_path / "summary.json")["restarts"] == 0
    assert largest_gap(rx.arrivals, t_reload - 1.0, t_reload + 2.0) < 0.1       # never a silent 100 ms
    rates = [float(line.split("]")[1].split("ev/s")[0].replace(",", "")) for line in live_lines(proc.out)]
    assert 7000 < rates[-2] < 9000 and sorted(after) == sorted(pids)            # the new rate, the same workers


@pytest.mark.slow
@pytest.mark.serial
def test_any_other_reload_hands_the_streams_over_without_a_gap(tmp_path, receivers, loggend):
    """2 -> 3 workers: the new ones are set up before the old ones stop; every stream continues."""
    (rx,) = receivers(1)
    path = run_config(tmp_path, [rx], workers=2, rate=4000)
    proc = loggend("run", "--config", path)
    proc.wait_line("(2/2 running)")
    old = set(worker_pids(proc.pid))
    run_config(tmp_path, [rx], workers=3, rate=6000)
    mark = len(rx.arrivals)
    wait_until(lambda: len(rx.arrivals) >= mark + 4000, what="a second's sending before the reload")
    t_reload = time.monotonic()
    proc.signal(signal.SIGHUP)
    mark = len(proc.out)
    proc.wait_line("(3/3 running)", after=mark)
    wait_until(lambda: len(proc.out) >= mark + 3, what="live lines after the hand-over")
    assert not old & set(worker_pids(proc.pid))                   # every worker was replaced
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert largest_gap(rx.arrivals, t_reload - 0.5, t_reload + 2.0) < 0.1
    by_stream: dict[str, list[int]] = {}
    for d in rx.wait_for(0):
        by_stream.setdefault(stream_of(d), []).append(seq_of(d))
    assert sorted(by_stream) == ["w0", "w1", "w2"]
    for stream, seqs in by_stream.items():
        assert sorted(seqs) == list(range(len(seqs))), stream          # continued: no number twice or missing


@pytest.mark.slow
@pytest.mark.serial          # its local sink, starved of CPU beside six jobs, had not read 97 of 2,000 at the end
def test_stream_slots_follow_the_announced_names_not_their_digits(loggend, tmp_path):
    """--stream-id dc1: worker 2's stream is 'dc12'; the local sink must count it for worker 2 (not 12)."""
    import socket
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    summary = tmp_path / "summary.json"
    proc = loggend("run", "--config", "/dev/null", "--target", "127.0.0.1", "--ports", str(port), "--workers", "3",
                   "--rate", "3000", "--duration", "2s", "--stream-id", "dc1", "--local-sink", "--sink-processes", "1",
                   "--dashboard", "off", "--pool-size", "1000", "--summary-json", str(summary))
    assert proc.wait(30) == 0, proc.stderr
    workers = json.loads(summary.read_text())["workers"]
    assert [w["received"] for w in workers] == [w["sent"] for w in workers] == [2000, 2000, 2000]
    assert [w["lost"] for w in workers] == [0, 0, 0]


def streams_of(datagrams: list[bytes]) -> dict[str, list[int]]:
    by_stream: dict[str, list[int]] = {}
    for d in datagrams:
        by_stream.setdefault(stream_of(d), []).append(seq_of(d))
    return {s: sorted(v) for s, v in by_stream.items()}


def once_but_the_kill(streams: dict[str, list[int]], killed: set[str]) -> dict[str, list[int]]:
    """Each stream's numbers once each: a process SIGKILLed while its system call was sending dies before
    it stores what that call sent, so its replacement sends those again (the sink counts them as
    duplicates). Allowed once per killed stream, one call's worth (a GSO train or a sendmmsg batch)."""
    out = {}
    for name, seqs in streams.items():
        again = [a for a, b in zip(seqs, seqs[1:]) if a == b]
        if name in killed and again:
            assert again == list(range(again[0], again[0] + len(again))) and len(again) <= 1024, (name, again)
        else:
            assert not again, (name, again[:20])
        out[name] = sorted(set(seqs))
    return out


@pytest.mark.slow
@pytest.mark.serial
def test_workers_share_fewer_processes_and_a_killed_one_carries_all_its_streams_on(tmp_path, receivers, loggend):
    """6 workers in 2 processes (p serves p, p+2, p+4): each stream is its own, one SIGKILLed process
    takes 3 workers down, its replacement carries all 3 on and the timed count is exact."""
    (rx,) = receivers(1)
    summary = tmp_path / "summary.json"
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=6, worker_processes=2, rate=12000,
                                             duration="5s"), "--summary-json", str(summary))
    proc.wait_line("(6/6 running)")
    assert "6 workers in 2 processes" in proc.stderr
    pids = sorted(worker_pids(proc.pid))
    assert len(pids) == 2
    time.sleep(1.0)                          # a second into the 5 s run: the catch-up has time left
    os.kill(pids[1], signal.SIGKILL)
    assert proc.wait(30) == 0, proc.stderr
    assert re.search(rf"worker process 1 \(workers 1, 3, 5\) \(pid {pids[1]}\) was killed by SIGKILL", proc.stderr)
    doc = json.loads(summary.read_text())
    assert doc["planned"] == doc["sent"] == 60_000 and doc["shortfall"] == 0 and doc["restarts"] == 3
    down = [w["down_seconds"] for w in doc["workers"]]
    assert [d > 0.3 for d in down] == [False, True] * 3, down
    assert once_but_the_kill(streams_of(rx.wait_for(60_000)), {"w1", "w3", "w5"}) == \
        {f"w{i}": list(range(10_000)) for i in range(6)}


@pytest.mark.slow
@pytest.mark.serial
def test_reloads_to_fewer_processes_and_workers_hand_over_without_a_gap_and_the_count_is_exact(tmp_path, receivers,
                                                                                                loggend):
    """4 workers in 4 processes -> the same 4 in 2 -> 3 workers in 1, in a timed run of 7 s at 8,000
    ev/s: each stream goes on without a gap or a number twice, what retired worker 3 still owed is
    sent by the others, and exactly 56,000 are planned, sent and received (the plan lost an event
    per reload, and a retired worker's last burst was reported as still due)."""
    (rx,) = receivers(1)
    summary = tmp_path / "summary.json"
    path = run_config(tmp_path, [rx], workers=4, worker_processes=4, rate=8000, duration="7s")
    proc = loggend("run", "--config", path, "--summary-json", str(summary))
    proc.wait_line("(4/4 running)")
    old = set(worker_pids(proc.pid))
    assert len(old) == 4
    run_config(tmp_path, [rx], workers=4, worker_processes=2, rate=8000, duration="7s")
    wait_until(lambda: len(rx.arrivals) >= 8000, what="a second's sending before the reload")
    t_reload = time.monotonic()
    proc.signal(signal.SIGHUP)
    proc.wait_line("reload: 4 workers in 2 processes", stream="err")
    mark = len(proc.out)
    wait_until(lambda: len(proc.out) >= mark + 2, what="live lines after the hand-over")
    new = set(worker_pids(proc.pid))
    run_config(tmp_path, [rx], workers=3, worker_processes=1, rate=8000, duration="7s")
    proc.signal(signal.SIGHUP)
    proc.wait_line("reload: 3 workers in 1 process", stream="err")
    assert proc.wait(30) == 0, proc.stderr
    assert len(new) == 2 and not old & new
    assert largest_gap(rx.arrivals, t_reload - 0.5, t_reload + 2.0) < 0.1
    doc = json.loads(summary.read_text())
    assert doc["planned"] == doc["sent"] == 56_000 and doc["shortfall"] == 0, doc
    got = streams_of(rx.wait_for(56_000))
    assert sorted(got) == ["w0", "w1", "w2", "w3"]
    for stream, seqs in got.items():
        assert seqs == list(range(len(seqs))), stream          # continued: no number twice or missing


@pytest.mark.slow
def test_a_reload_while_a_dead_process_waits_for_its_restart_leaves_one_sender_per_stream(tmp_path, receivers,
                                                                                           loggend):
    """SIGKILL a process, then reload within its 0.5 s restart back-off: the hand-over gives its
    streams to the new processes and the pending restart is dropped (it used to start as well,
    so two processes sent the same numbers)."""
    (rx,) = receivers(1)
    proc = loggend("run", "--config", run_config(tmp_path, [rx], workers=4, worker_processes=2, rate=8000))
    proc.wait_line("(4/4 running)")
    run_config(tmp_path, [rx], workers=4, worker_processes=1, rate=8000)     # written ahead: the back-off is short
    os.kill(sorted(worker_pids(proc.pid))[1], signal.SIGKILL)
    proc.wait_line("was killed by SIGKILL; restarting in 0.5 s", stream="err")
    proc.signal(signal.SIGHUP)
    proc.wait_line("reload: 4 workers in 1 process", stream="err")
    time.sleep(2.0)                                         # well past the restart's back-off
    alive = worker_pids(proc.pid)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    assert len(alive) == 1, alive
    got = once_but_the_kill(streams_of(rx.wait_for(0)), {"w1", "w3"})    # no number twice (two senders), none missing
    assert sorted(got) == ["w0", "w1", "w2", "w3"]
    for stream, seqs in got.items():
        assert seqs == list(range(len(seqs))), stream
