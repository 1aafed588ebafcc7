"""The hosts' vendor sources: contract, proof of delivery, formats against their field lists, conversations.

Sources with a real parser (sudo, linux-audit, apache, nginx, websense, netskope) are also run through
syslog-ng's scl in tests/integration/test_host_parsers.py; the JSON sources through rsyslog's mmjsonparse
there too. Here: what the vendors publish (Snare's field layout, Microsoft's event data per event id,
Suricata's EVE and Zeek's log fields, CloudTrail's record contents, VPC flow log v2's fourteen fields,
Squid's native access.log) and the conversations across messages.
"""

from __future__ import annotations

import ipaddress
import json
import math
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from functools import cache

import pytest

from loggend.content import cloud, ids, linuxhost, proxies, web, windows
from loggend.content.model import SEQ, STREAM, Conversation, Draft, Source, Stamp
from tests.support import drafts

MODULES = (windows, linuxhost, web, proxies, ids, cloud)
SOURCES = {s.name: s for m in MODULES for s in m.SOURCES}
NAMES = ("windows-security", "sudo", "linux-audit", "apache", "nginx", "squid", "websense", "netskope", "suricata",
         "zeek", "aws-cloudtrail", "aws-vpc-flow")
COUNT = 10_000
NOW = 1_796_591_045.0                 # a fixed instant: every stamp renders the same in every run
# The smallest published field list each JSON form must carry, per kind of record.
WINDOWS_DATA = {  # Microsoft's event data names (those a SIEM keys on) per event id
    4624: {"SubjectUserSid", "TargetUserSid", "TargetUserName", "TargetDomainName", "TargetLogonId", "LogonType",
           "LogonProcessName", "AuthenticationPackageName", "IpAddress", "IpPort", "LogonGuid", "ProcessName"},
    4625: {"TargetUserName", "TargetDomainName", "Status", "SubStatus", "FailureReason", "LogonType", "IpAddress"},
    4634: {"TargetUserSid", "TargetUserName", "TargetDomainName", "TargetLogonId", "LogonType"},
    4648: {"SubjectUserName", "SubjectLogonId", "TargetUserName", "TargetServerName", "ProcessName", "IpAddress"},
    4672: {"SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId", "PrivilegeList"},
    4688: {"SubjectLogonId", "NewProcessId", "NewProcessName", "TokenElevationType", "ProcessId", "CommandLine",
           "ParentProcessName", "MandatoryLabel"},
    4720: {"TargetUserName", "TargetSid", "SubjectUserName", "SamAccountName", "UserPrincipalName"},
    4728: {"MemberName", "MemberSid", "TargetUserName", "TargetSid", "SubjectUserName"},
    4732: {"MemberName", "MemberSid", "TargetUserName", "TargetSid", "SubjectUserName"},
    4740: {"TargetUserName", "TargetDomainName", "TargetSid", "SubjectUserName"},
    4768: {"TargetUserName", "TargetDomainName", "TargetSid", "ServiceName", "TicketOptions", "Status",
           "TicketEncryptionType", "PreAuthType", "IpAddress", "IpPort"},
    4769: {"TargetUserName", "TargetDomainName", "ServiceName", "ServiceSid", "TicketOptions", "TicketEncryptionType",
           "IpAddress", "IpPort", "Status", "LogonGuid"},
    4776: {"PackageName", "TargetUserName", "Workstation", "Status"},
}
NXLOG_FIELDS = {"EventTime", "Hostname", "Keywords", "EventType", "SeverityValue", "Severity", "EventID",
                "SourceName", "ProviderGuid", "Version", "Task", "OpcodeValue", "RecordNumber", "ProcessID",
                "ThreadID", "Channel", "Message", "Category", "EventReceivedTime", "SourceModuleName",
                "SourceModuleType"}
