"""Detection feedback: the --detect forms, detector times, verdicts and the command detector against a real process."""

from __future__ import annotations

import json
import sys

import pytest

from loggend.control.detect import (
    Pending,
    append_detection,
    ask_command,
    parse_time,
    verdict_lines,
    verdicts,
)
from loggend.detectspec import DetectSpec, parse_detect
from loggend.errors import ConfigError


def test_the_forms_of_detect() -> None:
    assert parse_detect("--detect", "command:./banned.sh -j sshd") == DetectSpec("command", "./banned.sh -j sshd")
    assert parse_detect("--detect", "prometheus:http://127.0.0.1:9090/", "ALERTS{src='{source}'}") == \
        DetectSpec("prometheus", "http://127.0.0.1:9090", "ALERTS{src='{source}'}")
    assert parse_detect("--detect", "webhook") == DetectSpec("webhook")
    for bad, says in (("command:", "command:CMD"), ("command:'open", "a shell would split"), ("splunk:x", "webhook"),
                      ("prometheus:localhost:9090", "prometheus:http://"), ("", "command:CMD")):
        with pytest.raises(ConfigError, match=says):
            parse_detect("--detect", bad, "up")
    with pytest.raises(ConfigError, match="--detect-query"):
        parse_detect("--detect", "prometheus:http://127.0.0.1:9090")


def test_times_a_detector_may_print() -> None:
    assert parse_time("1796603273.5\n") == 1796603273.5
    assert parse_time("2026-12-07T00:27:53Z") == parse_time("2026-12-07T01:27:53+01:00") == 1796603273.0
    assert parse_time("2026-12-07 00:27:53") is None            # no zone: ambiguous
    assert parse_time("") is None and parse_time("banned") is None


def test_verdicts_latency_missed_undecided(tmp_path) -> None:
    truth, found = tmp_path / "truth.jsonl", tmp_path / "detections.jsonl"
    rows = [("a-1", 100.0), ("a-1", 101.0), ("b-1", 100.0), ("c-1", 150.0), ("d-1", 100.0)]
    truth.write_text("".join(json.dumps({"instance": i, "scenario": i[0], "sent": t, "seq": n}) + "\n"
                             for n, (i, t) in enumerate(rows)))
    append_detection(str(found), "a-1", 103.5, "command:x")
    append_detection(str(found), "a-1", 109.0, "webhook")           # the first one counts
    append_detection(str(found), "d-1", 190.0, "webhook")           # after the timeout: missed all the same
    got = {v.id: v for v in verdicts(str(truth), str(found), timeout=30, now=160)}
    assert (got["a-1"].state, got["a-1"].latency, got["a-1"].by) == ("detected", 3.5, "command:x")
    assert got["b-1"].state == "missed" and got["c-1"].state == "undecided" and got["d-1"].state == "missed"
    lines = verdict_lines(list(got.values()), 30)
    assert lines[0] == ("detection: 1 of 4 detected, 2 missed (after 30 s), 1 undecided (the run ended within "
                        "30 s of their first event)")
    assert "  a-1: detected after 3.5 s (command:x)" in lines


def test_a_detect_command_gets_the_instance_and_its_answer_is_the_time(tmp_path) -> None:
    script = tmp_path / "detector.py"
    script.write_text("import os, sys\n"
                      "assert sys.argv[1] == os.environ['LOGGEN_SCENARIO_ID']\n"
                      "if os.environ['LOGGEN_SCENARIO_SOURCE'] == '203.0.113.9':\n"
                      "    print(float(os.environ['LOGGEN_SCENARIO_FIRST_SENT']) + 2.5)\n")
    logged: list[str] = []
    hit = Pending("ssh-bruteforce-1", "ssh-bruteforce", "203.0.113.9", "bastion-0001", 1000.0)
    spec = DetectSpec("command", f"{sys.executable} {script}")
    assert ask_command(spec, hit, logged.append) == 1002.5
    assert ask_command(spec, Pending("x-1", "x", "203.0.113.10", "t", 1.0), logged.append) is None
    assert logged == []
    assert ask_command(DetectSpec("command", f"{sys.executable} -c 'print(\"soon\")'"), hit, logged.append) is None
    assert "not a time" in logged[-1]


def test_the_tally_reads_only_what_is_new_and_counts_per_scenario(tmp_path) -> None:
    from loggend.control.detect import Tally
    truth, found = tmp_path / "truth.jsonl", tmp_path / "detections.jsonl"
    tally = Tally(str(truth), str(found), timeout=10)
    assert tally.figures(0) == {}
    with open(truth, "w") as f:
        f.write(json.dumps({"instance": "a-1", "scenario": "a", "sent": 100.0}) + "\n")
        f.write(json.dumps({"instance": "a-1", "scenario": "a", "sent": 101.0}) + "\n")
        f.write('{"instance": "b-1", "scen')                     # a line still being written
    assert tally.figures(105) == {"a": {"instances": 1, "messages": 2, "detected": 0, "missed": 0, "latency_sum": 0}}
    with open(truth, "a") as f:
        f.write('ario": "b", "sent": 100.0}\n')
    append_detection(str(found), "a-1", 102.5, "webhook")
    got = tally.figures(111)
    assert got["a"] == {"instances": 1, "messages": 2, "detected": 1, "missed": 0, "latency_sum": 2.5}
    assert got["b"] == {"instances": 1, "messages": 1, "detected": 0, "missed": 1, "latency_sum": 0}


