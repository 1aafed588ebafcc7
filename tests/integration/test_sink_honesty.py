"""Counts that cannot lie: the sink under overload, faults and hostile input, as a careful user would try it.

Each test reproduces a way the proof was once made wrong without a word (issue 12) and checks that
the count is now right, or that the summary says plainly what could not be counted.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.support.processes import ROOT, child_environ, children_named, free_tcp_port, msg, wait_until


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive UDP ports nobody receives on (checked by binding them)."""
    for _ in range(50):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        first = probe.getsockname()[1]
        probe.close()
        if first + count > 65000:
            continue
        held = []
        try:
            for p in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", p))
            return first
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise AssertionError("no free ports")


def sink_children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []
    out = []
    for k in kids:
        try:
            with open(f"/proc/{k}/comm") as f:
                if f.read().startswith("loggend-sink"):
                    out.append(k)
        except FileNotFoundError:
            pass
    return out


def local_run(loggend, port: int, *extra: str, workers: int = 2, rate: str = "20000", duration: str = "4s"):
    return loggend("run", "--config", "/dev/null", "--target", "127.0.0.1", "--ports", f"{port}-{port + workers - 1}",
                   "--workers", str(workers), "--rate", rate, "--duration", duration, "--local-sink",
                   "--sink-processes", "1", "--dashboard", "off", *extra)


@pytest.mark.slow
def test_a_stopped_local_sink_is_killed_as_hung_and_the_loss_is_unknown(loggend, tmp_path):
    """A SIGSTOPped local sink once gave "lost 0 by sequence; sent - received = 160,235"."""
    port = free_ports(2)
    summary = tmp_path / "summary.json"
    config = tmp_path / "loggen.yaml"
    config.write_text("hung_timeout: 1s\n")
    proc = loggend("run", "--config", str(config), "--target", "127.0.0.1", "--ports", f"{port}-{port + 1}",
                   "--workers", "2", "--rate", "20000", "--duration", "7s", "--local-sink", "--sink-processes", "1",
                   "--dashboard", "off", "--summary-json", str(summary))
    proc.wait_line("(2/2 running)")
    (sink,) = wait_until(lambda: sink_children(proc.pid), what="the sink process")
    os.kill(sink, signal.SIGSTOP)
    proc.wait_line("sink silent", timeout=10)
    err = proc.wait_line(f"sink process 0 (pid {sink}) is hung: no heartbeat", stream="err", timeout=15)
    assert "what is queued for it will not be counted" in err
    proc.wait_line("restarting in", stream="err", timeout=15)
    assert proc.wait(40) == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"lost +unknown \(sink behind: a sink process ended \(killed or crashed\) with [\d.]+ \w+ queued, "
                     r"not counted\); by sequence \d+ so far; sent - received = [\d,]+", out), out
    assert "lost        0 (0.0000 %) by sequence" not in out
    doc = json.loads(summary.read_text())
    assert doc["loss_verdict"] == "unknown" and doc["lost"] is None
    assert doc["sink"]["abandoned"] == 1 and doc["sink"]["abandoned_bytes"] > 0


@pytest.mark.slow
def test_a_local_sink_stopped_until_the_end_is_killed_and_says_so(loggend):
    port = free_ports(2)
    proc = local_run(loggend, port, duration="3s")
    proc.wait_line("(2/2 running)")
    (sink,) = wait_until(lambda: sink_children(proc.pid), what="the sink process")
    os.kill(sink, signal.SIGSTOP)
    assert proc.wait(40) == 0, proc.stderr
    out = proc.stdout
    assert "loss        unknown: sink behind: a sink process ended (killed or crashed) with" in out, out
    assert re.search(r"not seen +[\d,]+ sent and beyond sequence accounting: [\d,]+ after the last number received",
                     out), out


@pytest.mark.slow
def test_forged_numbers_and_foreign_streams_are_counted_apart(loggend, tmp_path):
    """One `stream=w0 seq=999999999999` once made the loss 999,999,799,999 (100 %); a stream `evil1`
    once overwrote worker 1's figures."""
    port = free_ports(2)
    summary = tmp_path / "summary.json"
    proc = local_run(loggend, port, "--summary-json", str(summary), duration="3s")
    proc.wait_line("(2/2 running)")
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.sendto(msg("w0", 999_999_999_999), ("127.0.0.1", port))
    for s in range(50):
        out.sendto(msg("evil1", s * 3), ("127.0.0.1", port + 1))
    assert proc.wait(30) == 0, proc.stderr
    text = proc.stdout
    assert "lost        0 (0.0000 %) by sequence; sent - received = 0" in text, text
    assert "outliers    1 (numbers too far" in text
    assert "foreign     50 messages of 1 stream this run did not announce" in text
    doc = json.loads(summary.read_text())
    assert doc["loss_verdict"] == "counted" and doc["lost"] == 0
    for w in doc["workers"]:
        assert w["received"] == w["sent"] + (1 if w["index"] == 0 else 0), w      # w0 got the forged one too
        assert w["lost"] == 0
    assert doc["workers"][0]["outliers"] == 1 and doc["workers"][1]["outliers"] == 0
    assert doc["sink"]["foreign"] == 50 and doc["sink"]["gaps"] == 0


