"""Replay: timestamps recognised and rewritten, stream and sequence where receivers look, the file
streamed pass by pass, and its own timing."""

import calendar
import gzip
import json
import os
import re
import socket

import pytest

from loggend.config import load
from loggend.engine.render import build_pool
from loggend.engine.replay import ReplaySource, ReplaySpec, file_timing, find_stamp
from loggend.engine.spec import MessageSpec
from loggend.errors import UsageError
from loggend.sink.accounting import parse

NOW = calendar.timegm((2027, 3, 4, 5, 6, 7, 0, 0, 0))
LINES = [
    b'10.0.0.1 - - [29/Nov/2026:06:00:00 +0100] "GET / HTTP/1.1" 200 512 "-" "curl/8.5.0"',
    b"<34>Nov 29 06:00:02 web1 sshd[22]: Failed password for root from 1.2.3.4 port 22 ssh2",
    b"<165>1 2026-11-29T06:00:03.123-02:30 host1 app 77 ID47 - an RFC 5424 line",
    b'<165>1 2026-11-29T06:00:03Z host1 app 77 ID47 [ex@1 a="b"] with SD',
    b'{"ts": 1795932004.25, "msg": "a json line"}',
    b"2026-11-29 06:00:05 iso with a space and no zone",
    b"no timestamp in this one",
]
EXPECTED = [   # each line as sent at NOW (UTC), sequence numbers aside
    b'10.0.0.1 - - [04/Mar/2027:06:06:07 +0100] "GET / HTTP/1.1" 200 512 "-" "curl/8.5.0"',
    b"<34>Mar  4 05:06:07 web1 sshd[22]: Failed password for root from 1.2.3.4 port 22 ssh2",
    b"<165>1 2027-03-04T02:36:07.123-02:30 host1 app 77 ID47 - an RFC 5424 line",
    b'<165>1 2027-03-04T05:06:07Z host1 app 77 ID47 [ex@1 a="b"] with SD',
    b'{"ts": %d.25, "msg": "a json line"}' % NOW,
    b"2027-03-04 05:06:07 iso with a space and no zone",
    b"no timestamp in this one",
]


def write(tmp_path, lines, name="capture.log", gz=False):
    path = tmp_path / name
    data = b"\n".join(lines) + b"\n"
    path.write_bytes(gzip.compress(data) if gz else data)
    return str(path)


def replay_pool(path, sequence=True, size=1000, worker=0, workers=1, at=NOW):
    spec = MessageSpec(pool_size=size, timezone="utc", sequence=sequence,
                       replay=ReplaySpec(path, workers))
    return build_pool(spec, worker, f"w{worker}", at)


def sent(pool):
    return [pool.message(i) for i in range(pool.size)]


def test_each_timestamp_style_is_found():
    found = [find_stamp(line) for line in LINES]
    assert all(found[:6]) and found[6] is None
    assert [f.at for f in found[:6]] == [14, 4, 7, 7, 7, 0]


def test_byte_exact_replay_rewrites_only_the_timestamps(tmp_path):
    p = replay_pool(write(tmp_path, LINES), sequence=False, at=NOW - 1000)
    p.set_time(NOW)                                   # patched at sending like any stamp
    assert set(sent(p)) == set(EXPECTED)
    assert p.replay.unstamped == 1000 // len(LINES) + (1 if 1000 % len(LINES) > 6 else 0)


def test_stream_and_sequence_go_where_receivers_look(tmp_path):
    p = replay_pool(write(tmp_path, LINES))
    by_start = {}
    for m in sent(p):
        name, seq = parse(m)
        assert name == b"w0"
        by_start.setdefault(re.sub(rb"\d{12}", b"N", m), m)
    rfc5424 = [m for m in by_start.values() if m.startswith(b"<165>1")]
    assert all(b'[loggen@32473 stream="w0" seq="' in m for m in rfc5424)
    assert any(b'"][ex@1 a="b"] with SD' in m for m in rfc5424)                 # before its own SD
    assert any(b'"] an RFC 5424 line' in m for m in rfc5424)                     # in place of "-"
    doc = json.loads(next(m for m in by_start.values() if m.startswith(b"{")))
    assert doc["msg"] == "a json line" and doc["stream"] == "w0" and len(doc["seq"]) == 12
    assert any(m.startswith(b"no timestamp in this one stream=w0 seq=") for m in by_start.values())
    assert sorted(parse(m)[1] for m in sent(p)) == list(range(1000))