def test_a_detect_command_is_read_in_bounds_and_killed_with_its_children(tmp_path):
    """A command printing 300 MB grew the poller to 620 MB; a hanging one left its child running."""
    import os
    import subprocess
    import time

    from loggend.control.detect import MAX_OUTPUT, bounded_output
    loud = subprocess.Popen(["sh", "-c", "yes x | head -c 50000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    out, _ = bounded_output(loud, 10)
    assert len(out) == MAX_OUTPUT
    pidfile = tmp_path / "child.pid"
    hang = subprocess.Popen(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    started = time.monotonic()
    try:
        bounded_output(hang, 1.0)
        raise AssertionError("a hanging command was not stopped")
    except subprocess.TimeoutExpired:
        pass
    assert time.monotonic() - started < 5
    child = int(pidfile.read_text())
    time.sleep(0.2)
    try:
        os.kill(child, 0)
        alive = open(f"/proc/{child}/stat").read().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        alive = False
    assert not alive, "the command's child outlived it"


def test_instances_are_asked_about_at_once_so_a_slow_detector_misses_none(tmp_path) -> None:
    """Asked one after another, a detector that takes a second left the later instances unasked past their
    timeout: 'missed' though detected."""
    import time

    from loggend.control.detect import DetectorProcess, first_detections
    now = time.time()
    truth = tmp_path / "truth.jsonl"
    truth.write_text("".join(json.dumps({"scenario": "beacon", "instance": f"beacon-{i}", "seq": i, "stream": "scn",
                                         "sent": now - 1, "attacker": "203.0.113.9", "target": "x"}) + "\n"
                             for i in range(1, 7)))
    script = tmp_path / "slow.sh"
    script.write_text('#!/bin/sh\nsleep 1\necho "$LOGGEN_SCENARIO_FIRST_SENT"\n')
    script.chmod(0o755)
    poller = DetectorProcess((DetectSpec("command", str(script)),), str(truth), str(tmp_path / "found.jsonl"), 60)
    started = time.monotonic()
    assert poller.poll() == 6
    assert time.monotonic() - started < 4, "asked one after another"
    assert len(first_detections(str(tmp_path / "found.jsonl"))) == 6


def test_an_instance_no_detector_could_be_asked_about_is_unknown_not_missed(tmp_path) -> None:
    """A detector that cannot be reached (connection refused, exit 3) made every instance 'missed': a SIEM miss."""
    import time

    from loggend.control.detect import DetectorProcess
    now = time.time()
    truth, found = tmp_path / "truth.jsonl", tmp_path / "found.jsonl"
    truth.write_text("".join(json.dumps({"scenario": "beacon", "instance": f"beacon-{i}", "seq": i, "stream": "scn",
                                         "sent": now - 5, "attacker": "203.0.113.9", "target": "x"}) + "\n"
                             for i in (1, 2)))
    broken, quiet = tmp_path / "broken.sh", tmp_path / "quiet.sh"
    broken.write_text("#!/bin/sh\nexit 3\n")
    quiet.write_text('#!/bin/sh\n[ "$1" = beacon-2 ] || exit 3\n')        # answers "not yet" about beacon-2 only
    for script in (broken, quiet):
        script.chmod(0o755)
    DetectorProcess((DetectSpec("command", str(broken)),), str(truth), str(found), 60).poll()
    assert [v.state for v in verdicts(str(truth), str(found), 1, now, polled=True)] == ["unknown", "unknown"]
    DetectorProcess((DetectSpec("command", str(quiet)),), str(truth), str(found), 60).poll()
    states = {v.id: v.state for v in verdicts(str(truth), str(found), 1, now, polled=True)}
    assert states == {"beacon-1": "unknown", "beacon-2": "missed"}
    assert "1 unknown (no detector could be asked about them" in verdict_lines(
        verdicts(str(truth), str(found), 1, now, polled=True), 1)[0]


def test_a_detection_a_clock_skew_before_the_first_event_counts_as_latency_0(tmp_path) -> None:
    """A time up to CLOCK_SLACK before the first event is taken (clocks differ), but its latency read -1.0 s in
    the summary, the report and the metrics' latency sum."""
    from loggend.control.detect import Tally
    truth, found = tmp_path / "truth.jsonl", tmp_path / "detections.jsonl"
    truth.write_text(json.dumps({"instance": "e-1", "scenario": "e", "sent": 100.0, "seq": 0}) + "\n")
    append_detection(str(found), "e-1", 99.0, "webhook")
    (got,) = verdicts(str(truth), str(found), timeout=30, now=101)
    assert (got.state, got.latency, got.detected_at) == ("detected", 0.0, 99.0)
    assert Tally(str(truth), str(found), timeout=30).figures(101)["e"]["latency_sum"] == 0.0


def test_a_detect_command_that_answers_then_prints_on_is_taken_at_its_answer(tmp_path) -> None:
    """Stopped for printing more than MAX_OUTPUT, its answer on the first line was thrown away ('exited -9')."""
    script = tmp_path / "detector.sh"
    script.write_text("#!/bin/sh\necho 1002.5\nyes x | head -c 3000000\n")
    script.chmod(0o755)
    logged: list[str] = []
    hit = Pending("ssh-bruteforce-1", "ssh-bruteforce", "203.0.113.9", "bastion-0001", 1000.0)
    assert ask_command(DetectSpec("command", str(script)), hit, logged.append) == 1002.5
    assert logged == []
