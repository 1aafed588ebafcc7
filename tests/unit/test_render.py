import calendar
import random
import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from loggend.engine import catalog
from loggend.engine.formats import MONTHS, SEQ_DIGITS
from loggend.engine.render import (
    GSO_MAX_SEGMENTS,
    MIN_FRAME,
    UDP_MAX_PAYLOAD,
    Pool,
    build_pool,
    frame_cap,
    render_messages,
    timestamp_at,
)
from loggend.engine.schedule import Burst, Constant, Profile, Ramp
from loggend.engine.spec import MessageSpec

RFC3164 = re.compile(
    rb"<(?P<pri>\d{1,3})>"
    rb"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    rb"(?P<day>[ 1-3]\d) (?P<h>[01]\d|2[0-3]):(?P<m>[0-5]\d):(?P<s>[0-5]\d) "
    rb"(?P<host>[!-~]+) (?P<tag>[A-Za-z0-9_./-]{1,32})(?:\[(?P<pid>\d+)\])?: (?P<msg>[ -~]*)"
)
SEQ_RE = re.compile(rb" stream=(?P<stream>[A-Za-z0-9_.-]+) seq=(?P<seq>\d{12})$")
CLF_STAMP = re.compile(rb"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]")
NOW = calendar.timegm((2026, 11, 8, 4, 5, 6, 0, 0, 0))       # b"Nov  8 04:05:06" in UTC
PRIS = st.tuples(st.integers(0, 191), st.floats(0.1, 10))


def spec(**kw) -> MessageSpec:
    kw.setdefault("pool_size", 1000)
    kw.setdefault("timezone", "utc")
    return MessageSpec(**kw)


def rendered(s: MessageSpec, worker: int, stream: str) -> list[bytes]:
    return [m.data for m in render_messages(s, worker, stream, NOW)]


def pool_messages(pool: Pool) -> list[bytes]:
    return [pool.message(i) for i in range(pool.size)]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), worker=st.integers(0, 63), hosts=st.integers(1, 5000),
       pri_mix=st.lists(PRIS, max_size=4), max_length=st.sampled_from([160, 200, 480, 1024]),
       sequence=st.booleans())
def test_every_message_is_rfc3164_and_fits(seed, worker, hosts, pri_mix, max_length, sequence):
    s = spec(seed=seed, hosts=hosts, pri_mix=tuple(pri_mix), max_length=max_length, sequence=sequence)
    allowed_pris = {p for p, _ in pri_mix}
    for m in rendered(s, worker, "w7"):
        assert len(m) <= max_length
        match = RFC3164.fullmatch(m)
        assert match, m
        pri = int(match["pri"])
        assert pri <= 191
        if pri_mix:
            assert pri in allowed_pris
        assert match["day"] == b" 8"
        tail = SEQ_RE.search(m)
        assert bool(tail) == sequence, m
        if tail:
            assert tail["stream"] == b"w7"


@settings(max_examples=50, deadline=None)
@given(moment=st.integers(0, 4102444799), utc=st.booleans())
def test_timestamps_use_english_months_and_space_padded_days(moment, utc):
    stamp = timestamp_at(moment, utc)
    tm = time.gmtime(moment) if utc else time.localtime(moment)
    assert len(stamp) == 15
    assert stamp[:3] == MONTHS[tm.tm_mon - 1].encode()
    assert stamp[4:6] == (b"%2d" % tm.tm_mday)
    assert stamp[7:] == b"%02d:%02d:%02d" % (tm.tm_hour, tm.tm_min, tm.tm_sec)


def test_single_digit_day_and_year_boundary():
    eve = calendar.timegm((2026, 12, 31, 23, 59, 59, 0, 0, 0))
    assert timestamp_at(eve, True) == b"Dec 31 23:59:59"
    assert timestamp_at(eve + 1, True) == b"Jan  1 00:00:00"
    assert timestamp_at(calendar.timegm((2027, 2, 9, 7, 3, 0, 0, 0, 0)), True) == b"Feb  9 07:03:00"


