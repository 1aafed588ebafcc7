"""Per-stream accounting with crafted sequences: exact lost / late / duplicate counts."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loggend.sink.accounting import MAX_GAPS, OUTLIER_WINDOW, Accounting, parse
from loggend.sink.accounting import RESYNC_COUNT as OUTLIER_RESYNC
from tests.support.processes import msg


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


# --- hostile and unusual input: outliers, caps, foreign streams, bounded cost ------------------------

def test_a_forged_huge_number_is_an_outlier_not_a_gap():
    """One `stream=w0 seq=999999999999` in a running stream once made the loss 999,999,799,999."""
    acc = feed(list(range(200_000, 200_100)) + [999_999_999_999] + list(range(200_100, 200_200)), "w0")
    st = acc.streams[b"w0"]
    assert (acc.received, acc.lost, acc.gaps, acc.duplicates, acc.outliers) == (201, 0, 0, 0, 1)
    assert st.expected == 200_200 and st.outliers == 1


def test_a_forged_first_message_gives_way_to_the_real_stream():
    acc = feed([999_999_999_999] + list(range(0, OUTLIER_RESYNC + 10)))
    st = acc.streams[b"a"]
    assert (st.start, st.expected) == (0, OUTLIER_RESYNC + 10)
    assert (acc.lost, acc.outliers, acc.duplicates) == (0, 1, 0)


def test_a_real_jump_beyond_the_window_is_a_gap_once_confirmed():
    jump = OUTLIER_WINDOW * 3
    acc = feed(list(range(100)) + list(range(100 + jump, 100 + jump + OUTLIER_RESYNC)))
    assert acc.outliers == 0 and acc.gaps == jump and acc.lost == jump
    held = feed(list(range(100)) + list(range(100 + jump, 100 + jump + OUTLIER_RESYNC - 1)))
    assert held.outliers == OUTLIER_RESYNC - 1 and held.gaps == 0          # not yet: held aside


def test_gap_ranges_are_capped_and_what_arrives_below_them_is_stale():
    acc = Accounting(max_gaps=4)
    seqs = [n for n in range(0, 40) if n % 4 != 1]                         # 10 gaps: 1, 5, 9, ...
    for s in seqs:
        acc.add(msg("a", s))
    st = acc.streams[b"a"]
    assert acc.gaps == 10 and acc.gaps_forgotten == 6 and len(st.starts) == 4
    acc.add(msg("a", 5))                      # in a forgotten range: late or duplicate, nobody can tell
    acc.add(msg("a", 4))                      # below the forgotten ranges: the same
    acc.add(msg("a", 37))                     # in a range still kept: late
    assert (acc.stale, acc.late, acc.duplicates) == (2, 1, 0)
    assert acc.lost == 9


def test_streams_beyond_the_cap_are_counted_in_overflow_only():
    acc = Accounting(max_streams=3)
    for i in range(5):
        for s in range(10):
            acc.add(msg(f"s{i}", s))
    assert len(acc.streams) == 3 and acc.overflow == 20 and acc.received == 50


def test_streams_the_run_did_not_announce_are_counted_apart():
    acc = Accounting(announced=lambda name: name in (b"w0", b"w1"))
    for s in (0, 1, 2, 5):
        acc.add(msg("w1", s))
        acc.add(msg("evil1", s * 1000))
    assert (acc.foreign, acc.foreign_streams, acc.counted_streams) == (4, 1, 1)
    assert (acc.gaps, acc.lost) == (2, 2)                  # w1's 3 and 4, nothing of evil1's
    assert acc.streams[b"evil1"].gaps == 0 and not acc.streams[b"evil1"].counted


def _duplicate_cost(gaps: int) -> float:
    acc = Accounting()
    acc.add_run(b"a", 0, 1)
    for g in range(gaps):                     # numbers 1, 3, 5, ... missing
        acc.add_run(b"a", 2 * g + 2, 1)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(2000):
            acc.add_run(b"a", 2 * gaps, 1)    # a duplicate of a number above every gap
            acc.add_run(b"a", 4, 1)           # and one below them
        best = min(best, time.perf_counter() - start)
    return best


def test_the_cost_of_a_duplicate_does_not_grow_with_the_gaps():
    """4,096 open gaps once made each duplicate cost about 1.2 ms (a scan of every gap)."""
    few, many = _duplicate_cost(2), _duplicate_cost(MAX_GAPS)
    assert many < few * 10, (few, many)       # a scan would be ~1000 times dearer; bisection is ~1.5 times


def test_what_the_sink_totals_cannot_vouch_for_makes_the_loss_unknown():
    from loggend.report.totals import SinkTotals
    clean = SinkTotals(received=100, gaps=5, kernel_drops=5)
    assert clean.unknown() == [] and SinkTotals(received=100, gaps=5, kernel_drops=9).unknown() == []
    tail = SinkTotals(received=100, gaps=5, kernel_drops=9, standalone=True).unknown()   # 4 lost after the last seen
    assert len(tail) == 1 and "at least 9 lost" in tail[0]
    bound = SinkTotals(received=100, gaps=7, gaps_forgotten=3, stale=40).unknown()
    assert len(bound) == 1 and "only an upper bound" in bound[0]
    assert SinkTotals(received=100, gaps=7, gaps_forgotten=3).unknown() == []      # forgotten, nothing below them


def _line(n: int, stream: bytes = b"w0") -> bytes:
    return b"<13>Dec  7 00:00:00 host app: a stream=%s seq=%012d" % (stream, n)


@pytest.mark.parametrize("numbers, gaps, duplicates, late", [
    ([0, 0, 2], 1, 1, 0),                        # a duplicate and a loss: first and last are 2 apart all the same
    ([5, 7, 6, 8], 1, 0, 1),                     # reordered inside the chunk
    ([9, 10, 10, 12], 1, 1, 0),                  # across a change of the tens digit
    ([998, 1000, 999, 1001], 1, 0, 1),
    (list(range(95, 105)), 0, 0, 0),             # a true run
])
def test_a_chunk_is_taken_as_one_run_only_when_its_numbers_follow_one_another(numbers, gaps, duplicates, late):
    """The receivers' fast path (a GRO buffer, a TCP read as one run) must see a duplicate and a loss
    in the same chunk, or a reordering, as the message-by-message path does."""
    from loggend.sink.receiver import account
    from loggend.sink.streams import account_lines, account_octets
    messages = [_line(n) for n in numbers]
    lines, octets, gro = Accounting(), Accounting(), Accounting()
    account_lines(lines, b"".join(m + b"\n" for m in messages))
    account_octets(octets, b"".join(b"%d %s" % (len(m), m) for m in messages))
    data = b"".join(messages)
    account(gro, memoryview(data), 0, len(data), len(messages[0]))
    for acc in (lines, octets, gro):
        assert (acc.received, acc.gaps, acc.duplicates, acc.late) == (len(numbers), gaps, duplicates, late)
