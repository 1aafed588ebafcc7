"""Scenarios in a real run: the truth file and the summary agree with what a real rsyslog got, by
sequence number; fail2ban's own sshd filter finds every injected brute-force failure with the attacker's
address in the auth.log that rsyslog wrote; psad's own analysis of the kern.log rsyslog wrote from an
iptables background finds the injected port scan and its attacker."""

from __future__ import annotations

import ast
import json
import re

import pytest

from tests.support import detectors as D
from tests.support import receivers as R
from tests.support.processes import RUN, assert_sent_as_due, run_loggend, wait_until

SSH = "ssh-bruteforce:attempts=12,within=3,at=1"
SPRAY = "password-spray:accounts=5,within=2,at=1"
SCAN = "port-scan:ports=6,within=1,at=2"
PSAD_SCAN = "port-scan:ports=20,within=2,at=1"
RUN_TIMEOUT = 180.0           # a loaded box takes many seconds to set a worker up


def needs(*reasons: str | None) -> None:
    for reason in reasons:
        if reason:
            pytest.skip(reason)


def kern_seq(line: str) -> int | None:
    found = re.search(r"loggen_stream=scn loggen_seq=(\d{12})", line)
    return int(found[1]) if found else None


def scn_seq(rec: dict) -> int | None:
    found = re.search(r'(?:stream=|loggen_stream=|"loggen_stream":")scn\W+(?:loggen_)?seq\W+(\d{12})', rec["raw"])
    return int(found[1]) if found else None


def test_the_truth_and_the_summary_are_what_rsyslog_got_and_fail2ban_finds_every_failure(tmp_path):
    needs(R.rsyslog_available(), D.fail2ban_available())
    truth, summary = tmp_path / "truth.jsonl", tmp_path / "summary.json"
    with D.auth_log_receiver(tmp_path / "rsyslog", udp=True, tcp=False) as rx:       # type: ignore[attr-defined]
        r = run_loggend(*RUN, "--target", f"127.0.0.1:{rx.ports['udp']}", "--rate", "300", "--duration", "6",
                        "--pool-size", "1000", "--scenario", SSH, "--scenario", SPRAY, "--scenario", SCAN,
                        "--truth", str(truth), "--summary-json", str(summary), timeout=RUN_TIMEOUT)
        assert r.returncode == 0, r.stderr
        sent = [json.loads(line) for line in truth.read_text().splitlines()]
        assert len(sent) == 12 + 5 + 6
        rx.wait_for_records(1, timeout=30, predicate=lambda rec: scn_seq(rec) == len(sent) - 1, settle=1.0)
        records = R.read_jsonl(rx.out_file)
        auth_log = rx.auth_log
    got = {scn_seq(rec): rec for rec in records if scn_seq(rec) is not None}
    assert sorted(got) == [t["seq"] for t in sent] == list(range(len(sent)))
    for t in sent:                                   # what rsyslog got is what the truth says was sent
        assert got[t["seq"]]["raw"] == t["message"], t
    doc = json.loads(summary.read_text())
    by_instance = {s["id"]: s for s in doc["scenarios"]}
    assert set(by_instance) == {"ssh-bruteforce-1", "password-spray-1", "port-scan-1"}
    for iid, s in by_instance.items():
        mine = [t for t in sent if t["instance"] == iid]
        assert s["messages"] == len(mine) and s["first_seq"] == mine[0]["seq"] and s["last_seq"] == mine[-1]["seq"]
        assert s["first_sent"] == pytest.approx(mine[0]["sent"], abs=0.001)
        assert s["last_sent"] == pytest.approx(mine[-1]["sent"], abs=0.001)
        assert all(t["attacker"] == s["source"] for t in mine)
    assert by_instance["ssh-bruteforce-1"]["last_sent"] - by_instance["ssh-bruteforce-1"]["first_sent"] <= 3.5
    assert "scenarios: 3 instances, 23 messages in stream scn" in r.stdout

    # fail2ban 1.0.2's own sshd filter, on the auth.log rsyslog wrote (the background's sshd lines too)
    attacker = by_instance["ssh-bruteforce-1"]["source"]
    rows = [ast.literal_eval(line.rstrip(",")) for line in D.regex_matches(auth_log, "sshd", out="row")]
    found = [row for row in rows if row[0] == attacker]
    failures = [t for t in sent if t["instance"] == "ssh-bruteforce-1"]
    assert len(found) == len(failures) == 12, rows[:5]
    for row, t in zip(found, failures, strict=True):
        assert int(row[1]) == int(t["sent"]) or int(row[1]) == int(t["sent"]) + 1       # the log's own second
        assert row[2]["user"] in t["message"]


