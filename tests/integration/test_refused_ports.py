"""Ports where nothing listens: a UDP datagram to one comes back as ICMP port unreachable, which the
kernel hands to the next send as ECONNREFUSED. The port is named in the log within a second of
the first refusal, shown on the dashboard and counted per port in the summary; a run in which
every port refused all along measured nothing and exits 1. Every address is 127.0.0.1."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.request

import pytest

from tests.support.processes import RUN, run_loggend, summary_of, wait_until
from tests.support.receivers import free_port


def closed_port() -> int:
    """A UDP port of 127.0.0.1 nobody listens on (free when asked)."""
    return free_port(tcp=False, udp=True)


@pytest.mark.slow
def test_a_port_where_nothing_listens_is_named_within_a_second_shown_and_counted(loggend, receiver, tmp_path):
    silent = closed_port()
    summary = tmp_path / "summary.json"
    proc = loggend(*RUN, "--target", "127.0.0.1", "--ports", f"{receiver.port},{silent}", "--workers", "2",
                   "--rate", "2000", "--duration", "4s", "--dashboard", "127.0.0.1:0", "--dashboard-interval", "0.5s",
                   "--summary-json", str(summary))
    line = proc.wait_line("dashboard: http://", stream="err")
    url = re.search(r"(http://\S+?)/ ", line).group(1)
    proc.wait_line("(2/2 running)")
    started = time.monotonic()
    named = proc.wait_line(f"127.0.0.1:{silent} refuses: nothing listens there", stream="err", timeout=10)
    assert time.monotonic() - started < 2.5, "named more than a tick after the first refusals"   # tick: 1 s
    assert f"127.0.0.1:{receiver.port} refuses" not in proc.stderr, named

    def refusing():
        with urllib.request.urlopen(url + "/api/metrics", timeout=5) as r:
            return json.loads(r.read())["refusing"]
    shown = wait_until(lambda: refusing() or None, what="the refusing port on /api/metrics")
    assert [r["address"] for r in shown] == [f"127.0.0.1:{silent}"] and shown[0]["refused"] > 0
    assert proc.wait(30) == 0, proc.stderr                  # one port took the datagrams: something was measured
    doc = summary_of(summary)
    assert list(doc["refused_by_port"]) == [str(silent)]
    assert doc["refused_by_port"][str(silent)] == doc["errors"]["refused"] > 0
    assert f"port {silent} {doc['errors']['refused']:,} (ICMP port unreachable: nothing listened there)" in proc.stdout
    # what went out between two refusals went nowhere too: the summary counts it apart, per port
    sent_there = next(w["sent"] for w in doc["workers"] if w["port"] == silent)
    assert doc["sent_to_unanswered_ports"] == {str(silent): sent_there} and sent_there > 0
    assert (f"and {sent_there:,} of the events counted as sent went to 1 port where nothing ever listened "
            f"({silent}): lost as well") in proc.stdout


def test_a_run_where_every_port_refused_measured_nothing_and_exits_1(tmp_path):
    """The defect: 40 ports where nothing listens ended with exit 0 and 'all sent'."""
    ports = sorted({closed_port() for _ in range(3)})
    summary = tmp_path / "summary.json"
    done = run_loggend(*RUN, "--target", "127.0.0.1", "--ports", ",".join(map(str, ports)), "--workers",
                       str(len(ports)), "--rate", "1500", "--duration", "2s", "--summary-json", str(summary))
    assert done.returncode == 1, done.stdout + done.stderr
    last = [line for line in done.stderr.splitlines() if "measured nothing" in line]
    assert last and "every datagram went to a port where nothing listens" in last[0], done.stderr
    doc = summary_of(summary)
    assert sorted(map(int, doc["refused_by_port"])) == ports       # the summary is written all the same


def test_a_stopped_run_that_only_ever_sent_where_nothing_listens_exits_1(loggend, tmp_path):
    """A run of duration 0 always ends by a signal: stopped, it still measured nothing (it exited 0)."""
    port = closed_port()
    proc = loggend(*RUN, "--target", f"127.0.0.1:{port}", "--rate", "500", "--duration", "0")
    proc.wait_line(f"127.0.0.1:{port} refuses: nothing listens there", stream="err", timeout=20)
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 1, proc.stderr
    assert "measured nothing: every datagram went to a port where nothing listens" in proc.stderr


def test_refusals_stay_with_the_port_they_were_sent_to_when_a_reload_moves_the_workers(loggend, receiver, tmp_path):
    silent = closed_port()
    path = tmp_path / "loggen.yaml"
    body = "target: 127.0.0.1\nworkers: 1\nrate: 1000\ndashboard: off\nmessages:\n  pool_size: 1000\n"
    path.write_text(body + f'ports: "{silent}"\n')
    summary = tmp_path / "summary.json"
    proc = loggend("run", "--config", str(path), "--summary-json", str(summary))
    proc.wait_line(f"127.0.0.1:{silent} refuses", stream="err", timeout=20)
    path.write_text(body + f'ports: "{receiver.port}"\n')
    proc.signal(signal.SIGHUP)
    wait_until(lambda: len(receiver.datagrams) > 500, timeout=20, what="the worker sending to the new port")
    proc.signal(signal.SIGTERM)
    assert proc.wait(30) == 0, proc.stderr
    doc = summary_of(summary)
    assert list(doc["refused_by_port"]) == [str(silent)], doc["refused_by_port"]     # not the new port's
    assert f"127.0.0.1:{receiver.port} refuses" not in proc.stderr
