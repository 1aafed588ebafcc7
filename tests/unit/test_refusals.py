"""The refusal watch's reading of the counters, tick by tick (the integration test sends for real)."""

from __future__ import annotations

from types import SimpleNamespace

from loggend.control.refusals import ANSWER_TICKS, RefusalWatch


def slot(sent: int, refused: int) -> SimpleNamespace:
    return SimpleNamespace(sent=sent, errors=(refused, 0, 0, 0))


def test_a_port_is_named_once_when_it_refuses_and_again_when_it_takes_datagrams():
    lines: list[str] = []
    watch = RefusalWatch(lambda line, *level: lines.append(line))
    ports = (5000, 5001)
    watch.look("127.0.0.1", ports, [slot(10, 0), slot(10, 0)], 2, 0.0)
    watch.look("127.0.0.1", ports, [slot(20, 0), slot(15, 5)], 2, 1.0)
    watch.look("127.0.0.1", ports, [slot(30, 0), slot(20, 9)], 2, 2.0)
    assert lines == ["127.0.0.1:5001 refuses: nothing listens there (5 datagrams refused in the last second; 5 in all)"]
    assert watch.measured_nothing("127.0.0.1") == ""            # port 5000 took its datagrams
    t = 3.0
    for sent in range(25, 40):                                  # 5001 sends with no refusal from now on
        watch.look("127.0.0.1", ports, [slot(30 + sent, 0), slot(sent, 9)], 2, t)
        t += 1.0
    assert lines[-1] == f"127.0.0.1:5001 takes datagrams again (no refusal for {ANSWER_TICKS} s of sending)"
    assert len(lines) == 2


def test_a_slow_port_that_refuses_every_other_send_never_seems_to_answer():
    """At 1 ev/s the refusal of a datagram comes back on the next send: looks alternate."""
    watch = RefusalWatch(lambda line, *level: None)
    for t in range(10):          # a send that goes out, then one refused for it, and so on
        watch.look("127.0.0.1", (5000,), [slot(t // 2 + 1, (t + 1) // 2)], 1, float(t))
    assert watch.measured_nothing("127.0.0.1").startswith("measured nothing")


def test_every_port_refusing_all_along_measured_nothing():
    watch = RefusalWatch(lambda line, *level: None)
    for t in range(4):
        watch.look("127.0.0.1", (5000,), [slot(10 * t + 1, 10 * t)], 1, float(t))
    assert watch.measured_nothing("127.0.0.1").startswith(
        "measured nothing: every datagram went to a port where nothing listens (127.0.0.1:5000; 30 refused")
    assert RefusalWatch(lambda line, *level: None).measured_nothing("127.0.0.1") == ""   # nothing looked at


def test_the_default_forty_ports_of_one_host_are_pointed_out_at_the_start():
    from loggend.config import load
    from loggend.control.supervisor import say_config
    lines: list[str] = []
    say_config(load("/dev/null", {"target": ("--target", "10.0.0.5")}, usable_cpus={0}),
               lambda line, *level: lines.append(line))
    assert any(line.startswith("sending to 40 ports of 10.0.0.5 (514-553, the default: one per worker); a SIEM "
                               "usually has one input: --ports 514 sends every worker there") for line in lines), lines
    lines.clear()
    say_config(load("/dev/null", {"target": ("--target", "10.0.0.5"), "ports": ("--ports", "514")}, usable_cpus={0}),
               lambda line, *level: lines.append(line))
    assert not any("40 ports" in line for line in lines)


def test_many_ports_refusing_at_once_are_one_line():
    lines: list[str] = []
    watch = RefusalWatch(lambda line, *level: lines.append(line))
    ports = tuple(range(514, 554))
    watch.look("127.0.0.1", ports, [slot(10, 0)] * 40, 40, 0.0)
    watch.look("127.0.0.1", ports, [slot(12, 3)] * 40, 40, 1.0)
    assert lines == ["127.0.0.1: 40 ports refuse: 514-553 (nothing listens there; 120 datagrams refused in the "
                     "last second)"]