def test_detection_latency_through_a_private_fail2ban_end_to_end(tmp_path):
    """loggen -> private rsyslog -> auth.log -> private fail2ban-server (its own sshd jail, 5 failures) -> its
    Ban line -> --detect command: -> the summary's latency, which is fail2ban's ban time less the first
    failure's send time; a password spray that no sshd jail can see is missed after the timeout."""
    needs(R.rsyslog_available(), D.fail2ban_available())
    import sys
    truth, summary = tmp_path / "truth.jsonl", tmp_path / "summary.json"
    with D.auth_log_receiver(tmp_path / "rsyslog", udp=True, tcp=False) as rx:       # type: ignore[attr-defined]
        with D.Fail2banServer(tmp_path / "fail2ban", rx.auth_log, maxretry=5) as f2b:
            detect = f"command:{sys.executable} {D.__file__} {f2b.server_log}"
            r = run_loggend(*RUN, "--target", f"127.0.0.1:{rx.ports['udp']}", "--rate", "200", "--duration", "16",
                            "--pool-size", "1000", "--scenario", "ssh-bruteforce:attempts=10,within=4,at=2",
                            "--scenario", "password-spray:accounts=5,within=1,at=1", "--truth", str(truth),
                            "--detect", detect, "--detect-timeout", "9", "--summary-json", str(summary),
                            timeout=RUN_TIMEOUT)
            bans = f2b.bans()
    assert r.returncode == 0, r.stderr
    doc = json.loads(summary.read_text())
    found = {v["id"]: v for v in doc["detection"]["instances"]}
    sent = [json.loads(line) for line in truth.read_text().splitlines()]
    ssh = [t for t in sent if t["instance"] == "ssh-bruteforce-1"]
    attacker = ssh[0]["attacker"]
    banned = [at for at, address in bans if address == attacker]
    assert len(banned) == 1, bans
    v = found["ssh-bruteforce-1"]
    assert v["state"] == "detected" and v["by"] == detect
    assert v["latency_seconds"] == pytest.approx(banned[0] - ssh[0]["sent"], abs=0.01)
    assert ssh[4]["sent"] - ssh[0]["sent"] <= v["latency_seconds"] <= ssh[4]["sent"] - ssh[0]["sent"] + 5.0
    assert found["password-spray-1"]["state"] == "missed"
    assert "detection: 1 of 2 detected, 1 missed (after 9 s)" in r.stdout
    assert f"ssh-bruteforce-1: detected after {v['latency_seconds']:.1f} s" in r.stdout


def test_ctl_inject_sends_one_now_and_ctl_detected_notes_its_detection(tmp_path, loggend):
    import time

    from tests.support.processes import run_loggend as ctl
    sock, summary = tmp_path / "ctl.sock", tmp_path / "summary.json"
    with R.RsyslogReceiver(tmp_path / "rsyslog", udp=True, tcp=False) as rx:
        run = loggend(*RUN, "--target", f"127.0.0.1:{rx.ports['udp']}", "--rate", "100", "--duration", "12",
                      "--pool-size", "1000", "--scenario", "beacon:at=3600", "--detect", "webhook",
                      "--control-socket", str(sock), "--summary-json", str(summary))
        run.wait_line("ready:", timeout=RUN_TIMEOUT, stream="err")
        deadline = time.monotonic() + 30
        while True:                               # the injector starts with the workers' plan, just after ready
            r = ctl("ctl", "inject", "ssh-bruteforce", "attempts=4", "within=1", "--socket", str(sock))
            if r.returncode == 0 or "not started sending yet" not in r.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.returncode == 0 and "ssh-bruteforce-now1 queued" in r.stdout, r.stderr
        bad = ctl("ctl", "inject", "ssh-bruteforce", "attempts=0", "--socket", str(sock))
        assert bad.returncode == 2 and "attempts: '0' is not allowed" in bad.stderr
        again = ctl("ctl", "inject", "ssh-bruteforce", "every=5", "--socket", str(sock))     # was dropped silently
        assert again.returncode == 2 and "inject: every: an inject is one instance" in again.stdout + again.stderr
        rx.wait_for_records(4, timeout=30, predicate=lambda rec: scn_seq(rec) is not None)
        noted = ctl("ctl", "detected", "ssh-bruteforce-now1", "--socket", str(sock))
        assert noted.returncode == 0, noted.stderr
        # a later one is noted, and says the first counts (it answered 'noted' as if it changed the verdict)
        later = ctl("ctl", "detected", "ssh-bruteforce-now1", "--socket", str(sock))
        assert later.returncode == 0 and "noted; the first detection counts, at " in later.stdout, later.stdout
        assert ctl("ctl", "detected", "port-scan-1", "--socket", str(sock)).returncode == 2
        assert run.wait(timeout=RUN_TIMEOUT) == 0, run.stderr
    doc = json.loads(summary.read_text())
    assert [(s["id"], s["messages"]) for s in doc["scenarios"]] == [("ssh-bruteforce-now1", 4)]
    verdict = doc["detection"]["instances"][0]
    assert verdict["state"] == "detected" and verdict["by"].startswith("ctl, pid ")
    assert 0 < verdict["latency_seconds"] < 30


