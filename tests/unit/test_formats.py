"""Every wire format: structure, escaping, stream and sequence everywhere, patched timestamps, framing."""

import calendar
import json
import re

import pytest

from loggend.engine.formats import FORMATS, MIN_LENGTHS, cef_header, cef_value, leef_value
from loggend.engine.render import build_pool
from loggend.engine.spec import MessageSpec
from loggend.sink.accounting import parse, parse_tail

T0 = calendar.timegm((2026, 11, 29, 8, 49, 12, 0, 0, 0))
RFC5424 = re.compile(
    rb'<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)) (?P<host>[!-~]{1,255}) '
    rb'(?P<app>[!-~]{1,48}) (?P<procid>[!-~]{1,128}) (?P<msgid>[!-~]{1,32}) '
    rb'(?P<sd>-|\[loggen@(?P<pen>\d+) stream="(?P<stream>[^"]+)" seq="(?P<seq>\d{12})"\]) (?P<msg>.*)')
HEADER3164 = re.compile(rb"<(\d{1,3})>(\w{3} [ 1-3]\d \d\d:\d\d:\d\d) ([!-~]+) ([A-Za-z0-9_./-]+)(?:\[(\d+)\])?: (.*)")
CEF = re.compile(r"CEF:0\|loggen\|(?P<product>(?:[^|\\]|\\.)*)\|(?P<version>[^|]*)\|(?P<sig>(?:[^|\\]|\\.)*)\|"
                 r"(?P<name>(?:[^|\\]|\\.)*)\|(?P<sev>\d+)\|(?P<ext>.*)")
LEEF = re.compile(r"LEEF:2\.0\|loggen\|(?P<product>[^|]*)\|(?P<version>[^|]*)\|(?P<event>[^|]*)\|\^\|(?P<attrs>.*)")


def pool(fmt: str, framing: str = "", seq: bool = True, tz: str = "utc", at: float = T0, size: int = 1000):
    return build_pool(MessageSpec(pool_size=size, format=fmt, framing=framing, sequence=seq, timezone=tz),
                      3, "w3", at)


def messages(p) -> list[bytes]:
    return [p.message(i) for i in range(p.size)]


def cef_extension(ext: str) -> dict[str, str]:
    """Split a CEF extension at the `` key=`` boundaries (values may hold spaces), unescaping."""
    parts = re.split(r" (?=[A-Za-z0-9_]+=)", ext)
    out = {}
    for part in parts:
        key, _, value = part.partition("=")
        out[key] = re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m[1], m[1]), value)
    return out


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_message_carries_its_stream_and_the_pool_order_sequence(fmt):
    p = pool(fmt)
    for i, m in enumerate(messages(p)):
        assert parse(m) == (b"w3", i), m
    p.set_cycle(42)
    assert [parse(m) for m in messages(p)][:3] == [(b"w3", 42_000), (b"w3", 42_001), (b"w3", 42_002)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_without_sequence_nothing_of_the_stream_is_sent(fmt):
    for m in messages(pool(fmt, seq=False, size=1000)):
        assert parse(m) is None
        assert not any(mark in m for mark in (b"stream=w3", b'stream="w3"', b"cs1=w3", b'"stream":"w3"', b"seq="))


def test_rfc5424_has_every_header_field_and_the_sd_element():
    for m in messages(pool("rfc5424")):
        match = RFC5424.fullmatch(m)
        assert match, m
        assert match["ts"] == b"2026-11-29T08:49:12Z" and match["pen"] == b"32473"
        assert match["msgid"].rsplit(b"-", 1)[1].isdigit()                  # source-N: the kind of event
        assert match["procid"] == b"-" or match["procid"].isdigit()


def test_cef_header_extension_and_severity():
    for m in messages(pool("cef")):
        header = HEADER3164.fullmatch(m)
        assert header, m
        body = CEF.fullmatch(header[6].decode())
        assert body, m
        ext = cef_extension(body["ext"])
        assert ext["cs1Label"] == "stream" and ext["cs1"] == "w3" and ext["cn1Label"] == "seq"
        assert ext["rt"] == "Nov 29 2026 08:49:12" and len(ext["cn1"]) == 12
        assert 0 <= int(body["sev"]) <= 10 and ext["msg"]


def test_leef_attributes_and_device_time():
    for m in messages(pool("leef")):
        header = HEADER3164.fullmatch(m)
        body = LEEF.fullmatch(header[6].decode())
        assert body, m
        attrs = dict(a.split("=", 1) for a in re.split(r"(?<!\\)\^", body["attrs"]))
        assert attrs["stream"] == "w3" and len(attrs["seq"]) == 12
        assert attrs["devTime"] == "Nov 29 2026 08:49:12" and attrs["devTimeFormat"] == "MMM dd yyyy HH:mm:ss"


def test_json_is_one_ecs_style_object():
    for m in messages(pool("json")):
        header = HEADER3164.fullmatch(m)
        doc = json.loads(header[6])
        assert doc["stream"] == "w3" and len(doc["seq"]) == 12 and doc["@timestamp"] == "2026-11-29T08:49:12Z"
        assert doc["host"]["name"] == header[3].decode() and doc["log"]["syslog"]["priority"] == int(header[1])
        assert doc["message"] and doc["event"]["dataset"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("tz", ["utc", "local"])
def test_patched_timestamps_equal_a_fresh_rendering(fmt, tz):
    """A pool rendered an hour ago and patched to now is byte for byte the pool rendered now."""
    later = T0 + 3600 * 24 * 33 + 7                       # another month, day, hour and second
    old = pool(fmt, tz=tz, at=T0)
    old.set_time(later)
    assert old.buf == pool(fmt, tz=tz, at=later).buf


@pytest.mark.parametrize("fmt", FORMATS)
def test_octet_counting_and_lf_framing(fmt):
    for m in messages(pool(fmt, framing="octet-counting")):
        length, _, body = m.partition(b" ")
        assert int(length) == len(body) and parse(body)
    for m in messages(pool(fmt, framing="lf")):
        assert m.endswith(b"\n") and m.count(b"\n") == 1 and parse(m[:-1])


@pytest.mark.parametrize("fmt", FORMATS)
def test_messages_fit_the_length_limit_with_any_stream_id(fmt):
    limit = MIN_LENGTHS[fmt]
    p = build_pool(MessageSpec(pool_size=1000, format=fmt, max_length=limit), 0, "x" * 60, T0)
    assert max(len(m) for m in messages(p)) <= limit
    assert all(parse(m) for m in messages(p))
    if fmt == "json":
        assert all(json.loads(HEADER3164.fullmatch(m)[6]) for m in messages(p))     # cut, still valid JSON


def test_escaping_per_spec():
    assert cef_header("a|b\\c") == "a\\|b\\\\c"
    assert cef_value("k=v\\x\nnext") == "k\\=v\\\\x\\nnext"
    assert leef_value("a^b\\c\nd") == "a\\^b\\\\c d"


def test_the_receivers_fast_path_pattern_matches_the_next_message():
    for fmt in ("rfc3164", "cef", "leef", "json"):
        a, b = messages(pool(fmt))[:2]
        tail = parse_tail(a)
        assert tail.at_end and b.endswith(tail.next_pattern()), fmt
    a, b = messages(pool("rfc5424"))[:2]
    tail = parse_tail(a)
    assert not tail.at_end and tail.next_pattern() in b and b"]" in tail.next_pattern()   # mid-message