def test_stream_is_a_pure_function_of_seed_and_worker():
    a = rendered(spec(seed=5), 3, "w3")
    assert a == rendered(spec(seed=5), 3, "w3")
    assert a != rendered(spec(seed=5), 4, "w3")
    assert a != rendered(spec(seed=6), 3, "w3")
    p1 = build_pool(spec(seed=5), 3, "w3", 0.0)
    p2 = build_pool(spec(seed=5), 3, "w3", 0.0)
    assert p1.buf == p2.buf


def test_pids_are_stable_per_host_and_service():
    pids: dict[tuple[bytes, bytes], set[bytes]] = {}
    for m in rendered(spec(pool_size=10_000, hosts=50), 0, "w0"):
        match = RFC3164.fullmatch(m)
        assert match
        if match["pid"]:
            pids.setdefault((match["host"], match["tag"]), set()).add(match["pid"])
    assert pids and all(len(v) == 1 for v in pids.values())


def test_realistic_mix_uses_many_hosts_and_sources():
    msgs = rendered(spec(pool_size=10_000), 0, "w0")
    hosts = {RFC3164.fullmatch(m)["host"] for m in msgs}
    tags = {RFC3164.fullmatch(m)["tag"] for m in msgs}
    assert len(hosts) > 500
    assert len(tags) >= 10


def test_pool_frames_group_equal_lengths_within_gso_limits():
    pool = build_pool(spec(pool_size=10_000), 1, "w1", 0.0)
    assert sum(pool.counts) == pool.size == 10_000
    assert len(pool.buf) == sum(c * n for c, n in zip(pool.counts, pool.lengths))
    for start, count, length in zip(pool.starts, pool.counts, pool.lengths):
        assert 1 <= count <= GSO_MAX_SEGMENTS and count * length <= UDP_MAX_PAYLOAD
        frame = pool.buf[start:start + count * length]
        for j in range(count):
            assert frame[j * length:j * length + 1] == b"<"


def test_a_slow_stream_gets_small_frames_so_templates_interleave():
    assert Profile((Ramp(100, 40_000, 60), Burst(10, 2_000, 1, 10))).peak == 40_000
    assert Profile.constant(0).peak == float("inf")
    assert [frame_cap(r) for r in (5, 100, 1_600, 2_400, 1e9, float("inf"))] == [MIN_FRAME, MIN_FRAME, 16, 24,
                                                                                  GSO_MAX_SEGMENTS, GSO_MAX_SEGMENTS]
    assert frame_cap(0.0) == GSO_MAX_SEGMENTS             # nothing due: a run steered live (find-limit)
    assert frame_cap(Profile((Constant(5.0),)).peak) == MIN_FRAME
    fast, slow = (build_pool(spec(pool_size=10_000), 1, "w1", 0.0, cap=cap) for cap in (GSO_MAX_SEGMENTS, MIN_FRAME))
    assert max(slow.counts) == MIN_FRAME < max(fast.counts)
    assert sorted(slow.buf) == sorted(fast.buf)                  # the same messages, only framed differently
    assert slow.frames > 4 * fast.frames


def test_pool_sequence_numbers_follow_pool_order_and_pass():
    pool = build_pool(spec(pool_size=1000), 0, "w0", 0.0)
    seqs = [int(SEQ_RE.search(m)["seq"]) for m in pool_messages(pool)]
    assert seqs == list(range(1000))
    pool.set_cycle(1)
    assert [int(SEQ_RE.search(m)["seq"]) for m in pool_messages(pool)] == list(range(1000, 2000))
    pool.set_cycle(123456789)       # carries through every high digit
    assert int(SEQ_RE.search(pool.message(999))["seq"]) == 123456789 * 1000 + 999
    assert len(str(10 ** SEQ_DIGITS - 1)) == SEQ_DIGITS


