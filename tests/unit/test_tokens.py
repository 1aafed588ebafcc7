"""User templates: every token kind, named values, timestamps and {seq} patched at sending, errors."""

import calendar
import ipaddress
import re
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from loggend.config import load
from loggend.engine import catalog
from loggend.engine.render import build_pool
from loggend.engine.spec import MessageSpec
from loggend.engine.tokens import TokenError, UserTemplate, parse_message
from loggend.errors import UsageError
from loggend.sink.accounting import parse

T0 = calendar.timegm((2026, 11, 29, 8, 49, 12, 0, 0, 0))


def pool(message: str, fmt: str = "rfc3164", size: int = 10000, seed: int = 1, at: float = T0, **kw):
    t = UserTemplate("app", parse_message(message), program="myapp", **kw)
    spec = MessageSpec(pool_size=size, format=fmt, templates=(t,), catalogue=False, timezone="utc", seed=seed)
    return build_pool(spec, 0, "w0", at)


def texts(p) -> list[str]:
    """The message text of every pool message in sequence order (RFC 3164: after 'myapp[PID]: ')."""
    out = []
    for i in range(p.size):
        m = p.message(i).decode()
        out.append(m.split(": ", 1)[1].rsplit(" stream=", 1)[0])
    return out


def values(p, key: str) -> list[str]:
    return [re.search(rf"\b{key}=(\S+)", t)[1] for t in texts(p)]


def test_int_and_float_ranges_and_precision():
    ints = [int(v) for v in values(pool("n={int:10-20}"), "n")]
    assert min(ints) == 10 and max(ints) == 20
    floats = values(pool("f={float:0.5-1.5/3}"), "f")
    assert all(re.fullmatch(r"\d\.\d{3}", f) and 0.5 <= float(f) <= 1.5 for f in floats)


def test_weighted_choices_match_their_weights_within_a_few_percent():
    counts = Counter(values(pool("c={choice:a*6|b*3|c}"), "c"))
    total = sum(counts.values())
    for value, share in (("a", 0.6), ("b", 0.3), ("c", 0.1)):
        assert abs(counts[value] / total - share) < 0.02, counts


def test_choices_from_a_file(tmp_path):
    f = tmp_path / "names.txt"
    f.write_text("alpha\nbeta\n\ngamma\n")
    got = set(values(pool(f"c={{choice:@{f}}}", size=1000), "c"))
    assert got == {"alpha", "beta", "gamma"}


def test_addresses_ids_and_words():
    p = pool("a={ipv4:10.20.0.0/16} b={ipv6:2001:db8:1::/48} m={mac} u={uuid} h={hex:16} w={word} "
             "x={word:one|two} who={user} on={host}", size=1000)
    net4, net6 = ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("2001:db8:1::/48")
    for i, t in enumerate(texts(p)):
        kv = dict(part.split("=", 1) for part in t.split())
        assert ipaddress.ip_address(kv["a"]) in net4 and ipaddress.ip_address(kv["b"]) in net6
        assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", kv["m"])
        assert uuid.UUID(kv["u"]).version == 4 and re.fullmatch(r"[0-9a-f]{16}", kv["h"])
        assert kv["w"] in catalog.WORDS and kv["x"] in ("one", "two") and kv["who"] in catalog.USERS
        host = p.message(i).decode().split()[3]
        assert kv["on"] == host


def test_an_address_is_a_host_of_its_network():
    """{ipv4:NET} never gives the network or broadcast address above /31 (ipaddress's hosts()); a /24
    of 10000 draws would give each about 39 times; a /31 and a /32 keep every address they have."""
    p = pool("a={ipv4:203.0.113.0/24} p={ipv4:198.51.100.6/31} s={ipv4:192.0.2.9/32} b={ipv6:2001:db8::/126}",
             size=10000)
    hosts = {"a": set(ipaddress.ip_network("203.0.113.0/24").hosts()),
             "p": set(ipaddress.ip_network("198.51.100.6/31").hosts()),
             "s": set(ipaddress.ip_network("192.0.2.9/32").hosts()),
             "b": set(ipaddress.ip_network("2001:db8::/126").hosts())}
    seen: dict[str, set[object]] = {k: set() for k in hosts}
    for t in texts(p):
        kv = dict(part.split("=", 1) for part in t.split() if part[:2] in ("a=", "p=", "s=", "b="))
        for key, value in kv.items():
            seen[key].add(ipaddress.ip_address(value))
    assert seen == hosts


def test_a_named_value_repeats_within_its_message_and_becomes_a_field():
    p = pool("session={sid=hex:16} again={sid} {{literal}}", fmt="cef", size=1000)
    for i in range(p.size):
        m = p.message(i).decode()
        sid = re.search(r"session\\=([0-9a-f]{16}) again\\=([0-9a-f]{16}) \{literal\}", m)
        assert sid and sid[1] == sid[2] and f"sid={sid[1]} " in m               # a CEF extension field too


