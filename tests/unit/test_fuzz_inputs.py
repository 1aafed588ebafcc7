"""Property tests of everything that reads outside input, in process: the sink's stream framing and
accounting, the config file, template tokens, profile specs, the value parsers and replay lines.

The property is the same everywhere: outside input gives a value or the one-line error of bad input
(``UsageError``, or the module's own documented error), never another exception; and where the
answer does not depend on how the input was cut (a stream's bytes in any chunks), it does not.
``make test`` runs a few hundred examples of each (the ``ci`` profile, tests/conftest.py); ``make
fuzz`` runs thousands (``HYPOTHESIS_PROFILE=fuzz``)."""

from __future__ import annotations

import random

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loggend import config, parsers
from loggend.engine import replay, tokens
from loggend.errors import UsageError
from loggend.profiles import parse_profile
from loggend.sink.accounting import Accounting, parse_tail
from loggend.sink.streams import LF, OCTET, PENDING_BYTES, Connection

pytestmark = pytest.mark.fuzz

SCRATCH = bytearray(1 << 17)


# --- the sink: a stream's bytes in any chunks --------------------------------------------------------

def message(stream: str, number: int, body: str) -> bytes:
    return f"<13>Dec  7 00:00:00 host app: {body} stream={stream} seq={number:012d}".encode()


def feed(framing: str, data: bytes, cuts: list[int]) -> tuple[Accounting, Connection, bool]:
    """``data`` into a new connection's framing, cut at ``cuts``: what the sink's reader does with
    each recv() (Connection.take is the whole of it once the framing is known)."""
    acc = Accounting()
    conn = Connection(None, False)  # type: ignore[arg-type]   # take() never touches the socket
    conn.framing = framing
    at = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        piece = data[at:cut]
        if piece:
            SCRATCH[:len(piece)] = piece
            if not conn.take(acc, SCRATCH, len(piece)):
                return acc, conn, False
        at = cut
    return acc, conn, True


def figures(acc: Accounting) -> tuple[int, ...]:
    return (acc.received, acc.octets, acc.unsequenced, acc.empty, acc.gaps, acc.late, acc.duplicates, acc.stale,
            acc.outliers, len(acc.streams))


sent = st.lists(st.tuples(st.sampled_from(["w0", "w1", "w-2"]), st.integers(0, 40),
                          st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)),
                min_size=1, max_size=60)


@given(sent, st.lists(st.integers(0, 4000), max_size=30), st.sampled_from([LF, OCTET]))
def test_a_stream_is_counted_the_same_however_its_bytes_are_cut(messages, cuts, framing):
    """Messages with loss, duplicates and reordering (any numbers, any order), framed as a sender
    frames them: the figures are the same whether the bytes come whole or cut anywhere."""
    frames = [message(*m) for m in messages]
    data = b"".join(f + b"\n" if framing == LF else b"%d %s" % (len(f), f) for f in frames)
    whole, _, ok_whole = feed(framing, data, [])
    cut, conn, ok_cut = feed(framing, data, [c % (len(data) + 1) for c in cuts])
    assert ok_whole and ok_cut
    assert figures(cut) == figures(whole)
    assert whole.received == len(frames) and not conn.pending
    assert {name.decode() for name in whole.streams} == {m[0] for m in messages}


@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=20), st.sampled_from([LF, OCTET]))
@example(b"99999999999 " + b"x" * 50, [], OCTET)
@example(b"5 abc", [1, 2, 3], OCTET)
@example(b"0 0 0 ", [], OCTET)
@example(b"12 " + b"\n" * 12 + b"3 \xff\xfe\x00", [4], OCTET)
def test_any_bytes_are_counted_or_refused_never_a_crash(data, cuts, framing):
    acc, conn, ok = feed(framing, data, [c % (len(data) + 1) for c in cuts])
    assert acc.received >= 0 and len(conn.pending) <= PENDING_BYTES
    if not ok:
        assert conn.rejected                     # closed for a reason it names


@given(st.binary(max_size=400))
@example(b" stream=\xff seq=000000000001")
@example(b'x stream="a" seq="12345678901x"]')
def test_any_datagram_is_accounted(data):
    acc = Accounting()
    acc.add(data)
    tail = parse_tail(data)
    assert tail is None or (tail.number >= 0 and isinstance(tail.name, bytes))


# --- the config file -------------------------------------------------------------------------------

KEYS = ["target", "ports", "transport", "protocol", "framing", "format", "rate", "profile", "workers",
        "worker_processes", "cpus", "duration", "dashboard", "dashboard_interval", "dashboard_origins",
        "memory_limit", "hung_timeout", "local_sink", "sink_processes", "live_interval", "instance",
        "templates", "sources", "estate", "replay", "replay_speed", "replay_wrap", "control_socket",
        "tls_verify", "quiet", "optimize", "nonsense"]