def test_stamp_patch_rewrites_every_timestamp_and_nothing_else():
    pool = build_pool(spec(pool_size=1000, pri_mix=((4, 1), (38, 1), (134, 1))), 0, "w0", 0.0)
    before = pool_messages(pool)
    new = b"Jan  1 00:00:00"
    pool.set_time(calendar.timegm((2027, 1, 1, 0, 0, 0, 0, 0, 0)))
    after = pool_messages(pool)
    for old, cur in zip(before, after):
        off = old.index(b">") + 1
        assert cur[off:off + 15] == new
        assert cur[:off] == old[:off]
        body = CLF_STAMP.search(old)                    # nginx's [time_local], rewritten too
        if body:
            assert cur[body.start():body.end()] == b"[01/Jan/2027:00:00:00 +0000]"
            assert cur[off + 15:body.start()] == old[off + 15:body.start()] and cur[body.end():] == old[body.end():]
        else:
            assert cur[off + 15:] == old[off + 15:]


COMBINED = re.compile(rb'nginx\[\d+\]: (\S+) - (\S+) \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] '
                      rb'"(\S+) (\S+) (HTTP/[\d.]+)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"')


def test_catalogue_nginx_access_lines_are_combined_log_format_with_the_current_time():
    """A combined-log parser needs [time_local]: every nginx access line has it, now, and again
    after the pool's second changes; in local time with the zone's offset."""
    at = calendar.timegm((2026, 12, 6, 21, 4, 5, 0, 0, 0))
    pool = build_pool(spec(pool_size=10_000), 0, "w0", at)
    access = [i for i in range(pool.size) if b"nginx[" in pool.message(i) and b" HTTP/" in pool.message(i)]
    assert len(access) > 1000
    for when, text in ((at, b"06/Dec/2026:21:04:05 +0000"), (at + 3661, b"06/Dec/2026:22:05:06 +0000")):
        pool.set_time(when)
        for i in access:
            m = COMBINED.search(pool.message(i))
            assert m and m[3] == text, pool.message(i)
    local = build_pool(spec(pool_size=1000, timezone="local"), 0, "w0", at)
    stamps = {m[3] for m in (COMBINED.search(local.message(i)) for i in range(local.size)) if m}
    tm = time.localtime(at)
    offset = tm.tm_gmtoff // 60
    assert stamps == {time.strftime("%d/%b/%Y:%H:%M:%S ", tm).encode()
                      + b"%s%02d%02d" % (b"-" if offset < 0 else b"+", abs(offset) // 60, abs(offset) % 60)}


def test_pool_rejects_a_size_that_is_not_a_power_of_ten_with_sequences():
    msgs = render_messages(spec(pool_size=1000), 0, "w0", NOW)[:999]
    try:
        Pool(msgs, NOW, True, random.Random(0))
    except ValueError as err:
        assert "power of ten" in str(err)
    else:
        raise AssertionError("accepted 999 messages")


def test_catalog_weights_shape_the_stream():
    """Each tag's share of 10,000 messages is its templates' share of the catalogue's weight."""
    msgs = rendered(spec(pool_size=10_000), 0, "w0")
    total = sum(t.weight for t in catalog.TEMPLATES)
    expected: dict[bytes, float] = {}
    for t in catalog.TEMPLATES:
        expected[t.tag.encode()] = expected.get(t.tag.encode(), 0.0) + t.weight / total
    seen: dict[bytes, int] = {}
    for m in msgs:
        tag = RFC3164.fullmatch(m)["tag"]
        seen[tag] = seen.get(tag, 0) + 1
    assert set(seen) == set(expected)                  # every source appears, nothing else does
    for tag, share in expected.items():
        sigma = (share * (1 - share) / len(msgs)) ** 0.5
        assert abs(seen[tag] / len(msgs) - share) < 4 * sigma + 0.002, (tag, seen[tag], share)