def test_timestamps_are_current_at_sending_and_seq_is_the_streams_number():
    p = pool("t={timestamp:%Y/%m/%d %H:%M:%S} e={timestamp:epoch} ms={timestamp:epoch_ms} iso={timestamp} n={seq}",
             size=1000)
    later = T0 + 86400 * 40 + 3
    p.set_time(later)
    p.set_cycle(5)
    expect = (time.strftime("t=%Y/%m/%d %H:%M:%S", time.gmtime(later)) + f" e={int(later)} ms={int(later)}000 "
              + time.strftime("iso=%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(later)))
    for i in range(0, p.size, 97):
        text = texts(p)[i]
        assert text.startswith(expect + " n="), text
        assert int(text.split("n=")[1]) == parse(p.message(i))[1] == 5000 + i


def test_the_same_seed_gives_the_same_stream_and_another_seed_another():
    a, b, c = (pool("x={int:1-1000000} u={uuid}", size=1000, seed=s).buf for s in (7, 7, 8))
    assert a == b and a != c


@pytest.mark.parametrize(("message", "column", "why"), [
    ("x={int:9-1}", 3, "9 is above 1"),
    ("x={nope}", 3, "unknown kind or name"),
    ("x={int:1-2", 3, "not closed"),
    ("x}", 2, "lone closing brace"),
    ("{a=hex:4} {a=hex:4}", 11, "already named"),
    ("t={timestamp:%B %d}", 3, "changes width"),
    ("t={timestamp:%Y-%m-%dT%Q}", 3, "'%Q' is not a strftime directive"),
    ("t={timestamp:%H:%M:%S.%f}", 3, "'%f' is not a strftime directive"),
    ("t={timestamp:100%}", 3, "write %% for a literal %"),
    ("c={choice:a*0}", 3, "must be above 0"),
    ("m={mac:3}", 3, "takes no arguments"),
    ("i={ipv4:10.0.0.0/99}", 3, "10.0.0.0/99"),
    ("one\ntwo {int}", 4, "one message is one line"),
    ("x={seq=int:1-5}", 3, "formats write themselves"),
    ("x={Stream=word}", 3, "formats write themselves"),
    ("x={message=word}", 3, "formats write themselves"),
])
def test_bad_tokens_name_their_column(message, column, why):
    with pytest.raises(TokenError) as err:
        parse_message(message)
    assert err.value.column == column and why in str(err.value)


def test_a_bad_template_file_is_one_line_with_file_template_line_and_column(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text('- name: ok\n  message: "fine {int:1-2}"\n- name: broken\n  message: "a={int:1-2} b={float:x}"\n')
    with pytest.raises(UsageError) as err:
        load("/dev/null", {"templates": ("--templates", str(f))}, env={})
    assert str(err.value) == (f"{f}: template 'broken': line 4, column 27: {{float:x}}: expected LO-HI, e.g. 0-1")
    f.write_text("- name: x\n  message: m\n  colour: red\n")
    with pytest.raises(UsageError, match=r"template 1 \(line 1\): unknown key 'colour'"):
        load("/dev/null", {"templates": ("--templates", str(f))}, env={})


def test_inline_templates_in_the_config_and_catalogue_off(tmp_path):
    cfg = tmp_path / "loggen.yaml"
    (tmp_path / "users.txt").write_text("zed\n")
    cfg.write_text("catalogue: false\ntemplates:\n  - name: a\n    message: 'u={choice:@users.txt} n={seq}'\n"
                   "    facility: local3\n    severity: 3\n")
    c = load(str(cfg), env={})
    (t,) = c.messages.templates
    assert (t.facility, t.severity, t.program) == (19, 3, "a") and not c.messages.catalogue
    assert "1 template only" in c.describe()
    cfg.write_text("catalogue: false\n")
    with pytest.raises(UsageError, match="catalogue: False is not allowed; expected on unless templates"):
        load(str(cfg), env={})
    cfg.write_text("messages:\n  sequence: false\ntemplates:\n  - name: a\n    message: 'n={seq}'\n")
    with pytest.raises(UsageError, match=r"while a template uses \{seq\}"):
        load(str(cfg), env={})


def test_the_readmes_example_file_loads_and_mixes_by_weight():
    examples = Path(__file__).resolve().parents[2] / "examples"
    c = load("/dev/null", {"templates": ("--templates", str(examples / "shop-templates.yaml")),
                           "catalogue": ("--catalogue", "off")}, env={})
    names = [t.name for t in c.messages.templates]
    assert names == ["login", "order", "payment-failed", "api-call"]
    p = build_pool(replace(c.messages, pool_size=10_000, timezone="utc"), 0, "w0", T0)
    kinds = Counter(p.message(i).decode().split(": ", 1)[1].split(" ", 1)[0] for i in range(p.size))
    for kind, weight in (("login", 30), ("order", 10), ("payment", 2), ("api", 58)):
        assert abs(kinds[kind] / p.size - weight / 100) < 0.02, kinds
