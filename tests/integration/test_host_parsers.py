"""The hosts' vendor sources through parsers nobody here wrote, started privately.

syslog-ng 3.38's scl (tests/support/sngparse.py, one start per source): sudo-parser(),
linux-audit-parser(), apache-accesslog-parser() for apache and nginx, websense-parser() and
netskope-parser(), and app-parser(), which must pick the right one by itself as
default-network-drivers() does. rsyslog's mmjsonparse (a private rsyslogd on 127.0.0.1, its own
port and work dir) for the sources that send JSON behind a syslog header. 10,000 messages each;
at least 99.9 % recognised (all, in fact) and the values extracted valid; the proof of delivery
comes back intact from the parser's own fields, so the parsers leave it alone and it leaves them.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from functools import cache

import pytest

from loggend.content import cloud, ids, linuxhost, proxies, web, windows
from loggend.content.model import Source
from tests.support import drafts, receivers, sngparse
from tests.support.processes import RUN, run_loggend

REASON = sngparse.unavailable()
COUNT = 10_000
RECOGNISED = 0.999
SOURCES = {s.name: s for m in (windows, linuxhost, web, proxies, ids, cloud) for s in m.SOURCES}
METHODS = {"GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "CONNECT"}
needs_sng = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@cache
def lines(name: str, form: str = "native") -> tuple[str, ...]:
    return tuple(drafts.lines(SOURCES[name], form, COUNT))


def parsed(name: str, parser: str, flags: str = "no-parse", key: str | None = None) -> list[dict[str, str]]:
    rows = sngparse.parse(lines(name), parser, flags=flags)
    assert len(rows) == len(lines(name))
    share = sngparse.recognised(rows, key)
    refused = [r["MESSAGE"] for r in rows if r.get(sngparse.OK_KEY) != "1" or key and not r.get(key)][:3]
    assert share >= RECOGNISED, (share, refused)
    return rows


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def port(text: str) -> bool:
    return text.isdigit() and 0 <= int(text) <= 65535


def proofs(rows: list[dict[str, str]], prefix: str) -> list[int]:
    """The sequence numbers the parser extracted, having left the stream id as it was."""
    assert all(r[f"{prefix}loggen_stream"] == drafts.STREAM_ID for r in rows)
    return [int(r[f"{prefix}loggen_seq"]) for r in rows]


@needs_sng
def test_sudo_parser_extracts_every_sudo_line() -> None:
    rows = parsed("sudo", "sudo-parser()", flags="", key=".sudo.COMMAND")
    assert proofs(rows, ".sudo.") == list(range(len(rows)))
    for r in rows:
        assert r["PROGRAM"] == "sudo" and r[".sudo.SUBJECT"] in linuxhost.USERS and r[".sudo.USER"] == "root"
        assert re.fullmatch(r"pts/\d+", r[".sudo.TTY"]) and r[".sudo.PWD"].startswith("/")
        assert r[".sudo.COMMAND"].startswith("/") and "loggen" not in r[".sudo.COMMAND"]
        assert r[".sudo.COMMAND"] in {c for c, _ in linuxhost.SUDO_COMMANDS}


@needs_sng
def test_linux_audit_parser_decodes_every_record_and_the_events_agree() -> None:
    rows = parsed("linux-audit", 'linux-audit-parser(prefix(".auditd."))', flags="", key=".auditd.type")
    assert proofs(rows, ".auditd.") == list(range(len(rows)))
    kinds = {k.name for k in SOURCES["linux-audit"].kinds}
    argv: dict[str, list[str]] = {}
    for r in rows:
        assert r["PROGRAM"] == "audisp-syslog" and r[".auditd.type"] in kinds
        # msg=audit(time:serial): the parser's msg, unless a user-space record's msg='...' took its place
        stamp = re.match(r"type=\w+ msg=audit\((\d{10}\.\d{3}):(\d+)\): ", r["MESSAGE"])
        assert stamp and (r[".auditd.msg"] == stamp[0][len(f"type={r['.auditd.type']} msg="):-1]
                          or r[".auditd.msg"].endswith("res=success")), r
        for key in ("pid", "ppid", "uid", "auid", "ses"):
            assert r.get(f".auditd.{key}", "0").isdigit(), (key, r)
        if r[".auditd.type"] == "EXECVE":
            argv[stamp[2]] = [r[f".auditd.a{i}"] for i in range(int(r[".auditd.argc"]))]
        if r[".auditd.type"] == "PROCTITLE":           # hex decoded by the parser: the EXECVE's arguments
            assert r[".auditd.proctitle"].split("\t") == argv[stamp[2]], r
        if r[".auditd.type"] == "SYSCALL":
            assert r[".auditd.syscall"] == "59" and r[".auditd.exe"].startswith("/")


@needs_sng
@pytest.mark.parametrize("name", ["apache", "nginx"])
def test_apache_accesslog_parser_reads_the_combined_format(name: str) -> None:
    rows = parsed(name, "apache-accesslog-parser()", flags="", key=".apache.response")
    for r in rows:
        assert is_ip(r[".apache.clientip"]) and r[".apache.verb"] in METHODS
        assert 100 <= int(r[".apache.response"]) <= 599 and r[".apache.httpversion"] == "1.1"
        assert r[".apache.bytes"].isdigit() or name == "apache" and r[".apache.bytes"] == "-"
        assert r[".apache.request"].startswith("/") and r[".apache.timestamp"]
        assert r[".apache.referrer"] == "-" or r[".apache.referrer"].startswith("https://")
        assert "loggen" not in r[".apache.agent"] and r[".apache.agent"]


@needs_sng
@pytest.mark.parametrize("parser", ["websense-parser()", "app-parser(topic(syslog-raw))"])
def test_websense_parser_extracts_every_pair(parser: str) -> None:
    rows = parsed("websense", parser, key=".websense.url")
    assert proofs(rows, ".websense.") == list(range(len(rows)))
    for r in rows:
        w = {k.removeprefix(".websense."): v for k, v in r.items() if k.startswith(".websense.")}
        assert r["PROGRAM"] == "Websense" and is_ip(r["HOST"]) and is_ip(w["src_host"]) and is_ip(w["dst_ip"])
        assert port(w["src_port"]) and port(w["dst_port"]) and w["bytes_in"].isdigit() and w["bytes_out"].isdigit()
        assert (w["action"], w["disposition"]) in (("permitted", "1034"), ("blocked", "1025"))
        assert w["http_method"] in METHODS and w["url"].startswith(("http://", "https://"))


@needs_sng
@pytest.mark.parametrize("parser", ["netskope-parser()", "app-parser(topic(syslog-raw))"])
def test_netskope_parser_reads_every_event(parser: str) -> None:
    rows = parsed("netskope", parser, key=".netskope._insertion_epoch_timestamp")
    assert proofs(rows, ".netskope.") == list(range(len(rows)))
    types = set()
    for r in rows:
        n = {k.removeprefix(".netskope."): v for k, v in r.items() if k.startswith(".netskope.")}
        types.add(n["type"])
        assert n["timestamp"].isdigit() and n["timestamp"] == n["_insertion_epoch_timestamp"]
        if n["type"] == "page":
            assert int(n["numbytes"]) == int(n["client_bytes"]) + int(n["server_bytes"])
            assert is_ip(n["srcip"]) and is_ip(n["dstip"]) and is_ip(n["userip"])
    assert types == {"page", "application", "nspolicy", "admin_audit_logs"}


@needs_sng
def test_app_parser_picks_sudo_by_its_program() -> None:
    rows = sngparse.parse(lines("sudo")[:1000], "app-parser(topic(syslog))", flags="")
    assert sngparse.recognised(rows, ".sudo.COMMAND") >= RECOGNISED


# --- JSON behind a syslog header: rsyslog's mmjsonparse -------------------------------------------------------

JSON_SOURCES = (("windows-security", "json", "Microsoft-Windows-Security-Auditing", "EventID"),
                ("suricata", "native", "suricata", "event_type"),
                ("zeek", "native", "zeek", "_path"),
                ("aws-cloudtrail", "native", "aws-cloudtrail", "eventName"))


@pytest.mark.network
@pytest.mark.parametrize(("name", "form", "app", "key"), JSON_SOURCES)
def test_rsyslog_mmjsonparse_parses_every_json_message(tmp_path, name: str, form: str, app: str, key: str) -> None:
    reason = receivers.rsyslog_available()
    if reason:
        pytest.skip(reason)
    source: Source = SOURCES[name]
    sent = lines(name, form)
    with receivers.RsyslogReceiver(tmp_path / "rsyslog", udp=False, tcp=True) as rx:
        receivers.send_tcp(rx.ports["tcp"], sent, timeout=30)
        records = rx.wait_for_records(len(sent), timeout=60)
    assert len(records) == len(sent)
    seqs = []
    kinds: dict[str, int] = defaultdict(int)
    for r in records:
        assert r["appname"] == app and r.get("json"), r.get("msg", "")[:300]
        event = r["json"]
        assert event["loggen_stream"] == drafts.STREAM_ID
        seqs.append(int(event["loggen_seq"]))
        kinds[str(event[key])] += 1
    assert sorted(seqs) == list(range(len(sent)))
    assert len(kinds) >= len(source.kinds) - 1        # every kind (windows: its rarest may not fall in 10,000)


# --- conversations on the wire --------------------------------------------------------------------------------

WIRE_COUNT = 10_000
LENGTH = ("--max-length", "4096")      # Windows events and CloudTrail records are longer than 1,024 bytes
LOGON = re.compile(rb"\t(4624|4634)\tMicrosoft-Windows-Security-Auditing\t.*?New Logon: .*?Logon ID:  (0x[0-9a-f]+)|"
                   rb"\t(4634)\tMicrosoft-Windows-Security-Auditing\t.*?Logon ID:  (0x[0-9a-f]+)")
FLOW = re.compile(rb'"flow_id":(\d+),"in_iface":"\w+","event_type":"(\w+)"')


def _sent(receiver, source: str) -> list[bytes]:
    """What a run of ``source`` puts on the wire, in order (long enough for Windows' and Suricata's lines)."""
    result = run_loggend(*RUN, "--target", f"127.0.0.1:{receiver.port}", "--sources", source, "--rate", "20000",
                         "--duration", "0.5s", "--pool-size", str(WIRE_COUNT), *LENGTH)
    assert result.returncode == 0, result.stderr
    got = receiver.wait_for(WIRE_COUNT)
    assert len(got) == WIRE_COUNT
    return got


@pytest.mark.slow
@pytest.mark.network
def test_on_the_wire_every_4634_follows_the_4624_of_its_logon_id(receiver) -> None:
    opened: set[bytes] = set()
    closed = 0
    for message in _sent(receiver, "windows-security"):
        m = LOGON.search(message)
        if not m:
            continue
        if m[1] == b"4624":
            opened.add(m[2])
        else:
            assert (m[2] or m[4]) in opened, message[:300]
            closed += 1
    assert closed > WIRE_COUNT // 10


@pytest.mark.slow
@pytest.mark.network
def test_on_the_wire_a_suricata_flow_record_follows_its_alert_and_transaction(receiver) -> None:
    flows: set[bytes] = set()
    alerts = 0
    for message in _sent(receiver, "suricata"):
        m = FLOW.search(message)
        assert m, message[:200]
        if m[2] == b"flow":
            flows.add(m[1])
        else:
            assert m[1] not in flows, message[:300]          # the flow record closes the conversation
            alerts += m[2] == b"alert"
    assert alerts > 0 and flows
