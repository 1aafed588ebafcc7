"""The injector: scenario messages at their times over a real loopback socket, each in the truth first."""

from __future__ import annotations

import io
import json
import math
import os
import socket
import time

import pytest

from loggend.content.scenarios import Background, parse
from loggend.control.injector import Injector, Target, anchors_of, instances_of, summary_lines
from loggend.errors import UsageError


def receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    return sock


def drain(sock: socket.socket) -> list[bytes]:
    got = []
    try:
        while True:
            got.append(sock.recv(65536))
    except TimeoutError:
        return got


def test_it_sends_each_step_at_its_time_numbered_and_in_the_truth_first() -> None:
    rx = receiver()
    truth = io.StringIO()
    start = time.time() + 0.2
    requests = (parse("s", "ssh-bruteforce:attempts=5,within=1"), parse("s", "beacon:count=2,period=1,at=0.5"))
    inj = Injector(requests, Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, start, start + 2.0)
    assert inj.run() == 7
    got = drain(rx)
    lines = [json.loads(line) for line in truth.getvalue().splitlines()]
    assert [r["message"].encode() for r in lines] == got
    assert [r["seq"] for r in lines] == list(range(7))
    assert all(f"seq={r['seq']:012d}".encode() in m or f'"loggen_seq":"{r["seq"]:012d}"'.encode() in m
               for r, m in zip(lines, got, strict=True))
    ssh = [r for r in lines if r["instance"] == "ssh-bruteforce-1"]
    assert ssh[0]["sent"] == pytest.approx(start, abs=0.15) and ssh[-1]["sent"] == pytest.approx(start + 1, abs=0.3)
    beacon = [r for r in lines if r["scenario"] == "beacon"]
    assert beacon[0]["sent"] == pytest.approx(start + 0.5, abs=0.15)
    sent = instances_of(iter(lines))
    assert [(s.id, s.messages) for s in sent] == [("ssh-bruteforce-1", 5), ("beacon-1", 2)]
    assert "ssh-bruteforce-1: 5 messages (seq 0-" in "\n".join(summary_lines(sent))

    again = Injector(requests, Background(), Target("127.0.0.1", rx.getsockname()[1]), io.StringIO(), start,
                     start + 2.0)          # a restarted injector: what the truth holds is not sent twice
    again.done = {(r["instance"], r["step"]) for r in lines}
    again.seq = 7
    assert again.run() == 7 and drain(rx) == []
    rx.close()


def test_inject_now_takes_a_scenario_and_keys_from_a_pipe_and_refuses_bad_ones() -> None:
    rx = receiver()
    read, write = os.pipe()
    truth = io.StringIO()
    logged: list[str] = []
    start = time.time()
    inj = Injector((), Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, start, start + 1.5,
                   commands=read, log=logged.append)
    os.write(write, b"port-scan ports=3 within=0.2\nport-scan ports=0\nnmap\n")
    assert inj.run() == 3
    assert logged[0] == "injecting port-scan-now1 now"
    assert "ports: '0' is not allowed" in logged[1] and "'nmap' is not allowed" in logged[2]
    assert {json.loads(line)["instance"] for line in truth.getvalue().splitlines()} == {"port-scan-now1"}
    assert len(drain(rx)) == 3
    with pytest.raises(UsageError):
        inj.inject("")
    os.close(read)
    os.close(write)
    rx.close()


def test_a_run_without_an_end_sends_its_repeating_scenarios() -> None:
    """With duration 0 the planner tried to plan every instance of the run for ever: nothing was sent."""
    import math
    import threading
    rx = receiver()
    truth = io.StringIO()
    start = time.time()
    requests = (parse("s", "ssh-bruteforce:attempts=2,within=0.1,every=1"),)
    inj = Injector(requests, Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, start, math.inf)
    worker = threading.Thread(target=inj.run)
    worker.start()
    time.sleep(2.4)
    inj.stop()
    worker.join(5)
    assert not worker.is_alive()
    ids = {json.loads(line)["instance"] for line in truth.getvalue().splitlines()}
    assert {"ssh-bruteforce-1", "ssh-bruteforce-2", "ssh-bruteforce-3"} <= ids, ids


def test_two_requests_of_one_scenario_are_told_apart() -> None:
    """Their instances shared ids (ssh-bruteforce-1 held both attackers' messages)."""
    rx = receiver()
    truth = io.StringIO()
    start = time.time()
    requests = (parse("s", "ssh-bruteforce:attempts=2,within=0.2"), parse("s", "ssh-bruteforce:attempts=3,within=0.2"))
    inj = Injector(requests, Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, start, start + 1.0)
    assert inj.run() == 5
    sent = {s.id: (s.messages, s.source) for s in instances_of(json.loads(x) for x in truth.getvalue().splitlines())}
    assert sorted(sent) == ["ssh-bruteforce-r1-1", "ssh-bruteforce-r2-1"]
    assert sent["ssh-bruteforce-r1-1"][0] == 2 and sent["ssh-bruteforce-r2-1"][0] == 3