def test_a_number_above_what_the_worker_sent_makes_the_loss_unknown(loggend, tmp_path):
    """A forged `seq=600000` within the plausibility window once made "lost 570,000 (90 %)", counted."""
    port = free_ports(2)
    summary = tmp_path / "summary.json"
    proc = local_run(loggend, port, "--summary-json", str(summary), rate="10000", duration="3s")
    proc.wait_line("(2/2 running)")
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(msg("w0", 600_000), ("127.0.0.1", port))
    assert proc.wait(30) == 0, proc.stderr
    doc = json.loads(summary.read_text())
    assert doc["loss_verdict"] == "unknown" and doc["lost"] is None, doc["loss_unknown_because"]
    assert any("numbers above what 1 worker sent" in why for why in doc["loss_unknown_because"])
    assert all(w["lost"] is None for w in doc["workers"])
    assert "loss        unknown: numbers above what 1 worker sent" in proc.stdout


def test_a_second_sink_on_the_ports_is_refused(loggend):
    """Two sinks once both bound with SO_REUSEPORT and split the flows: "lost 0 by sequence;
    sent - received = 100,000"."""
    port = free_ports(2)
    first = loggend("sink", "--listen", "127.0.0.1", "--ports", f"{port}-{port + 1}", "--processes", "1")
    first.wait_line("READY listening on")
    second = local_run(loggend, port)
    assert second.wait(30) == 1
    lines = second.stderr.strip().splitlines()
    assert any(re.fullmatch(rf"loggend: sink: 2 other udp sockets already receiving on 127\.0\.0\.1:{port} .*; with "
                            r"SO_REUSEPORT it would take a share of .* \(stop it, or share the ports knowingly with "
                            r"--sink-share-ports / --share-ports\)", line) for line in lines), lines
    assert "Traceback" not in second.stderr
    other = loggend("sink", "--listen", "127.0.0.1", "--ports", f"{port}-{port + 1}", "--processes", "1")
    assert other.wait(20) == 1 and "2 other udp sockets already receiving on" in other.stderr
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0


@pytest.mark.slow
def test_a_shared_port_is_said_loudly_and_the_loss_is_unknown(loggend):
    port = free_ports(2)
    first = loggend("sink", "--listen", "127.0.0.1", "--ports", f"{port}-{port + 1}", "--processes", "1")
    first.wait_line("READY listening on")
    run = local_run(loggend, port, "--sink-share-ports", duration="3s")
    err = run.wait_line("sharing as asked: the loss verdict will be unknown", stream="err")
    assert "2 other udp sockets already receiving on" in err
    assert run.wait(30) == 0, run.stderr
    text = run.stdout
    assert re.search(r"lost +unknown \(2 other sockets receiving on the sink's ports took a share\)", text), text
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0
    # the first sink saw the run's sink join its ports: its own count is not the whole either (which
    # flows each got depends on the kernel's hash of them)
    assert "loss        unknown: 1 other socket receiving on the sink's ports took a share" in first.stdout


@pytest.mark.slow
def test_a_sink_that_appears_during_the_run_is_found(loggend):
    port = free_ports(2)
    run = local_run(loggend, port, duration="4s")
    run.wait_line("(2/2 running)")
    intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    intruder.bind(("127.0.0.1", port))
    try:
        run.wait_line("other socket now receiving on", stream="err", timeout=15)
        assert run.wait(30) == 0, run.stderr
    finally:
        intruder.close()
    assert "loss        unknown: 1 other socket receiving on the sink's ports took a share" in run.stdout


@pytest.mark.slow
def test_a_flooded_sink_keeps_publishing_and_says_what_it_left_unread(loggend):
    """Flooded, the sink once updated no counter or heartbeat until it caught up, ignored SIGTERM, and
    was SIGKILLed with its queue: "received 135,350; lost 4,099; kernel drops 0"."""
    sink = loggend("sink", "--listen", "127.0.0.1:0", "--processes", "1", "--no-gro")
    port = int(re.search(r":(\d+) \(", sink.wait_line("READY listening on")).group(1))
    flood = loggend("run", "--config", "/dev/null", "--workers", "2", "--dashboard", "off",
                    "--target", f"127.0.0.1:{port}", "--rate", "0", "--duration", "30s")
    sink.wait_line(" behind ", timeout=30)
    mark = len(sink.out)
    wait_until(lambda: len(sink.out) >= mark + 3, timeout=15, what="three more lines of the sink")
    totals = [int(re.search(r"total ([\d,]+)", line).group(1).replace(",", "")) for line in sink.out[mark:mark + 3]]
    assert totals[0] < totals[1] < totals[2], totals           # its counters move every second while behind
    asked = time.monotonic()
    sink.signal(signal.SIGTERM)
    assert sink.wait(20) == 0
    assert time.monotonic() - asked < 10                       # a bounded drain, not a SIGKILL
    flood.kill()
    text = sink.stdout
    assert re.search(r"lost +unknown \(sink behind: [\d,]+ datagrams unread at stop", text), text
    assert "loss        unknown: sink behind:" in text