def test_the_siem_posts_its_detection_to_the_dashboard_with_the_token(tmp_path, loggend):
    import urllib.error
    import urllib.request
    token, summary, truth = "s3cret-token-for-the-siem", tmp_path / "summary.json", tmp_path / "truth.jsonl"

    def post(url: str, body: object, auth: str = token, origin: str = "", kind: str = "application/json"
             ) -> tuple[int, dict]:
        req = urllib.request.Request(f"{url}/api/detections", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": kind, "Authorization": f"Bearer {auth}",
                                              **({"Origin": origin} if origin else {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    with R.RsyslogReceiver(tmp_path / "rsyslog", udp=True, tcp=False) as rx:
        run = loggend(*RUN, "--target", f"127.0.0.1:{rx.ports['udp']}", "--rate", "100", "--duration", "10",
                      "--pool-size", "1000", "--scenario", "ssh-bruteforce:attempts=3,within=0.5,at=0.5",
                      "--detect", "webhook", "--truth", str(truth), "--dashboard", "127.0.0.1:0",
                      "--dashboard-token", token, "--control-socket", str(tmp_path / "ctl.sock"),
                      "--summary-json", str(summary))
        url = re.search(r"dashboard: (http://\S+)/ ", run.wait_line("dashboard: http", timeout=RUN_TIMEOUT,
                                                                     stream="err"))[1]   # type: ignore[index]
        rx.wait_for_records(3, timeout=RUN_TIMEOUT, predicate=lambda rec: scn_seq(rec) is not None)
        first = json.loads(truth.read_text().splitlines()[0])["sent"]
        assert post(url, {"scenario": "ssh-bruteforce-1", "detected_at": first + 1.25}, auth="wrong")[0] == 401
        assert post(url, {"scenario": "ssh-bruteforce-1"}, origin="http://evil.example")[0] == 403
        assert post(url, {"detected_at": 1})[0] == 400
        status, doc = post(url, {"scenario": "port-scan-1"})
        assert status == 400 and "not an instance this run sent" in doc["error"]
        assert post(url, {"scenario": "ssh-bruteforce-1", "detected_at": "yesterday"})[0] == 400
        # a detection before the attack, or from the future, once gave a negative latency and won over a real one
        status, doc = post(url, {"scenario": "ssh-bruteforce-1", "detected_at": 1000})
        assert status == 400 and "before its first event was sent" in doc["error"], doc
        status, doc = post(url, {"scenario": "ssh-bruteforce-1", "detected_at": "2099-01-01T00:00:00Z"})
        assert status == 400 and "ahead of now" in doc["error"], doc
        # curl -d sends application/x-www-form-urlencoded: the JSON body is read all the same
        status, doc = post(url, {"scenario": "ssh-bruteforce-1", "detected_at": first + 1.25},
                           kind="application/x-www-form-urlencoded")
        assert status == 200 and doc["ok"], doc

        def metrics() -> str:
            req = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=10) as answer:
                return answer.read().decode()
        wait_until(lambda: 'loggen_scenario_detected_total{' in metrics()
                   and re.search(r'loggen_scenario_detected_total\{[^}]*scenario="ssh-bruteforce"\} 1\.0', metrics()),
                   timeout=30, what="the detection in /metrics")
        text = metrics()
        assert re.search(r'loggen_scenario_messages_total\{[^}]*scenario="ssh-bruteforce"\} 3\.0', text), text
        assert re.search(r'loggen_scenario_detection_latency_seconds_sum\{[^}]*scenario="ssh-bruteforce"\} 1\.25',
                         text), text
        assert re.search(r'loggen_scenario_missed_total\{[^}]*scenario="ssh-bruteforce"\} 0\.0', text), text
        assert run.wait(timeout=RUN_TIMEOUT) == 0, run.stderr
    verdict = json.loads(summary.read_text())["detection"]["instances"][0]
    assert verdict == {"id": "ssh-bruteforce-1", "scenario": "ssh-bruteforce", "state": "detected", "by": "webhook",
                       "detected_at": round(first + 1.25, 3), "latency_seconds": 1.25}


def test_a_local_sink_counts_the_scenario_stream_apart_and_calls_it_the_runs(tmp_path):
    """The local sink took the scenarios' own stream for one the run did not announce: 'foreign 5 messages
    of 1 stream this run did not announce' in a run with no other sender."""
    port = R.free_port(tcp=False)
    summary = tmp_path / "summary.json"
    r = run_loggend(*RUN, "--target", "127.0.0.1", "--ports", str(port), "--local-sink", "--rate", "500",
                    "--duration", "3s", "--scenario", "ssh-bruteforce:attempts=5,within=1,at=1",
                    "--scenario", "beacon:count=5,period=2,at=15", "--summary-json", str(summary),
                    timeout=RUN_TIMEOUT)
    assert r.returncode == 0, r.stderr
    doc = json.loads(summary.read_text())          # a script can take them out of the sink's received count
    assert doc["scenario_messages"] == {"in_their_stream": 5, "unnumbered": 0}
    # a scenario due after the run's end was in no line of the summary
    assert "beacon:count=5,period=2,at=15: not sent (its first instance was due 15 s into the run" in r.stdout
    assert doc["scenarios_not_sent"] == [{"scenario": "beacon:count=5,period=2,at=15", "due_seconds": 15.0}]
    assert_sent_as_due(doc, 1500)
    assert doc["sink"]["received"] - doc["sink"]["foreign"] == doc["sent"]
    assert "scenarios   5 messages of the run's scenario stream (5 sent; counted apart" in r.stdout, r.stdout
    assert "foreign" not in r.stdout and "sent - received = 0" in r.stdout, r.stdout


@pytest.mark.slow
def test_psad_finds_the_port_scan_and_its_attacker_in_an_iptables_background(tmp_path):
    """loggen (an iptables background, a port-scan in its LOG lines) -> private rsyslog -> kern.log -> psad
    2.4.6's own analysis mode (``psad -A -m kern.log --log-server``, the package's psad.conf and
    signatures): psad reports the attacker scanning the scenario's ports of its one destination, with
    every probe counted. What else psad names really sent in the background, and psad names it for a
    signature match on one port (its "MISC MS Terminal Server communication attempt" for a SYN to 3389,
    which the background's drops and forwards carry), never for scanning a range of ports."""
    needs(R.rsyslog_available(), D.psad_available())
    truth = tmp_path / "truth.jsonl"
    with D.kern_log_receiver(tmp_path / "rsyslog", udp=True, tcp=False) as rx:        # type: ignore[attr-defined]
        r = run_loggend(*RUN, "--target", f"127.0.0.1:{rx.ports['udp']}", "--rate", "300", "--duration", "6",
                        "--sources", "iptables", "--scenario", PSAD_SCAN, "--truth", str(truth),
                        timeout=RUN_TIMEOUT)
        assert r.returncode == 0, r.stderr
        sent = [json.loads(line) for line in truth.read_text().splitlines()]
        assert len(sent) == 20 and {t["log_source"] for t in sent} == {"iptables"}
        rx.wait_for_records(1, timeout=30, predicate=lambda rec: scn_seq(rec) == len(sent) - 1, settle=1.0)
        kern_log = rx.log_file
    lines = kern_log.read_text().splitlines()
    probes = {kern_seq(line): line for line in lines if kern_seq(line) is not None}
    assert sorted(probes) == [t["seq"] for t in sent]                 # rsyslog wrote every probe to kern.log
    attacker = sent[0]["attacker"]
    fields = [dict(f.split("=", 1) for f in t["message"].split() if "=" in f) for t in sent]
    (dst,) = {f["DST"] for f in fields}
    ports = sorted(int(f["DPT"]) for f in fields)
    background = {m[1] for line in lines if kern_seq(line) is None and (m := re.search(r" SRC=(\S+) ", line))}
    assert attacker not in background

    report = D.psad_analyze(kern_log, tmp_path / "psad")
    assert report.lines_found == (len(lines), len(lines)), report.output[:500]     # psad read every line
    scan = report.scanners.get(attacker)
    assert scan is not None, report.output[-3000:]
    assert scan.danger_level >= 1 and scan.packets == len(sent) and scan.destinations == 1
    assert scan.ports == {dst: [("TCP", f"{ports[0]}-{ports[-1]}", len(sent))]}, scan
    others = {a: s for a, s in report.scanners.items() if a != attacker}
    assert set(others) <= background, sorted(set(others) - background)[:5]
    for address, s in others.items():        # psad's own reason, as it reports it: a signature, one port each
        assert s.signatures and all(len(p) == 1 and "-" not in p[0][1] for p in s.ports.values()), (address, s)
    print(f"psad: {attacker} DL {scan.danger_level}, {scan.packets} packets, ports {scan.ports[dst][0][1]}; "
          f"{len(others)} background sources named too (danger levels "
          f"{sorted({s.danger_level for s in others.values()})}, "
          f"{sum(1 for s in others.values() if s.signatures)} for a signature match)")