EVE_FIELDS = {"timestamp", "flow_id", "in_iface", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto"}
EVE_EVENT = {"alert": {"signature_id", "rev", "signature", "category", "severity", "gid", "action"},
             "flow": {"pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient", "start", "end", "age",
                      "state", "reason", "alerted"},
             "dns": {"type", "id", "rrname", "rrtype", "rcode"},
             "http": {"hostname", "url", "http_method", "protocol", "status", "length"},
             "tls": {"sni", "version"}}
ZEEK_FIELDS = {"conn": {"proto", "service", "duration", "orig_bytes", "resp_bytes", "conn_state", "missed_bytes",
                        "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes"},
               "dns": {"proto", "trans_id", "rtt", "query", "qclass", "qtype", "qtype_name", "rcode", "rcode_name",
                       "AA", "TC", "RD", "RA", "Z", "answers", "TTLs", "rejected"},
               "http": {"trans_depth", "method", "host", "uri", "version", "user_agent", "request_body_len",
                        "response_body_len", "status_code", "status_msg"},
               "ssl": {"version", "cipher", "server_name", "resumed", "established"}}
CLOUDTRAIL_FIELDS = {"eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
                     "sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID", "eventID",
                     "eventType", "recipientAccountId", "readOnly", "managementEvent", "eventCategory"}
SPEED_SAMPLE = 2_000
SPEED_REPEATS = 3
# The goal is 2x the catalogue (`make bench`'s render table measures it); a test on a shared box only
# guards against a generator gone pathological (quadratic, per-message set-up), with room for noise.
SPEED_FACTOR = 5.0


@cache
def lines(name: str, form: str = "native", count: int = COUNT) -> tuple[str, ...]:
    return tuple(drafts.lines(SOURCES[name], form, count, now=NOW, utc=True))


def body(line: str) -> str:
    """The message after a BSD header's ``tag: `` (as a forwarder strips it)."""
    return line.split(": ", 1)[1]


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def test_every_host_source_is_there_with_its_contract() -> None:
    assert set(NAMES) == set(SOURCES)
    for source in SOURCES.values():
        assert source.forms[0].name == "native"
        assert source.kinds and all(k.weight > 0 for k in source.kinds)
        assert source.fields and source.reference and source.parser
        for form in source.forms:
            assert form.proof is not None or form.no_proof, (source.name, form.name)


@pytest.mark.parametrize("name", NAMES)
def test_drafts_carry_one_stream_then_one_seq_and_the_sink_finds_them(name: str) -> None:
    source = SOURCES[name]
    for form in source.forms:
        made = list(source.generate(source.identity(random.Random(5)), random.Random(6), 2_000, form.name))
        assert len(made) >= 2_000
        for draft in made[:500]:
            parts = list(draft)
            assert parts.count(STREAM) == 1 and parts.count(SEQ) == 1, draft
            assert parts.index(STREAM) < parts.index(SEQ)
            assert all(isinstance(p, str) and p.isascii() or p in (STREAM, SEQ) or isinstance(p, Stamp | Conversation)
                       for p in parts), draft
            assert sum(isinstance(p, Conversation) for p in parts) <= 1
        assert form.proof is not None
        for i, d in enumerate(made[:500]):
            text = drafts.text(d, NOW, 10**11 + i, stream="i2.w13")
            assert "\n" not in text
            assert drafts.proof_of(text, form.proof) == ("i2.w13", 10**11 + i)
            assert text.count(form.proof.stream_before) == 1 and text.count(form.proof.seq_before) == 1


def test_stamp_styles_are_unique_and_fixed_width_through_a_year() -> None:
    renders: dict[str, object] = {}
    for name in NAMES:
        source = SOURCES[name]
        for form in source.forms:
            for draft in source.generate(source.identity(random.Random(1)), random.Random(2), 3_000, form.name):
                for part in draft:
                    if isinstance(part, Stamp):
                        assert renders.setdefault(part.style, part.render) is part.render, part.style
    stamps = {style: Stamp(style, render) for style, render in renders.items()}  # type: ignore[arg-type]
    for stamp in stamps.values():
        for utc in (True, False):
            widths = {len(stamp.render(NOW + day * 86_400 + hour * 3_600, utc))
                      for day in range(0, 366, 7) for hour in (0, 9, 13)}
            assert len(widths) == 1, (stamp.style, utc, widths)


def _keyed(name: str, form: str = "native") -> list[tuple[str | None, str]]:
    """Each message's conversation key and text, in logging order."""
    source = SOURCES[name]
    made = source.generate(source.identity(random.Random(drafts.SEED)), random.Random(drafts.SEED + 1), COUNT, form)
    return [(_key(d), drafts.text(d, NOW, i, utc=True)) for i, d in enumerate(made)]


def _key(draft: Draft) -> str | None:
    return next((p.key for p in draft if isinstance(p, Conversation)), None)


@pytest.mark.parametrize(("name", "form", "field"), [
    ("windows-security", "json", r'"(?:TargetLogonId|SubjectLogonId)":"(0x[0-9a-f]+)"'),
    ("suricata", "native", r'"flow_id":(\d+)'),
    ("zeek", "native", r'"uid":"(\w+)"'),
    ("linux-audit", "native", r"msg=audit\(([\d.:]+)\)"),
])
def test_a_conversations_messages_carry_one_key_so_the_pool_keeps_their_order(name: str, form: str,
                                                                               field: str) -> None:
    key_of: dict[str, str] = {}
    for key, line in _keyed(name, form):
        found = re.search(field, line)
        if not found or found[1] in ("0x3e7", "0x0"):
            continue
        if key is None:                       # a message alone (a process of the system, a lone failure)
            assert found[1] not in key_of, line
            continue
        assert key_of.setdefault(found[1], key) == key, line
    assert len(set(key_of.values())) > COUNT // 20         # conversations there are, each with its key


# --- windows-security ---------------------------------------------------------------------------------------

SNARE = re.compile(r"<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) (\S+) MSWinEventLog\t(\d)\tSecurity\t(\d+)\t"
                   r"(\w{3} \w{3} \d\d \d\d:\d\d:\d\d \d{4})\t(\d{4})\tMicrosoft-Windows-Security-Auditing\t([^\t]+)\t"
                   r"N/A\t(Success Audit|Failure Audit)\t(\S+)\t([^\t]+)\t\t([^\t]+)\t(\d+)\t"
                   r"loggen_stream=[\w.]+\tloggen_seq=\d{12}")


def test_snare_lines_follow_snares_field_layout() -> None:
    counters: dict[str, int] = {}
    for line in lines("windows-security"):
        m = SNARE.fullmatch(line)
        assert m, line
        host, counter, eid, audit, computer = m[3], int(m[5]), int(m[7]), m[9], m[10]
        assert host == computer and eid in windows.EVENTS
        assert m[11] == windows.EVENTS[eid][2]
        assert m[12].startswith(windows.EVENTS[eid][3])
        assert (audit == "Failure Audit") == (eid == 4625)
        assert counter > counters.get(host, 0)          # Snare's counter rises per host
        counters[host] = counter


def _nxlog(form: str = "json") -> list[dict[str, object]]:
    return [json.loads(body(line)) for line in lines("windows-security", form)]


def test_nxlog_json_carries_nxlog_fields_and_microsofts_event_data() -> None:
    for event in _nxlog():
        eid = event["EventID"]
        assert isinstance(eid, int) and NXLOG_FIELDS <= event.keys()
        assert WINDOWS_DATA[eid] <= event.keys(), (eid, WINDOWS_DATA[eid] - event.keys())
        assert event["Channel"] == "Security" and event["Task"] == windows.EVENTS[eid][1]
        assert event["Version"] == windows.EVENTS[eid][0]
        assert str(event["Message"]).startswith(windows.EVENTS[eid][3])
        for key in ("IpAddress",):
            if key in event and event[key] not in ("-", ""):
                assert is_ip(str(event[key]).removeprefix("::ffff:")), event[key]


@pytest.mark.parametrize("form", ["native", "json"])
def test_every_4624_is_followed_by_its_4634_and_nothing_uses_a_logon_before_it(form: str) -> None:
    if form == "json":
        events = [(e["EventID"], e) for e in _nxlog()]
    else:
        events = [(int(m[7]), {k: v for k, v in re.findall(r"  (Logon ID|Account Name):  (\S+)", m[12])})
                  for m in (SNARE.fullmatch(line) for line in lines("windows-security")) if m]
    opened: dict[str, int] = {}
    closed: set[str] = set()
    for i, (eid, event) in enumerate(events):
        if form == "json":
            target, subject = str(event.get("TargetLogonId")), str(event.get("SubjectLogonId"))
        else:
            ids_ = re.findall(r"0x[0-9a-f]+", " ".join(str(v) for v in event.values()))
            target = subject = ids_[-1] if ids_ else ""
        if eid == 4624:
            assert target not in opened, target
            opened[target] = i
        elif eid == 4634:
            assert target in opened and target not in closed, target
            closed.add(target)
        elif eid in (4672, 4688) and subject not in (windows.SYSTEM_LOGON, "0x0") and form == "json":
            assert subject in opened and subject not in closed, (eid, subject)
    assert opened and set(opened) == closed


def test_lockouts_follow_failures_and_group_adds_follow_account_creation() -> None:
    events = _nxlog()
    failures: Counter[str] = Counter()
    created: set[str] = set()
    kinds = Counter(e["EventID"] for e in events)
    for e in events:
        if e["EventID"] == 4625:
            failures[str(e["TargetUserName"])] += 1
        elif e["EventID"] == 4740:
            assert failures[str(e["TargetUserName"])] >= windows.LOCKOUT_THRESHOLD
        elif e["EventID"] == 4720:
            created.add(str(e["TargetSid"]))
        elif e["EventID"] in (4728, 4732):
            assert e["MemberSid"] in created
    assert set(kinds) == set(windows.EVENTS), set(windows.EVENTS) - set(kinds)


# --- linux-audit, sudo ----------------------------------------------------------------------------------------

AUDIT = re.compile(r"<14>\w{3} [ \d]\d \d\d:\d\d:\d\d (\S+) audisp-syslog: "
                   r"type=(\w+) msg=audit\((\d{10}\.\d{3}):(\d+)\): (.*) loggen_stream=[\w.]+ loggen_seq=\d{12}")


def test_audit_records_of_one_event_share_its_stamp_and_serials_rise_per_host() -> None:
    stamp_of: dict[tuple[str, str], str] = {}
    last: dict[str, int] = {}
    sessions: dict[tuple[str, str], str] = {}
    for line in lines("linux-audit"):
        m = AUDIT.fullmatch(line)
        assert m, line
        host, rtype, stamp, serial, fields = m.groups()
        assert stamp_of.setdefault((host, serial), stamp) == stamp
        assert int(serial) >= last.get(host, 0)
        last[host] = int(serial)
        ses = re.search(r" ses=(\d+)", fields)
        if rtype == "USER_START" and ses:
            sessions[(host, ses[1])] = "open"
        if rtype == "USER_END" and ses:
            assert sessions.get((host, ses[1])) == "open", line
            sessions[(host, ses[1])] = "closed"
    assert sessions and all(state == "closed" for state in sessions.values())


def test_sudo_lines_are_sudos_format() -> None:
    pattern = re.compile(r"<(85|81)>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ sudo: +(\w+) : (?:(\d) incorrect password "
                         r"attempts? ; |command not allowed ; )?TTY=pts/\d ; PWD=/\S* ; USER=root ; "
                         r"loggen_stream=[\w.]+ ; loggen_seq=\d{12} ; COMMAND=/\S+( \S+)*")
    for line in lines("sudo"):
        m = pattern.fullmatch(line)
        assert m, line
        assert (m[1] == "81") == (" ; TTY" in line.split(" : ", 1)[1] and not line.split(" : ", 1)[1].startswith("TTY"))


# --- squid, VPC flow ------------------------------------------------------------------------------------------

def test_squid_lines_are_the_native_access_log() -> None:
    for line in lines("squid"):
        fields = body(line).split()
        assert len(fields) == 12 and fields[10].startswith("loggen_stream=") and fields[11].startswith("loggen_seq=")
        ts, elapsed, client, code, size, method, url, user, hier, ctype = fields[:10]
        assert re.fullmatch(r"\d{10}\.\d{3}", ts) and elapsed.isdigit() and is_ip(client) and size.isdigit()
        result, status = code.split("/")
        assert result.startswith("TCP_") and 100 <= int(status) <= 599
        assert (method == "CONNECT") == url.endswith(":443") and method in ("CONNECT", "GET", "POST")
        how, peer = hier.split("/")
        assert how in ("HIER_DIRECT", "HIER_NONE") and (peer == "-" or is_ip(peer))
        assert user and ctype


def test_vpc_flow_records_are_version_2_with_14_fields_that_agree() -> None:
    accepted: list[list[str]] = []
    for line in lines("aws-vpc-flow"):
        head, record = line.split('"] ', 1)
        assert head.startswith("<134>1 ") and ' aws-vpc-flow - - [loggen@' in head
        f = record.split(" ")
        assert len(f) == 14 and f[0] == "2" and re.fullmatch(r"\d{12}", f[1])
        assert re.fullmatch(r"eni-[0-9a-f]{17}", f[2])
        start, end = int(f[10]), int(f[11])
        assert 0 <= end - start <= cloud.CAPTURE_WINDOW and end == int(NOW)
        if f[13] == "NODATA":
            assert f[3:10] == ["-"] * 7 and f[12] == "-"
            continue
        assert f[13] == "OK" and f[12] in ("ACCEPT", "REJECT")
        assert is_ip(f[3]) and is_ip(f[4]) and all(0 <= int(p) <= 65535 for p in f[5:7]) and f[7] in ("6", "17")
        packets, size = int(f[8]), int(f[9])
        assert packets >= 1 and size >= 40 * packets
        if f[12] == "ACCEPT":
            accepted.append(f)
    pairs = Counter((tuple(sorted([(f[3], f[5]), (f[4], f[6])])), f[2]) for f in accepted)
    assert pairs and all(n % 2 == 0 for n in pairs.values())     # each direction of a flow, on its interface


# --- suricata, zeek ---------------------------------------------------------------------------------------------

def test_suricata_eve_fields_and_every_event_shares_its_flow_id_with_a_later_flow() -> None:
    flows: dict[int, dict[str, object]] = {}
    pending: dict[int, list[dict[str, object]]] = defaultdict(list)
    kinds: Counter[str] = Counter()
    for line in lines("suricata"):
        e = json.loads(body(line))
        kind = str(e["event_type"])
        kinds[kind] += 1
        assert EVE_FIELDS <= e.keys() and EVE_EVENT[kind] <= e[kind].keys(), (kind, e)  # type: ignore[union-attr]
        assert is_ip(str(e["src_ip"])) and is_ip(str(e["dest_ip"]))
        assert ids.community_id(str(e["src_ip"]), int(e["src_port"]), str(e["dest_ip"]),  # type: ignore[arg-type]
                                int(e["dest_port"]), ids.PROTO_NUMBERS[str(e["proto"])]) == e["community_id"]  # type: ignore[arg-type]
        flow_id = int(e["flow_id"])  # type: ignore[arg-type]
        if kind == "flow":
            assert flow_id not in flows
            flows[flow_id] = e
            f = e["flow"]
            assert isinstance(f, dict)
            start = time.mktime(time.strptime(f["start"][:19], "%Y-%m-%dT%H:%M:%S"))
            end = time.mktime(time.strptime(f["end"][:19], "%Y-%m-%dT%H:%M:%S"))
            assert end - start == f["age"] and f["start"] <= f["end"] == e["timestamp"]
            assert f["alerted"] == any(p["event_type"] == "alert" for p in pending[flow_id])
            for earlier in pending.pop(flow_id):
                assert earlier["community_id"] == e["community_id"]
                if earlier["event_type"] == "alert":
                    snap = earlier["flow"]
                    assert isinstance(snap, dict)
                    assert all(snap[k] <= f[k] for k in ("pkts_toserver", "pkts_toclient", "bytes_toserver",
                                                          "bytes_toclient")) and snap["start"] == f["start"]
        else:
            assert flow_id not in flows
            pending[flow_id].append(e)
    assert not pending and set(kinds) == set(EVE_EVENT)


def test_zeek_logs_fields_and_every_protocol_entry_shares_its_uid_with_a_later_conn() -> None:
    open_: dict[str, dict[str, object]] = {}
    paths: Counter[str] = Counter()
    for line in lines("zeek"):
        e = json.loads(body(line))
        path = str(e["_path"])
        paths[path] += 1
        assert {"ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"} | ZEEK_FIELDS[path] <= e.keys()
        assert re.fullmatch(r"C[0-9A-Za-z]{17}", str(e["uid"])) and is_ip(str(e["id.orig_h"]))
        if path != "conn":
            open_[str(e["uid"])] = e
            continue
        app = open_.pop(str(e["uid"]))
        assert float(e["ts"]) <= float(app["ts"]) <= float(e["ts"]) + float(e["duration"]) + 1  # type: ignore[arg-type]
        header = ids.TCP_HEADER if e["proto"] == "tcp" else ids.UDP_HEADER
        assert e["orig_ip_bytes"] == e["orig_bytes"] + header * e["orig_pkts"]  # type: ignore[operator]
        assert e["resp_ip_bytes"] == e["resp_bytes"] + header * e["resp_pkts"]  # type: ignore[operator]
    assert not open_ and set(paths) == set(ZEEK_FIELDS)


# --- aws-cloudtrail, websense, netskope ---------------------------------------------------------------------------

def test_cloudtrail_records_have_the_published_contents_and_keys_come_from_an_assumed_role() -> None:
    keys: set[str] = set()
    for line in lines("aws-cloudtrail"):
        r = json.loads(body(line))
        assert CLOUDTRAIL_FIELDS <= r.keys(), CLOUDTRAIL_FIELDS - r.keys()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["eventTime"]) and r["eventVersion"] == "1.09"
        assert re.fullmatch(r"\d{12}", r["recipientAccountId"]) and r["eventSource"].endswith(".amazonaws.com")
        assert is_ip(r["sourceIPAddress"]) or r["sourceIPAddress"].endswith(".amazonaws.com")
        if r["eventName"] == "AssumeRole":
            keys.add(r["responseElements"]["credentials"]["accessKeyId"])
        ident = r["userIdentity"]
        if ident["type"] == "AssumedRole":
            assert ident["accessKeyId"] in keys
            assert ident["arn"].endswith(ident["principalId"].split(":")[1])
    assert keys


