"""Per-stream accounting with crafted sequences: exact lost / late / duplicate counts."""

from hypothesis import given
from hypothesis import strategies as st

from loggend.sink.accounting import Accounting, parse


def msg(stream: str, seq: int, body: str = "x") -> bytes:
    return b"<13>Nov 28 10:00:00 h t: %s stream=%s seq=%012d" % (body.encode(), stream.encode(), seq)


def feed(seqs, stream="a") -> Accounting:
    acc = Accounting()
    for s in seqs:
        acc.add(msg(stream, s))
    return acc


def test_in_order():
    acc = feed(range(100))
    assert (acc.received, acc.lost, acc.late, acc.duplicates) == (100, 0, 0, 0)


def test_gaps_late_fills_and_duplicates():
    # 0 1 2 | 5 (3,4 missing) | 3 (late, fills) | 3 (duplicate) | 1 (duplicate) | 9 (6,7,8 missing) | 7 (late)
    acc = feed([0, 1, 2, 5, 3, 3, 1, 9, 7])
    assert acc.received == 9
    assert acc.gaps == 5 and acc.late == 2 and acc.lost == 3      # 4, 6, 8 never came
    assert acc.duplicates == 2


def test_streams_are_separate_and_foreign_lines_only_counted():
    acc = Accounting()
    for s in (0, 1, 2):
        acc.add(msg("w0", s))
        acc.add(msg("w1", s * 2))            # w1 skips every other number
    acc.add(b"<13>Nov 28 10:00:00 h t: a line without a sequence number")
    acc.add(b"garbage seq=12")
    assert acc.received == 8 and acc.unsequenced == 2
    assert acc.streams[b"w0"].lost == 0 and acc.streams[b"w1"].lost == 2 and acc.lost == 2


def test_runs_match_single_messages():
    acc = Accounting()
    acc.add_run(b"a", 0, 10)
    acc.add_run(b"a", 15, 5)                 # 10..14 missing
    acc.add_run(b"a", 8, 5)                  # 8, 9 duplicates; 10, 11, 12 late
    assert (acc.gaps, acc.late, acc.duplicates, acc.lost) == (5, 3, 2, 2)


def test_parse():
    assert parse(msg("w12", 42)) == (b"w12", 42)
    assert parse(b"stream=w1 seq=000000000001") is None          # no space before stream=
    assert parse(msg("w1", 1)[:-1] + b"x") is None


@given(st.permutations(list(range(60))), st.lists(st.integers(0, 59), max_size=20), st.sets(st.integers(0, 59)))
def test_any_arrival_order(order, repeats, dropped):
    """Whatever the order, drops and repeats: lost = dropped between the lowest and highest seen, dups = repeats."""
    arrivals = [s for s in order if s not in dropped] + [r for r in repeats if r not in dropped]
    acc = feed(arrivals)
    seen = {s for s in arrivals}
    if not seen:
        return
    assert acc.duplicates == len(arrivals) - len(seen)
    assert acc.lost == len([d for d in dropped if min(seen) <= d <= max(seen)])
    assert acc.received == len(arrivals)
