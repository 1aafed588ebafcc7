"""Real receivers parse what loggen sends over TCP and TLS, field by field, in every format.

rsyslog (``imtcp``, octet-counted and LF framing, RFC 5424 parser, mmjsonparse / mmnormalize for
the bodies) and syslog-ng (``syslog()`` driver over TLS with a throw-away CA) are started
privately by ``tests.support.receivers`` on loopback and write every message they parse as one
JSON record. Each record's raw message is parsed here by the formats' own grammar (the unit
tests' regular expressions), and the receiver's fields must equal it: PRI, timestamp, host,
app, procid, msgid, structured data, and the CEF, LEEF and JSON bodies. No message is lost.
"""

import datetime as dt
import json
import re
import tempfile
from pathlib import Path

import pytest

from loggend.engine.formats import FORMATS
from tests.support import receivers as R
from tests.support.processes import RUN, run_loggend
from tests.unit.test_formats import CEF, HEADER3164, LEEF, RFC5424, cef_extension

pytestmark = pytest.mark.slow
EVENTS = 2000                      # per format: 2,000 ev/s for 1 s, a modest rate
SPLIT_BY_KV = re.compile(r",\s|\s\S+\s*=")    # where syslog-ng's kv scanner splits a value


def needs(*reasons):
    for reason in reasons:
        if reason:
            pytest.skip(reason)


SENT: dict[str, int] = {}          # stream -> what its run sent (a CPU-starved 1 s run may end a little short)


def send(port: int, fmt: str, stream: str, *wire: str) -> int:
    """One 1 s run of ``fmt`` to ``port``; what it sent (the receiver must have parsed every one of them)."""
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "summary.json"
        r = run_loggend(*RUN, "--target", f"127.0.0.1:{port}", "--rate", str(EVENTS), "--duration", "1s",
                        "--pool-size", "1000", "--format", fmt, "--stream-id", stream, "--seed", "7",
                        "--summary-json", str(summary), *wire)
        assert r.returncode == 0, r.stderr
        sent = int(json.loads(summary.read_text())["sent"])
    assert sent > EVENTS // 2, r.stdout
    SENT[stream] = sent
    return sent


def stringify(value):
    """syslog-ng's JSON parser keeps scalars as strings: compare like with like."""
    if isinstance(value, dict):
        return {k: stringify(v) for k, v in value.items()}
    return str(value)


def bsd_time(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).strftime("%b %e %H:%M:%S")


