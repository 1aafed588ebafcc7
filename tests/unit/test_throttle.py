"""Repeated warnings: one line, then a count per period (journal.Throttle)."""

from loggend.engine.journal import WARNING, Throttle


def test_a_repeated_warning_is_one_line_then_a_count_per_period():
    now = [0.0]
    lines: list[str] = []
    warn = Throttle(lambda line, level=WARNING: lines.append(line), every=10.0, clock=lambda: now[0])
    for i in range(1000):
        now[0] = i * 0.005
        warn("tls", f"handshake {i} failed")
    warn("other", "something else")
    assert lines == ["handshake 0 failed", "something else"]
    now[0] = 10.0
    warn.tick()
    assert lines[-1] == "999 more like that in the last 10.0 s; the last: handshake 999 failed"
    now[0] = 20.0
    warn.tick()                                   # a quiet period: nothing to say, and the kind is forgotten
    assert len(lines) == 3
    warn("tls", "handshake 1000 failed")
    assert lines[-1] == "handshake 1000 failed"  # said in full again
    warn("tls", "handshake 1001 failed")
    warn.tick(final=True)                         # at the end, whatever is still counted is said
    assert lines[-1] == "1 more like that in the last 0.0 s; the last: handshake 1001 failed"
