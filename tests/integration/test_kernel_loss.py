"""Loss the kernel makes, counted exactly: a private network namespace, an nftables rule that drops
1 % of the datagrams at random with a counter, and the sink's sequence accounting set against it.

Nothing leaves the namespace (its own loopback only). Needs root, iproute2, nftables and tc;
skipped with the reason otherwise.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import netns
from tests.support.processes import ROOT, child_environ, wait_until

pytestmark = [pytest.mark.root, pytest.mark.slow]
why = netns.missing()
skip = pytest.mark.skipif(bool(why), reason=why or "-")
RUN_TIMEOUT = 90


def free_port_pair() -> int:
    """A port whose neighbour is free too (inside the namespace every port is free; this keeps clear
    of nothing but reads well in a failure)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def run_in(ns: netns.Netns, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ns.prefix(), sys.executable, "-m", "loggend", *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, env=child_environ(), cwd=ROOT, stdin=subprocess.DEVNULL)


def lossy_run(tmp_path: Path, transport: str, workers: int = 2) -> tuple[dict, tuple[int, int]]:
    port = free_port_pair()
    ports = [port + i for i in range(workers)]
    summary = tmp_path / "summary.json"
    with netns.Netns() as ns:
        ns.drop_random(ports, per_mille=10)
        done = run_in(ns, "run", "--config", "/dev/null", "--target", "127.0.0.1",
                      "--ports", f"{ports[0]}-{ports[-1]}", "--workers", str(workers), "--rate", "20000",
                      "--duration", "3s", "--transport", transport, "--local-sink", "--sink-processes", "2",
                      "--dashboard", "off", "--summary-json", str(summary))
        dropped = ns.dropped()
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(summary.read_text()), dropped


@skip
def test_the_sink_counts_exactly_what_the_kernel_dropped(tmp_path: Path) -> None:
    """One datagram per packet (sendmmsg): the sink's loss equals the rule's counter, to the message."""
    doc, (packets, _) = lossy_run(tmp_path, "sendmmsg")
    sink = doc["sink"]
    # 60,000 planned; a worker starved for more than a second on a loaded box gives up the older debt,
    # and the summary says so (shortfall): what was not sent is no loss
    assert doc["planned"] == 60_000 and doc["sent"] == 60_000 - doc["shortfall"] >= 20_000, doc
    assert sink["kernel_drops"] == 0, sink          # the receive queues lost nothing: only the rule did
    assert packets > doc["sent"] // 200, f"a 1 % rule over {doc['sent']:,} datagrams dropped only {packets}"
    assert doc["sent"] - sink["received"] == packets
    # by sequence: the gaps inside each stream plus the numbers before its first arrival and after
    # its last (the rule drops a stream's first datagram too, about once in fifty runs)
    ends = [w["not_seen_before"] + w["not_seen_after"] for w in doc["workers"]]
    per_stream = [w["lost"] + end for w, end in zip(doc["workers"], ends)]
    assert sum(per_stream) == packets, doc["workers"]
    assert sink["lost"] + sum(ends) == packets
    for w, end in zip(doc["workers"], ends):
        assert w["sent"] - w["received"] == w["lost"] + end, w


@skip
def test_with_gso_a_dropped_packet_is_a_whole_train(tmp_path: Path) -> None:
    """With UDP GSO a packet is a train of up to 64 equal-length messages: the rule counts trains
    and the sink counts every message of them (README: Real networks)."""
    doc, (packets, _) = lossy_run(tmp_path, "gso")
    sink = doc["sink"]
    assert doc["transport"] == "gso" and sink["kernel_drops"] == 0, doc
    lost = doc["sent"] - sink["received"]
    assert packets > 0 and lost >= packets
    assert lost <= 64 * packets
    assert sink["lost"] + sum(w["not_seen_before"] + w["not_seen_after"] for w in doc["workers"]) == lost


LINK_BITS = 4_000_000            # the namespace's loopback: 4 Mbit/s (about 2,200 syslog datagrams a second)
WIRE_OVERHEAD = 14 + 20 + 8      # what tbf counts besides the payload: loopback's Ethernet header, IPv4, UDP
SINK_PORT, SINK_WEB = 47000, 47080   # inside a fresh namespace every port is free