def test_more_ports_than_open_files_is_one_line_and_exit_2(tmp_path):
    """`ulimit -n 256` and 500 ports once gave a traceback."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    for args in (("sink", "--listen", "127.0.0.1", "--ports", "20000-20499"),
                 ("run", "--config", "/dev/null", "--target", "127.0.0.1", "--ports", "20000-20499", "--local-sink",
                  "--duration", "1s", "--dashboard", "off")):
        result = subprocess.run([sys.executable, "-m", "loggend", *args], capture_output=True, text=True, timeout=30,
                                env=child_environ(), cwd=ROOT, preexec_fn=limit)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "500 ports need about 564 open files per sink process, and the limit is 256" \
            in lines[0], lines


@pytest.mark.slow
def test_a_tcp_sink_out_of_file_descriptors_backs_off_and_says_so_once():
    """`ulimit -n 128` and 300 connections once spun a core and logged 473,355 lines in 3 s."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    port = free_ports(1)
    sink = subprocess.Popen([sys.executable, "-m", "loggend", "sink", "--listen", "127.0.0.1", "--protocol", "tcp",
                             "--ports", str(port), "--processes", "1", "--duration", "6s"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_environ(), cwd=ROOT, preexec_fn=limit)
    clients = []
    try:
        def listening() -> bool:
            if sink.poll() is not None:                    # ended before it listened: say why
                raise AssertionError(f"the sink exited {sink.returncode}: {sink.communicate()[1][-2000:]}")
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0
        wait_until(listening, timeout=30, what="the sink listening")     # a loaded CI box starts it slowly
        for _ in range(300):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            clients.append(c)
        time.sleep(2.0)
    finally:
        for c in clients:
            c.close()
    out, err = sink.communicate(timeout=30)
    assert sink.returncode == 0, err
    cannot = [line for line in err.splitlines() if "cannot accept connections: Too many open files" in line
              and "more like that" not in line]           # a second spell within 10 s is counted, not said again
    assert len(cannot) == 1, err[-2000:]
    assert "accepting connections again" in err and "Traceback" not in err


@pytest.mark.browser
@pytest.mark.slow
def test_a_sink_dashboard_shows_the_sink_not_a_generator(loggend):
    """`loggend sink --dashboard` once served the generator's page (0 ev/s, "unlimited", 0/0 workers)."""
    from tests.integration.test_web import ARTIFACTS, BROWSER_ARGS, CHROMIUM
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (scripts/system-deps.sh does it)")
    playwright = pytest.importorskip("playwright.sync_api")
    web = free_tcp_port()
    sink = loggend("sink", "--listen", "127.0.0.1:0", "--processes", "1", "--dashboard", f"127.0.0.1:{web}")
    port = int(re.search(r":(\d+) \(", sink.wait_line("READY listening on")).group(1))
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in range(100):
        if s != 50:
            out.sendto(msg("w0", s), ("127.0.0.1", port))
    out.sendto(msg("w0", 999_999_999_999), ("127.0.0.1", port))
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{web}/")
            page.wait_for_function("document.getElementById('own-received').textContent === '100'", timeout=15000)
            assert page.text_content("#own-lost") == "1" and page.text_content("#eps-label") == "received / second"
            assert page.text_content("#own-apart-detail").startswith("outliers 1")
            assert page.locator("#streams tbody tr").count() == 1
            assert page.text_content("#streams tbody tr td:first-child") == "w0"
            assert not page.is_visible("#target-eps") and not page.is_visible("#workers")
            assert not page.is_visible("#loggen-mem")           # a generator's memory, which a sink has none of
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard-sink.png"), full_page=True)
        finally:
            browser.close()
    sink.signal(signal.SIGTERM)
    assert sink.wait(20) == 0


@pytest.mark.slow
def test_elapsed_time_runs_from_the_start_whatever_restarted(loggend, receiver, tmp_path):
    """A 45 s run with worker kills was once reported "in 39.02 s" (from the last restart), its mean
    rate too high; the same in --summary-json."""
    summary = tmp_path / "summary.json"
    proc = loggend("run", "--config", "/dev/null", "--target", f"127.0.0.1:{receiver.port}", "--workers", "2",
                   "--rate", "2000", "--duration", "6s", "--dashboard", "off", "--summary-json", str(summary))
    proc.wait_line("(2/2 running)")
    wait_until(lambda: len(receiver.datagrams) >= 4000, what="two seconds of sending before the kills")
    for pid in children_named(proc.pid, "loggend-w"):
        os.kill(pid, signal.SIGKILL)
    proc.wait_line("restarting in", stream="err")
    assert proc.wait(40) == 0, proc.stderr
    seconds = float(re.search(r"in ([\d.]+) s", proc.stdout).group(1))
    doc = json.loads(summary.read_text())
    # from the first send, not the restart (about 3 s); the last heartbeat may come late on a busy box
    assert 5.7 <= seconds <= 8.0 and 5.7 <= doc["seconds"] <= 8.0, (seconds, doc["seconds"])
    assert abs(doc["mean_rate"] - doc["sent"] / doc["seconds"]) < 1