def test_a_gzip_file_larger_than_the_pool_is_streamed_pass_by_pass_and_loops(tmp_path):
    lines = [b"<13>Nov 29 06:00:00 h app: line %05d" % i for i in range(2500)]
    p = replay_pool(write(tmp_path, lines, gz=True, name="big.log.gz"), size=1000)
    got = []
    for index in range(4):                            # 4,000 lines: the file and then its start again
        assert p.cycle == index and p.size == 1000
        got += [m.split(b" stream=")[0][-5:] for m in sent(p)]
        assert sorted(parse(m)[1] for m in sent(p)) == list(range(index * 1000, (index + 1) * 1000))
        p = p.next_pool()
    assert sorted(got) == sorted([b"%05d" % i for i in range(2500)] + [b"%05d" % i for i in range(1500)])


def test_workers_share_the_lines_and_a_restart_finds_its_pass(tmp_path):
    lines = [b"line %02d" % i for i in range(40)]
    path = write(tmp_path, lines)
    source = ReplaySource(ReplaySpec(path, workers=4), worker=1, size=5)
    assert source.read(0) == [b"line 01", b"line 05", b"line 09", b"line 13", b"line 17"]
    assert source.read(1)[0] == b"line 21"
    assert source.read(2)[0] == b"line 01"                           # its 10 lines, looping: pass 2 starts over
    assert ReplaySource(ReplaySpec(path, workers=4), 1, 5).read(1)[0] == b"line 21"
    few = ReplaySource(ReplaySpec(write(tmp_path, lines[:2], "few.log"), workers=4), worker=3, size=3)
    assert few.read(0) == [b"line 00", b"line 01", b"line 00"]       # fewer lines than workers: all of them