@skip
@pytest.mark.serial
def test_find_limit_through_a_rate_limited_link_finds_the_link(tmp_path: Path) -> None:
    """A tbf link of 4 Mbit/s with a 50 ms queue (room for one burst of the sender: 20 ms of traffic at a
    time): find-limit's limit is the link's capacity in messages (its bits over the mean datagram's wire
    size) within the search's precision."""
    precision = 5.0
    with netns.Netns() as ns:
        ns.rate_limit(f"{LINK_BITS}bit", burst="24kbit", latency="50ms")
        log = open(tmp_path / "sink.log", "w")
        sink = subprocess.Popen([*ns.prefix(), sys.executable, "-m", "loggend", "sink", "--listen",
                                 f"127.0.0.1:{SINK_PORT}", "--processes", "1", "--dashboard", f"127.0.0.1:{SINK_WEB}"],
                                stdout=log, stderr=subprocess.STDOUT, env=child_environ(), cwd=ROOT,
                                start_new_session=True)
        try:
            wait_until(lambda: "dashboard: http://" in (tmp_path / "sink.log").read_text(), timeout=30,
                       what="the sink's dashboard")
            report_dir = tmp_path / "report"
            result = subprocess.run(
                [*ns.prefix(), sys.executable, "-m", "loggend", "find-limit", "--config", "/dev/null", "--target",
                 f"127.0.0.1:{SINK_PORT}", "--workers", "1", "--transport", "sendmmsg",
                 "--feedback", f"sink:http://127.0.0.1:{SINK_WEB}", "--report-dir", str(report_dir),
                 "--start-rate", "1500", "--precision", f"{precision:g}", "--trial", "1s", "--pause", "1s",
                 "--confirm", "2s", "--max-time", "150s"],
                capture_output=True, text=True, timeout=200, env=child_environ(), cwd=ROOT, stdin=subprocess.DEVNULL)
        finally:
            sink.terminate()
            sink.wait(20)
            log.close()
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((report_dir / "report.json").read_text())
    run = json.loads((report_dir / "run-summary.json").read_text())
    mean_payload = run["bytes"] / run["sent"]
    capacity = LINK_BITS / 8 / (mean_payload + WIRE_OVERHEAD)
    found = report["limit_eps"]
    low, high = capacity * (1 - 2 * precision / 100), capacity * (1 + precision / 100)
    assert low <= found <= high, (found, capacity, result.stdout)


def netem_run(tmp_path: Path, *netem: str) -> dict:
    """A run through netem on the namespace's loopback (skipped where the kernel has no netem)."""
    port = free_port_pair()
    summary = tmp_path / "summary.json"
    with netns.Netns() as ns:
        if not ns.has_netem():
            pytest.skip("this kernel has no netem (sch_netem): delay, reordering and duplication need it")
        ns.sh("tc", "qdisc", "add", "dev", "lo", "root", "netem", *netem)
        done = run_in(ns, "run", "--config", "/dev/null", "--target", "127.0.0.1", "--ports", str(port),
                      "--workers", "1", "--rate", "5000", "--duration", "3s", "--transport", "sendmmsg",
                      "--local-sink", "--dashboard", "off", "--summary-json", str(summary))
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(summary.read_text())


@skip
def test_reordered_datagrams_are_late_not_lost(tmp_path: Path) -> None:
    doc = netem_run(tmp_path, "delay", "10ms", "reorder", "25%", "50%")
    sink = doc["sink"]
    assert sink["late"] > 0 and sink["lost"] == 0 and sink["received"] == doc["sent"], sink


@skip
def test_duplicated_datagrams_are_duplicates_not_events(tmp_path: Path) -> None:
    doc = netem_run(tmp_path, "duplicate", "2%")
    sink = doc["sink"]
    assert sink["duplicates"] > 0 and sink["lost"] == 0, sink
    assert sink["received"] - sink["duplicates"] == doc["sent"], sink


@skip
def test_delay_alone_loses_nothing(tmp_path: Path) -> None:
    doc = netem_run(tmp_path, "delay", "50ms", "10ms")
    assert doc["sink"]["lost"] == 0 and doc["sink"]["received"] == doc["sent"], doc["sink"]