def test_an_inject_replayed_to_a_restarted_injector_sends_only_what_was_not_sent() -> None:
    """A killed injector lost the rest of an injected instance (6 of 20 sent, no word of it)."""
    rx = receiver()
    start = time.time()
    first, truth = io.StringIO(), io.StringIO()
    inj = Injector((), Background(), Target("127.0.0.1", rx.getsockname()[1]), first, start, start + 0.6)
    inj.inject(f"port-scan-now1 @{start:.6f} port-scan ports=6 within=1")
    inj.run()                                                     # ends at 0.6 s: some of the 6 were sent
    sent_before = len(first.getvalue().splitlines())
    assert 0 < sent_before < 6
    again = Injector((), Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, start, start + 1.5)
    before = [json.loads(x) for x in first.getvalue().splitlines()]
    again.done = {(r["instance"], r["step"]) for r in before}             # as InjectorProcess.body sets them
    again.anchors = anchors_of(before)
    again.inject(f"port-scan-now1 @{start:.6f} port-scan ports=6 within=1")
    again.run()
    steps = sorted(json.loads(x)["step"] for x in first.getvalue().splitlines() + truth.getvalue().splitlines())
    assert steps == list(range(6))                                # each once, the rest at its own time


def test_a_pause_of_the_run_holds_the_scenarios_too() -> None:
    """8 scenario messages went out while `ctl pause` held the background."""
    rx = receiver()
    truth = io.StringIO()
    start = time.time()
    hold_until = start + 0.8
    requests = (parse("s", "ssh-bruteforce:attempts=2,within=0.2,at=0.3"),)
    inj = Injector(requests, Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, start, start + 1.6,
                   paused=lambda: time.time() < hold_until)
    assert inj.run() == 2
    sent = [json.loads(x)["sent"] for x in truth.getvalue().splitlines()]
    assert sent[0] >= hold_until + 0.25, (sent[0] - start)         # its 0.3 s, counted from the resume


def test_an_instance_injected_during_a_pause_is_held_from_its_injection_only() -> None:
    """find-limit injects at each trial's start while the run is still paused: the instance was put off by the
    whole pause, before its injection too, and its first message went out in the next trial."""
    import threading
    rx = receiver()
    read, write = os.pipe()
    truth = io.StringIO()
    start = time.time()
    hold_until = start + 1.2
    resumed: list[float] = []            # when the injector saw the resume (a starved box sees it late)

    def paused() -> bool:
        now = time.time()
        if now >= hold_until and not resumed:
            resumed.append(now)
        return now < hold_until

    injected: list[float] = []           # when the injector took the request (a starved Timer writes it late)

    def log(line: str) -> None:
        if line.startswith("injecting "):
            injected.append(time.time())

    inj = Injector((), Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, start, start + 2.5,
                   commands=read, paused=paused, log=log)
    threading.Timer(0.8, os.write, (write, b"port-scan ports=2 within=0.1\n")).start()
    assert inj.run() == 2
    sent = [json.loads(x)["sent"] for x in truth.getvalue().splitlines()]
    # at the resume (or at its injection, if a starved test process injected it only after the resume), not
    # 0.8 s after the resume (put off by the part of the pause before its injection too)
    ready = max(resumed[0], injected[0])
    assert resumed[0] <= sent[0] < ready + 0.6, (sent[0] - start, resumed[0] - start, injected[0] - start)
    assert sent[1] - sent[0] <= 0.3
    os.close(read)
    os.close(write)
    rx.close()


def test_a_restarted_injector_takes_a_begun_instance_up_at_its_own_spacing() -> None:
    """Killed after a pause, the restarted injector planned the instance from the run's start without the
    pause: five attempts due during the pause went out in one millisecond."""
    rx = receiver()
    truth = io.StringIO()
    now = time.time()
    requests = (parse("s", "ssh-bruteforce:attempts=5,within=2"),)
    inj = Injector(requests, Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, now - 10, now + 3)
    inj.done = {("ssh-bruteforce-1", 0), ("ssh-bruteforce-1", 1)}       # sent before the kill...
    inj.anchors = {"ssh-bruteforce-1": (1, now - 0.05)}                  # ...the last of them just now
    inj.seq = 2
    planned: dict[int, float] = {}
    add = inj.add

    def recorded(inst, at, since=-math.inf):                            # the wall times it plans the steps for
        add(inst, at, since)
        planned.update({d.step: d.at for d in inj.queue if d.instance.id == inst.id})
    inj.add = recorded                                                  # type: ignore[method-assign]
    assert inj.run() == 5                                               # the stream's next number
    sent = [json.loads(x)["sent"] for x in truth.getvalue().splitlines()]
    steps = [json.loads(x)["step"] for x in truth.getvalue().splitlines()]
    assert steps == [2, 3, 4] and sorted(planned) == steps
    plan = [planned[k] for k in steps]
    # planned after the last one sent, at the instance's own spacing, not at once; and none sent before its
    # time (a starved test process sends late, and a late one's successor may then follow it closely)
    assert plan[0] - now > 0.2 and all(b - a > 0.2 for a, b in zip(plan, plan[1:])), [round(t - now, 3) for t in plan]
    assert all(t >= p - 0.005 for t, p in zip(sent, plan)), ([round(t - now, 3) for t in sent], plan)
    rx.close()


