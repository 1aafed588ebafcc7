"""A real rsyslog, over TCP and over TLS, stopped and started again mid-run (as `systemctl restart
rsyslog` does): the workers reconnect with back-off, the run goes on to its end, the reconnects are
in the summary and in /metrics, and what the summary says may be lost covers every message rsyslog
never wrote, found by sequence number in rsyslog's own output."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import netns
from tests.support import receivers as R
from tests.support.processes import ROOT, RUN, child_environ, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.network]

RATE, SECONDS, WORKERS = 1000, 14, 2
TAIL = re.compile(r" stream=(\S+) seq=(\d{12})$")


def needs(why: str | None) -> None:
    if why:
        pytest.skip(why)


def reconnects(url: str) -> float:
    """loggen_reconnects_total over the workers, from the dashboard's /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "loggen_reconnects_total")


@pytest.mark.parametrize("protocol", ["tcp", "tls"])
def test_rsyslog_restarted_mid_run_costs_reconnects_and_no_unreported_loss(loggend, tmp_path, pki, protocol):
    needs(R.rsyslog_available())
    tls = protocol == "tls"
    rx = R.RsyslogReceiver(tmp_path / "rsyslog", udp=False, tcp=not tls, tls=tls, pki=pki if tls else None)
    rx.start()
    port = rx.ports[protocol]
    out = tmp_path / "summary.json"
    extra = ("--tls-ca", str(pki.ca_cert), "--tls-server-name", "localhost") if tls else ()
    run = loggend(*RUN, "--workers", str(WORKERS), "--dashboard", "127.0.0.1:0", "--target",
                  f"127.0.0.1:{port}", "--protocol", protocol, *extra, "--rate", str(RATE), "--duration",
                  f"{SECONDS}s", "--summary-json", str(out))
    url = run.wait_line("dashboard: http://", stream="err").split("dashboard: ", 1)[1].split("/ ", 1)[0]
    run.wait_line(f"({WORKERS}/{WORKERS} running)")
    wait_until(lambda: len(rx.records(normalize=False)) >= RATE, timeout=20, what="rsyslog writing")
    rx.stop()                                        # SIGTERM: rsyslog writes what it took, then exits
    time.sleep(2.0)                                  # down for two seconds: refused connects, back-off
    rx.start()
    wait_until(lambda: reconnects(url) >= WORKERS, timeout=20, what="the reconnects in /metrics")
    assert run.wait(60) == 0, run.stderr
    summary = json.loads(out.read_text())
    assert summary["reconnects"] >= WORKERS
    time.sleep(1.0)                                  # rsyslog's last writes
    got: dict[str, set[int]] = {}
    for rec in rx.records(normalize=False):
        m = TAIL.search(rec["raw"])
        if m:
            got.setdefault(m[1], set()).add(int(m[2]))
    rx.stop()
    sent = {w["index"]: w["sent"] for w in summary["workers"]}
    worker = {name: int(re.search(r"(\d+)$", name)[1]) for name in got}          # stream w0 is worker 0's
    assert sorted(worker.values()) == list(range(WORKERS)), sorted(got)
    never = sum(len(set(range(sent[worker[name]])) - numbers) for name, numbers in got.items())
    # the run went on after the restart (what a starved box sent, not the plan: the debt of more than a
    # second of back-off and stalls is given up, and the summary says so)
    assert sum(len(v) for v in got.values()) > 0.5 * sum(sent.values()) > 0.1 * RATE * SECONDS, summary
    assert never <= summary["possibly_lost"], (never, summary["possibly_lost"])
    assert all(max(numbers) == sent[worker[name]] - 1 for name, numbers in got.items())   # the last ones arrived


@pytest.mark.root
@pytest.mark.skipif(bool(netns.missing()), reason=netns.missing() or "-")
def test_a_target_that_never_answers_is_named_and_the_run_exits_1(tmp_path):
    """Inside a private network namespace, nftables drops every SYN to the port: no refusal, no answer.
    The worker's first connection times out; the run says so in one line naming the target and exits
    1 (no connection was ever made), without a traceback."""
    with netns.Netns() as ns:
        port = 47000
        ns.sh("nft", "add", "table", "inet", "loggen_test")
        ns.sh("nft", "add", "chain", "inet", "loggen_test", "input",
              "{ type filter hook input priority 0; policy accept; }")
        ns.sh("nft", "add", "rule", "inet", "loggen_test", "input", "tcp", "dport", str(port), "counter", "drop")
        done = subprocess.run([*ns.prefix(), sys.executable, "-m", "loggend", *RUN, "--target", f"127.0.0.1:{port}",
                               "--protocol", "tcp", "--rate", "100", "--duration", "5s", "--pool-size", "1000"],
                              capture_output=True, text=True, timeout=120, cwd=ROOT, env=child_environ(None))
        dropped = ns.dropped()[0]
    assert done.returncode == 1, done.stderr
    assert f"cannot start sending to 127.0.0.1:{port}: cannot connect: Connection timed out" in done.stderr
    assert "Traceback" not in done.stderr and dropped >= 1
