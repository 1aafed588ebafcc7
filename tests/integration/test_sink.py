"""`loggend sink` as a process: crafted datagrams give exact counts; generator trains are counted too."""

import re
import socket
import time

import pytest

from tests.support.console import summary_counts
from tests.support.processes import RUN, msg, run_loggend, start_sink, wait_until


@pytest.mark.parametrize("gro", [True, False])
@pytest.mark.slow
def test_crafted_gaps_duplicates_and_reordering_are_counted_exactly(loggend, gro):
    proc, port = start_sink(loggend, 0, "--idle-exit", "3s", *([] if gro else ["--no-gro"]))
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # stream a: 0..99 with 10..14 missing, 12 arriving late, 50 twice; stream b in order; 3 foreign lines
    a = [s for s in range(100) if not 10 <= s <= 14] + [12, 50]
    for s in a:
        out.sendto(msg("a", s), ("127.0.0.1", port))
    for s in range(40):
        out.sendto(msg("b", s), ("127.0.0.1", port))
    for _ in range(3):
        out.sendto(b"<13>Nov 28 10:00:00 host app: no sequence here", ("127.0.0.1", port))
    assert proc.wait(20) == 0
    counts = summary_counts(proc.stdout)
    assert counts == {"datagrams": len(a) + 43, "streams": 2, "lost": 4, "gaps": 5, "reordered": 1,
                      "duplicates": 1, "without sequence": 3, "kernel drops": 0}


@pytest.mark.slow
def test_generator_trains_are_counted_per_stream(loggend, tmp_path):
    import json
    proc, port = start_sink(loggend, 0, "--idle-exit", "3s")
    summary = tmp_path / "summary.json"
    result = run_loggend(*RUN, "--workers", "3", "--target", f"127.0.0.1:{port}", "--rate", "30000",
                         "--duration", "1s", "--pool-size", "1000", "--summary-json", str(summary))
    assert result.returncode == 0, result.stderr
    assert proc.wait(20) == 0
    # what was sent (a worker starved at the end of a 1 s run on a loaded box leaves some still due: 800 once)
    sent = json.loads(summary.read_text())["sent"]
    assert sent > 25_000
    assert summary_counts(proc.stdout) == {"datagrams": sent, "streams": 3, "lost": 0, "gaps": 0, "reordered": 0,
                                           "duplicates": 0, "without sequence": 0, "kernel drops": 0}


def test_a_port_it_cannot_bind_is_one_line_and_exit_1(loggend):
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)       # no SO_REUSEPORT: the port is taken
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    # (told to share the ports, so that it tries: without that it refuses at the other socket, below)
    proc = loggend("sink", "--listen", f"127.0.0.1:{port}", "--processes", "2", "--share-ports")
    assert proc.wait(20) == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr
    holder.close()


def test_a_taken_dashboard_port_is_one_line_and_exit_1_before_anything_starts(loggend):
    holder = socket.create_server(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        proc = loggend("sink", "--listen", "127.0.0.1:0", "--processes", "2", "--dashboard", f"127.0.0.1:{port}")
        assert proc.wait(20) == 1
    finally:
        holder.close()
    assert proc.stderr.strip().splitlines() == [
        f"loggend: dashboard: cannot listen on 127.0.0.1:{port}: Address already in use"], proc.stderr
    assert proc.stdout == ""                          # no READY, no summary: no sink process was started


def test_sink_stops_on_sigterm_with_its_summary(loggend):
    proc, port = start_sink(loggend, 0)
    proc.proc.terminate()
    assert proc.wait(10) == 0 and summary_counts(proc.stdout)["datagrams"] == 0


@pytest.mark.slow
def test_local_sink_under_the_supervisor_counts_what_was_sent(loggend):
    """`loggend run --local-sink`: received equals sent, and the dashboard's API shows both."""
    import json
    import urllib.error
    import urllib.request

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    proc = loggend("run", "--config", "/dev/null", "--target", "127.0.0.1", "--ports", f"{port}-{port + 1}",
                   "--workers", "2", "--rate", "20000", "--duration", "4s", "--local-sink", "--sink-processes", "2",
                   "--dashboard", "127.0.0.1:0", "--dashboard-interval", "0.5s")
    url = re.search(r"(http://\S+?)/ ", proc.wait_line("dashboard: http://", stream="err")).group(1)
    proc.wait_line("received ")

    def sink_received() -> dict | None:
        with urllib.request.urlopen(url + "/api/metrics", timeout=10) as r:
            doc = json.loads(r.read())
        return doc if doc["sink"] and doc["sink"]["received"] > 0 else None
    live = wait_until(sink_received, what="the sink's figures in /api/metrics")
    assert live["sink"]["received"] > 0 and live["sink"]["processes"] == 2 and live["sink"]["lost"] == 0
    assert live["sink"]["received"] <= live["totals"]["events"] + 20000
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        assert "loggen_sink_received_total" in r.read().decode()
    assert proc.wait(30) == 0, proc.stderr
    # 80,000 planned; a worker starved over a second on a loaded box gives the older debt up (the summary
    # says so): the sink must have received exactly what was sent
    sent = int(re.search(r"sent +([\d,]+) events", proc.stdout).group(1).replace(",", ""))
    assert sent == 80_000 or "given up after stalls" in proc.stdout, proc.stdout
    assert f"received    {sent:,} events (" in proc.stdout and "from 2 streams (2 processes)" in proc.stdout
    assert "lost        0 (0.0000 %) by sequence; sent - received = 0" in proc.stdout


def test_standalone_sink_serves_its_own_metrics(loggend):
    import json
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    proc = loggend("sink", "--listen", "127.0.0.1:0", "--processes", "2", "--dashboard", "127.0.0.1:0",
                   "--dashboard-hosts", "sink.example")
    port = int(re.search(r":(\d+) \(", proc.wait_line("READY listening on")).group(1))
    url = re.search(r"(http://\S+?)/ ", proc.wait_line("dashboard: http://", stream="err")).group(1)
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in [0, 1, 2, 5, 5]:                         # 3, 4 lost; 5 twice
        out.sendto(msg("w0", s), ("127.0.0.1", port))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with urllib.request.urlopen(url + "/api/metrics", timeout=5) as r:
            sink = json.loads(r.read())["sink"]
        if sink["received"] == 5:
            break
        time.sleep(0.2)
    assert (sink["received"], sink["lost"], sink["duplicates"], sink["processes"]) == (5, 2, 1, 2)
    assert sink["sent_minus_received"] is None
    with urllib.request.urlopen(url + "/metrics", timeout=5) as r:
        families = {f.name: f for f in text_string_to_metric_families(r.read().decode())}
    total = {name: sum(s.value for s in families[name].samples if s.name.endswith("_total"))
             for name in ("loggen_sink_received", "loggen_sink_gaps", "loggen_sink_duplicates",
                          "loggen_sink_kernel_drops", "loggen_sink_late")}
    assert total == {"loggen_sink_received": 5, "loggen_sink_gaps": 2, "loggen_sink_duplicates": 1,
                     "loggen_sink_kernel_drops": 0, "loggen_sink_late": 0}
    assert sum(s.value for s in families["loggen_sink_lost"].samples) == 2          # net loss: a gauge
    # the same Host check as the generator's dashboard, with --dashboard-hosts
    for host, status in (("sink.example", 200), ("rebound.example", 403)):
        request = urllib.request.Request(url + "/healthz", headers={"Host": f"{host}:{url.rsplit(':', 1)[1]}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                assert r.status == status
        except urllib.error.HTTPError as err:
            assert err.code == status