def check_record(rec: dict, fmt: str, quirks: bool = False) -> tuple[str, int]:
    """Every field of one record against the raw message it came from; (stream, seq).

    ``quirks``: syslog-ng 3.38's kv-based CEF and LEEF parsers, which keep CEF's ``\\=`` escapes
    in values and start a new pair at ``, `` or `` word=`` inside a value (CEF's grammar and
    QRadar split at the next unescaped key, and at LEEF's delimiter only): such values are
    skipped, every other one must be equal."""
    raw = rec["raw"]
    if fmt == "rfc5424":
        m = RFC5424.fullmatch(raw.encode())
        assert m, raw
        assert rec["pri"] == int(m["pri"]) and rec["facility"] * 8 + rec["severity"] == rec["pri"]
        assert dt.datetime.fromisoformat(rec["timestamp"]) == dt.datetime.fromisoformat(m["ts"].decode())
        assert (rec["hostname"], rec["appname"], rec["msgid"]) == (m["host"].decode(), m["app"].decode(),
                                                                     m["msgid"].decode())
        assert rec["procid"] == (None if m["procid"] == b"-" else m["procid"].decode())
        assert rec["sdata"] == {f"loggen@{m['pen'].decode()}": {"stream": m["stream"].decode(),
                                                                 "seq": m["seq"].decode()}}
        assert rec["msg"] == m["msg"].decode()
        return m["stream"].decode(), int(m["seq"])
    h = HEADER3164.fullmatch(raw.encode())
    assert h, raw
    assert rec["pri"] == int(h[1]) and bsd_time(rec["timestamp"]) == h[2].decode()
    assert (rec["hostname"], rec["appname"]) == (h[3].decode(), h[4].decode())
    assert rec["procid"] == (h[5].decode() if h[5] else None) and rec["msgid"] is None
    body = h[6].decode()
    assert rec["msg"] == body
    if fmt == "rfc3164":
        tail = re.search(r" stream=(\S+) seq=(\d{12})$", body)
        return tail[1], int(tail[2])
    if fmt == "cef":
        c = CEF.fullmatch(body)
        got = rec["cef"]
        assert (got["DeviceVendor"], got["DeviceProduct"], got["DeviceVersion"], got["SignatureID"], got["Severity"]) \
            == ("loggen", unescape_cef(c["product"]), c["version"], unescape_cef(c["sig"]), c["sev"])
        assert got["Name"] == unescape_cef(c["name"])
        ext = cef_extension(c["ext"])
        if not quirks:
            assert got["Extensions"] == ext
        for key in checkable(ext, quirks):        # syslog-ng keeps the escapes; rsyslog's values are the text
            value = got["Extensions"][key]
            assert (unescape_cef(value) if quirks else value) == ext[key], (key, raw)
        return ext["cs1"], int(ext["cn1"])
    if fmt == "leef":
        le = LEEF.fullmatch(body)
        attrs = dict(a.split("=", 1) for a in re.split(r"(?<!\\)\^", le["attrs"]))
        got = rec["leef"]
        assert (got["Vendor"], got["Product"], got["ProductVersion"], got["EventID"]) == \
            ("loggen", le["product"], le["version"], le["event"])
        for key in checkable(attrs, quirks):
            assert got["attrs"][key] == attrs[key], (key, raw)
        return attrs["stream"], int(attrs["seq"])
    doc = json.loads(body)
    assert stringify(rec["json"]) == stringify(doc)
    return doc["stream"], int(doc["seq"])


def checkable(pairs: dict[str, str], quirks: bool) -> list[str]:
    """The keys to compare: all, or under syslog-ng's quirks those it cannot have split or shadowed."""
    if not quirks:
        return list(pairs)
    split = [v for v in pairs.values() if SPLIT_BY_KV.search(v)]
    return [k for k, v in pairs.items() if v not in split and not any(f"{k}=" in s for s in split)]