def test_websense_pairs_agree() -> None:
    for line in lines("websense"):
        pairs = dict(re.findall(r"(\w+)=(\S*)", line))
        assert pairs["vendor"] == "Websense" and is_ip(pairs["src_host"]) and is_ip(pairs["dst_ip"])
        assert all(0 < int(pairs[k]) <= 65535 for k in ("src_port", "dst_port"))
        assert (pairs["action"], pairs["disposition"]) in (("permitted", "1034"), ("blocked", "1025"))
        assert (pairs["http_proxy_status_code"] == "403") == (pairs["action"] == "blocked")


def test_netskope_is_pri_134_and_json_with_bytes_that_add_up() -> None:
    for line in lines("netskope"):
        assert line.startswith("<134>{")
        e = json.loads(line[5:])
        assert {"_id", "type", "timestamp", "_insertion_epoch_timestamp", "user", "count"} <= e.keys()
        if e["type"] == "page":
            assert e["numbytes"] == e["client_bytes"] + e["server_bytes"]
            assert is_ip(e["srcip"]) and is_ip(e["dstip"]) and is_ip(e["userip"])


# --- shares and speed ---------------------------------------------------------------------------------------------

KIND_OF = {
    "windows-security": lambda line: SNARE.fullmatch(line)[7],  # type: ignore[index]
    "linux-audit": lambda line: AUDIT.fullmatch(line)[2],  # type: ignore[index]
    "suricata": lambda line: json.loads(body(line))["event_type"],
    "zeek": lambda line: json.loads(body(line))["_path"],
    "netskope": lambda line: {"nspolicy": "alert"}.get(t := json.loads(line[5:])["type"], t),
    "websense": lambda line: re.search(r"action=(\w+)", line)[1],  # type: ignore[index]
    "aws-vpc-flow": lambda line: line.split()[-2] if line.endswith("OK") else "NODATA",
}
SHARE_TOLERANCE = 0.04           # a declared kind weight and the share generated agree within 4 points