MESSAGE_KEYS = ["seed", "hosts", "pri_mix", "timezone", "sequence", "max_length", "pool_size", "stream_id",
                "sd_enterprise"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["0", "1k", "auto", "10s", "514-553", "-1", "1e400",
                                                           "127.0.0.1:0", "none", "steps:1k-3k+1k/1s"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=8)
documents = st.fixed_dictionaries({}, optional={
    **{k: values for k in KEYS},
    "messages": st.one_of(values, st.dictionaries(st.sampled_from(MESSAGE_KEYS), values, max_size=4))})


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(documents)
def test_any_config_document_is_a_config_or_one_line(tmp_path, doc):
    path = tmp_path / "loggen.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        config.load(str(path), env={}, usable_cpus={0, 1})
    except UsageError as err:
        assert "\n" not in str(err) and str(err)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
@example("a: &a [*a]")
@example("workers: !!python/object:os.system ls")
@example("- 1\n- 2")
@example("workers: 1\nworkers: 2")
@example("\ufeffrate: 1k")
def test_any_config_text_is_a_config_or_one_line(tmp_path, text):
    path = tmp_path / "loggen.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        config.load(str(path), env={}, usable_cpus={0, 1})
    except UsageError as err:
        assert "\n" not in str(err) and str(err)


# --- template tokens, profiles, values ------------------------------------------------------------

token_text = st.text(st.sampled_from(list("{}:,-./%0123456789abcdefghijklmnopqrstuvwxyz|=@ \\[]'\"")), max_size=60)


@given(st.one_of(token_text, st.text(max_size=60)))
@example("{int:1-}")
@example("{choice:}")
@example("{ipv4:10.0.0.0/33}")
@example("{timestamp:%}")
@example("{{{{")
@example("{int:99999999999999999999999-1}")
def test_any_template_text_parses_or_says_why(text):
    try:
        parts = tokens.parse_message(text)
    except (tokens.TokenError, UsageError):
        return
    text, _ = tokens.render_parts(parts, random.Random(1), "host", {})
    assert isinstance(text, str)


profile_text = st.text(st.sampled_from(list("rampstepburstsinefconstant:-+/,0123456789.kmsh ")), max_size=40)


@given(st.one_of(profile_text, st.text(max_size=40), st.lists(st.one_of(profile_text, values), max_size=3)))
@example("steps:1k-3k+0/1s")
@example("ramp:0-1e400/1s")
@example("burst:1k-2k/0s")
@example("sine:1k-1k/1s")
def test_any_profile_parses_or_says_why(value):
    try:
        profile = parse_profile("profile", value)
    except UsageError as err:
        assert "\n" not in str(err)
        return
    if profile is not None:
        assert profile.segments and all(s.seconds >= 0 for s in profile.segments)


@given(st.one_of(st.text(max_size=30), st.integers(-2**70, 2**70), st.floats(allow_nan=True)))
@example("1e400")
@example("nan")
@example("-0")
@example("1_000")
@example("１２")                                             # full-width digits
def test_any_value_parses_within_bounds_or_says_why(text):
    for parse in (lambda v: parsers.parse_duration("duration", v), lambda v: parsers.parse_rate("rate", v),
                  lambda v: parsers.parse_port("port", v), lambda v: parsers.parse_int("workers", v, 1, 256),
                  lambda v: parsers.split_target("target", str(v)), lambda v: parsers.parse_bool("quiet", v)):
        try:
            value = parse(text)
        except UsageError as err:
            assert "\n" not in str(err)
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            assert value == value and value >= 0 and value != float("inf")


# --- replay lines ----------------------------------------------------------------------------------

line_text = st.one_of(st.binary(max_size=200), st.sampled_from([
    b'127.0.0.1 - - [07/Dec/2026:00:00:00 +0100] "GET / HTTP/1.1" 200 1',
    b"2026-12-07T00:00:00.123456+01:00 host app: x", b"Dec  7 00:00:00 host app: x",
    b"<13>1 2026-12-07T00:00:00Z host app - - - x", b"[32/Dec/2026:99:99:99 +9999]",
    b"2026-02-30T25:61:61+99:99 x"]).flatmap(lambda b: st.binary(max_size=20).map(lambda tail: b + tail)))


@given(line_text, st.sampled_from(["none", "rfc3164", "rfc5424"]), st.booleans())
@example(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "none", True)      # deeper than Python's recursion
def test_any_replay_line_is_found_and_rendered_without_a_crash(line, wrap, sequence):
    found = replay.find_stamp(line)
    assert found is None or isinstance(found, replay.Found)
    out = replay.render_line(line, sequence, 32473, wrap)
    assert out is not None