def test_the_files_own_timing_at_a_speed(tmp_path):
    lines = [b"[29/Nov/2026:06:00:%02d +0000] x" % (i // 10) for i in range(30)]      # 10 a second for 3 s
    lines += [b"[29/Nov/2026:06:00:07 +0000] burst"] * 50
    assert file_timing(write(tmp_path, lines), 10.0) == [(100.0, 0.30000000000000004), (0.0, 0.4), (500.0, 0.1)]


def test_replay_in_the_config(tmp_path):
    path = write(tmp_path, LINES)
    c = load("/dev/null", {"replay": ("--replay", path), "replay_speed": ("--speed", "10x")}, env={})
    assert c.messages.replay == ReplaySpec(path, 40, 10.0, wrap="rfc3164", host=socket.gethostname().split(".")[0],
                                           tag="capture")
    assert c.duration == pytest.approx(sum(seconds for _, seconds in c.replay_timing))   # the file's span / 10
    assert "the file's own timing x10" in c.describe()
    for bad, why in ((("--replay", str(tmp_path / "nope")), "no such file"),
                     (("--speed", "fast"), "how many times faster")):
        overrides = {"replay": ("--replay", path), "replay_speed": ("--speed", "0")}
        overrides["replay" if bad[0] == "--replay" else "replay_speed"] = bad
        with pytest.raises(UsageError, match=why):
            load("/dev/null", overrides, env={})
    with pytest.raises(UsageError, match="without templates or catalogue"):
        load("/dev/null", {"replay": ("--replay", path), "catalogue": ("--catalogue", "off")}, env={})
    for key, flag, value in (("rate", "--rate", "5"), ("profile", "--profile", "ramp:1k-2k/10s")):
        with pytest.raises(UsageError, match=f"{flag}.*not set with replay_speed"):
            load("/dev/null", {"replay": ("--replay", path), "replay_speed": ("--speed", "2"), key: (flag, value)},
                 env={})
    profile = c.profile()                               # the file's timing as a rate profile, then nothing
    assert profile.rate_at(0.0) == pytest.approx(c.replay_timing[0][0])
    assert profile.rate_at(c.duration + 1.0) == 0.0
    assert profile.events(c.duration) == pytest.approx(len(LINES), abs=1)


def test_lines_that_fit_in_one_pass_are_sent_again_without_rereading(tmp_path):
    exact = replay_pool(write(tmp_path, [b"line %04d" % i for i in range(1000)], "exact.log"))
    small = replay_pool(write(tmp_path, LINES))
    big = replay_pool(write(tmp_path, [b"line %04d" % i for i in range(1001)], "big.log"))
    assert exact.next_pool() is None and small.next_pool() is None and big.next_pool() is not None
    assert [p.replay.source.share_lines for p in (exact, small)] == [1000, len(LINES)]   # what the worker logs
    before = sent(small)
    assert small.for_pass(7) is small and small.cycle == 7
    assert [parse(m)[1] - 7000 for m in sent(small)] == [parse(m)[1] for m in before]


def test_a_file_with_nothing_to_send_is_refused_before_the_run(tmp_path):
    for name, data in (("empty.log", b""), ("blank.log", b"\n\r\n\n"), ("long.log", b"x" * 70_000 + b"\n"),
                       ("broken.gz", b"\x1f\x8b" + bytes(range(40)))):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UsageError, match="--replay: .* expected a log file, plain or gzip"):
            load("/dev/null", {"replay": ("--replay", str(tmp_path / name))}, env={})


def test_a_file_that_goes_away_under_the_run_is_said_once_and_the_pass_in_hand_goes_on(tmp_path):
    path = write(tmp_path, [b"line %04d" % i for i in range(1001)], "going.log")
    pool = replay_pool(path)
    said: list[str] = []
    pool.replay.warn = said.append
    os.unlink(path)                                  # the next pass must reopen it at the end of the file
    assert pool.next_pool() is None and pool.replay.failed
    assert len(said) == 1 and "cannot read pass 1" in said[0] and "sending the pass in hand again" in said[0]
    assert pool.next_pool() is None and len(said) == 1     # not tried again, not said again
    assert pool.for_pass(3) is pool and pool.cycle == 3


NO_TIME = [   # timestamp-like text that is no time at all: the line goes out as it is, unstamped
    b"0000-00-00 00:00:00 a zeroed stamp",
    b"2026-13-01T10:00:00Z month 13",
    b"2026-02-30 10:00:00 the 30th of February",
    b"2026-11-29T24:00:00+01:00 hour 24",
    b"2026-11-29T06:00:00+99:00 an offset of 99 hours",
    b'10.0.0.1 - - [00/Nov/2026:06:00:00 +0000] "GET / HTTP/1.1" 200 1',
    b"<34>Nov 31 06:00:02 web1 sshd[22]: the 31st of November",
    b"0000-00-00 00:00:00 first, then a real one: 2026-11-29 06:00:05",
]


def test_a_timestamp_that_is_no_time_leaves_the_line_unchanged_and_unstamped(tmp_path):
    assert [find_stamp(line) for line in NO_TIME] == [None] * len(NO_TIME)
    assert find_stamp(b"<34>Feb 29 06:00:02 web1 a leap day") is not None     # RFC 3164 carries no year
    pool = replay_pool(write(tmp_path, [*NO_TIME, LINES[1]]), sequence=False, size=len(NO_TIME) + 1)
    assert set(NO_TIME) < set(sent(pool)) and LINES[1] not in sent(pool)     # that one is stamped
    assert pool.replay.unstamped == len(NO_TIME)
    assert file_timing(write(tmp_path, [*NO_TIME, *LINES], "timed.log"), 1.0)


def test_an_over_long_line_is_read_past_in_pieces_and_a_small_share_is_not_read_again(tmp_path):
    from loggend.engine import replay
    huge = b"x" * (replay.SKIP_CHUNK * 8)
    path = write(tmp_path, [LINES[1], huge, LINES[5]])
    assert [len(line) for line in replay.open_lines(path)] == [len(LINES[1]), replay.MAX_LINE + 1, len(LINES[5])]
    opened = []
    source = ReplaySource(ReplaySpec(path), 0, 1000, opener=lambda p: opened.append(p) or replay.open_lines(p))
    assert len(source.read(0)) == 1000
    assert len(opened) == 1 and source.too_long == 1 and source.fits