@pytest.mark.parametrize("name", sorted(KIND_OF))
def test_declared_kind_weights_are_the_shares_generated(name: str) -> None:
    counts = Counter(KIND_OF[name](line) for line in lines(name))
    total = sum(counts.values())
    declared = {k.name: k.weight for k in SOURCES[name].kinds}
    scale = sum(declared.values())
    assert set(counts) <= set(declared), set(counts) - set(declared)
    for kind, weight in declared.items():
        share = counts[kind] / total
        assert abs(share - weight / scale) <= SHARE_TOLERANCE, (kind, share, weight / scale)


def _per_message(make: Callable[[int], object], count: int = SPEED_SAMPLE, repeats: int = SPEED_REPEATS) -> float:
    """The best of ``repeats`` timings of ``make(count)``, per message (the least disturbed by other load)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        make(count)
        best = min(best, time.perf_counter() - start)
    return best / count


def _catalogue(count: int) -> None:
    from loggend.engine.render import fit, render_events, spec_format
    from loggend.engine.spec import MessageSpec

    spec = MessageSpec()
    fmt = spec_format(spec)
    for event in render_events(spec, count, random.Random(1)):
        fit(fmt, event, NOW, spec.max_length)


def _drafts(source: Source, form: str) -> Callable[[int], object]:
    ident = source.identity(random.Random(3))
    return lambda count: [drafts.text(d, NOW, i) for i, d in enumerate(source.generate(ident, random.Random(4),
                                                                                          count, form))]


@pytest.mark.slow
def test_no_source_costs_many_times_the_catalogue_to_render() -> None:
    """Each source's messages, generated and put together, against the catalogue's events rendered."""
    ratios = {}
    for source in SOURCES.values():
        for form in source.forms:
            catalogue = _per_message(_catalogue)
            ratios[f"{source.name}/{form.name}"] = _per_message(_drafts(source, form.name)) / catalogue
    print(", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    slow = {k: round(v, 2) for k, v in ratios.items() if v > SPEED_FACTOR}
    assert not slow, slow