def test_an_instance_already_due_when_planned_starts_whole_not_in_a_burst() -> None:
    """The injector starts a moment after its run: an instance due 0.5 s into the run went out 'over 0.0 s'."""
    rx = receiver()
    truth = io.StringIO()
    now = time.time()
    requests = (parse("s", "ssh-bruteforce:attempts=3,within=0.5,at=0.2"),)
    inj = Injector(requests, Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, now - 1.0, now + 1.5)
    assert inj.run() == 3
    sent = [json.loads(x)["sent"] for x in truth.getvalue().splitlines()]
    assert sent[-1] - sent[0] >= 0.4 and sent[0] - now < 0.2, [round(t - now, 3) for t in sent]
    rx.close()


def test_an_injector_behind_its_plan_says_so_once() -> None:
    """65,535 probes within 5 s stretched every other instance to twice its within= without a word."""
    rx = receiver()
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    logged: list[str] = []
    start = time.time()
    fast = lambda: start + (time.time() - start) * 20     # noqa: E731  a box of any speed falls behind
    inj = Injector((), Background(), Target("127.0.0.1", rx.getsockname()[1]), io.StringIO(), start, start + 1,
                   log=logged.append, clock=fast)
    inj.inject("port-scan ports=40000 within=0.2")
    inj.run()
    behind = [line for line in logged if "behind its plan" in line]
    assert len(behind) == 1 and "at port-scan-now1 (40,000 messages)" in behind[0], logged
    rx.close()


def test_a_truth_that_cannot_be_written_stops_the_scenarios_and_a_cut_line_is_left_out(tmp_path) -> None:
    """On a full disk the injector crashed in a loop on its half-written line and the summary said 'none sent'."""
    from loggend.control.injector import read_truth

    class FullDisk(io.StringIO):
        def write(self, text: str) -> int:
            if len(self.getvalue()) > 300:
                super().write(text[:40])                      # the line cut short, as ENOSPC leaves it
                raise OSError(28, "No space left on device")
            return super().write(text)
    rx = receiver()
    truth, said = FullDisk(), []
    start = time.time()
    requests = (parse("s", "ssh-bruteforce:attempts=6,within=0.3"),)
    inj = Injector(requests, Background(), Target("127.0.0.1", rx.getsockname()[1]), truth, start, start + 1.0,
                   log=said.append)
    sent = inj.run()
    assert 0 < sent < 6 and len(drain(rx)) == sent                # nothing went out that the truth lacks
    assert said == ["scenarios: cannot write the truth file: No space left on device; no more scenario messages "
                    "are sent"]
    path = tmp_path / "truth.jsonl"
    path.write_text(truth.getvalue())
    assert len(list(read_truth(str(path)))) == sent               # the cut line is left out, the rest read


def test_the_truth_file_keeps_whole_lines_when_the_disk_cuts_a_write(tmp_path) -> None:
    """A full disk left a half line in the truth (the buffered file wrote the rest again at its close) and the
    summary said the instance was cut short because 'the run ended first'."""
    import subprocess
    import sys

    from loggend.control.injector import read_truth, truth_failure
    path = tmp_path / "truth.jsonl"
    script = ("import resource, signal, sys\n"
              "from loggend.control.injector import TruthFile\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (440, 440))    # a disk with room for 440 bytes\n"
              "with TruthFile(sys.argv[1]) as t:\n"
              "    for n in range(20):\n"
              "        try:\n"
              "            line = '{\"instance\": \"a-1\", \"step\": %d, \"seq\": %d, \"pad\": \"%s\"}\\n'\n"
              "            t.write(line % (n, n, 'x' * 40))\n"
              "        except OSError:\n"
              "            print(n)\n"
              "            break\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    whole = int(done.stdout)
    text = path.read_text()
    assert text.endswith("\n") and len(list(read_truth(str(path)))) == whole > 0, text
    assert truth_failure(str(path)).startswith("cannot write the truth file: "), text