def unescape_cef(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def check_all(records: list[dict], fmt: str, stream: str, **kw) -> None:
    mine = [r for r in records if f"{stream}0" in r["raw"]]
    seen = sorted(check_record(r, fmt, **kw)[1] for r in mine)
    assert seen == list(range(SENT[stream])), f"{fmt}: {len(seen)} of {SENT[stream]} parsed"


def test_rsyslog_parses_every_format_over_tcp_octet_counted_and_lf(tmp_path):
    needs(R.rsyslog_available())
    with R.RsyslogReceiver(tmp_path / "rsyslog", udp=False, tcp=True) as rx:
        sent = 0
        for k, fmt in enumerate(FORMATS):
            sent += send(rx.ports["tcp"], fmt, f"oc{k}x", "--protocol", "tcp")
            sent += send(rx.ports["tcp"], fmt, f"lf{k}x", "--protocol", "tcp", "--framing", "lf")
        records = rx.wait_for_records(sent, timeout=30, settle=0.5)
    assert len(records) == sent
    for k, fmt in enumerate(FORMATS):
        check_all(records, fmt, f"oc{k}x")
        check_all(records, fmt, f"lf{k}x")


def test_syslog_ng_parses_every_format_over_tls_with_a_throw_away_ca(tmp_path, pki):
    needs(R.syslog_ng_available())
    with R.SyslogNgReceiver(tmp_path / "syslog-ng", udp=False, tcp=False, tls=True, pki=pki) as rx:
        sent = sum(send(rx.ports["tls"], fmt, f"tls{k}x", "--protocol", "tls", "--tls-ca", str(pki.ca_cert),
                        "--tls-server-name", "localhost") for k, fmt in enumerate(FORMATS))
        records = rx.wait_for_records(sent, timeout=30, settle=0.5)
    assert len(records) == sent
    for k, fmt in enumerate(FORMATS):
        check_all(records, fmt, f"tls{k}x", quirks=True)


TEMPLATES = """\
- name: login
  message: "login user={user} src={ipv4:10.20.0.0/16} port={int:1024-65535} session={sid=hex:16} again={sid}"
  facility: auth
  severity: notice
  program: shopd
- name: order
  message: "order id={uuid} amount={float:1-500/2} at={timestamp:%Y-%m-%d %H:%M:%S} n={seq}"
  weight: 3
  program: shopd
"""


def test_rsyslog_parses_templated_messages_field_by_field(tmp_path):
    needs(R.rsyslog_available())
    templates = tmp_path / "shop.yaml"
    templates.write_text(TEMPLATES)
    formats = ("rfc3164", "rfc5424", "cef", "json")
    with R.RsyslogReceiver(tmp_path / "rsyslog", udp=False, tcp=True) as rx:
        sent = sum(send(rx.ports["tcp"], fmt, f"t{k}x", "--protocol", "tcp", "--templates", str(templates),
                        "--catalogue", "off", "--utc") for k, fmt in enumerate(formats))
        records = rx.wait_for_records(sent, timeout=30, settle=0.5)
    assert len(records) == sent
    for k, fmt in enumerate(formats):
        check_all(records, fmt, f"t{k}x")
    for rec in records:
        assert rec["appname"] == "shopd" and rec["pri"] in (37, 14)           # auth.notice, user.info
        assert re.search(r"session\\?=([0-9a-f]{16}) again\\?=\1", rec["raw"]) or "order id" in rec["raw"], rec["raw"]
        if rec.get("cef") and "login" in rec["raw"]:
            assert len(rec["cef"]["Extensions"]["sid"]) == 16            # a named value is a CEF field
        if rec.get("json") and "order id=" in rec["raw"]:
            stamp = re.search(r"at=(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", rec["json"]["message"])[1]
            sent = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
            got = dt.datetime.fromisoformat(rec["received"])
            assert abs((got - sent).total_seconds()) < 5                # current at sending, not at rendering


@pytest.mark.parametrize("wrap", ["rfc3164", "rfc5424", "none"])
def test_a_replayed_nginx_log_gets_a_syslog_header_rsyslog_reads(tmp_path, wrap):
    """examples/nginx-access.log has no syslog header: wrapped (the default), rsyslog reads the
    sending machine as the host and the file as the program, and the whole line as the message;
    unwrapped (none), it takes the client address for the host name, as a new user found."""
    import socket
    from pathlib import Path
    needs(R.rsyslog_available())
    log = Path(__file__).resolve().parents[2] / "examples" / "nginx-access.log"
    lines = [line for line in log.read_text().splitlines() if line][:200]
    fmt = ("--format", "rfc5424") if wrap == "rfc5424" else ("--replay-wrap", wrap) if wrap == "none" else ()
    with R.RsyslogReceiver(tmp_path / "rsyslog", udp=False, tcp=True) as rx:
        r = run_loggend(*RUN, "--target", f"127.0.0.1:{rx.ports['tcp']}", "--protocol", "tcp", "--rate", "400",
                        "--duration", "0.5s", "--pool-size", "1000", "--replay", str(log), "--no-sequence", *fmt)
        assert r.returncode == 0, r.stderr
        records = rx.wait_for_records(200, timeout=30, settle=0.5)
    assert len(records) == 200
    host = socket.gethostname().split(".")[0]
    for rec in records:
        if wrap == "none":
            assert rec["hostname"] != host and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", rec["hostname"]), rec
            continue
        assert rec["hostname"] == host and rec["appname"] == "nginx-access", rec
        body = rec["msg"].strip()
        client = body.split(" ", 1)[0]
        assert any(line.startswith(client + " ") and line.split("]", 1)[1] == body.split("]", 1)[1]
                   for line in lines), body
        got = dt.datetime.fromisoformat(rec["received"])
        stamp = dt.datetime.strptime(re.search(r"\[(\S+ [+-]\d{4})\]", body)[1], "%d/%b/%Y:%H:%M:%S %z")
        assert abs((got - stamp).total_seconds()) < 5                   # the line's own time, rewritten too
