"""What a SIEM engineer reading the vendor sources' messages expects of them, over thousands of messages.

Each test renders a few thousand messages of one source at a fixed instant (tests/support/drafts) and
checks one property a real device keeps: an ASA teardown's bytes and duration agree with its reason;
IOS adjacency changes follow OSPF's state machine and a device's clock never goes back as its sequence
numbers go up; a session's start time is its end less its elapsed time; a DNS filter log is about DNS;
a Windows logon's type fits its account and logon process; a Zeek protocol record lies within its
connection.
"""

from __future__ import annotations

import calendar
import csv
import json
import re
import time

from loggend.content import checkpoint, cisco, fortinet, ids, paloalto, windows
from loggend.content.model import Source
from tests.support import drafts

COUNT = 4_000
NOW = 1_796_591_045.0                 # a fixed instant: every stamp renders the same in every run


def source(module: object, name: str) -> Source:
    return next(s for s in module.SOURCES if s.name == name)      # type: ignore[attr-defined]


def lines(src: Source, form: str = "native", count: int = COUNT, seed: int = 5) -> list[str]:
    return drafts.lines(src, count, form, seed=seed, now=NOW, utc=True)


def seconds(hms: str) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    return h * 3600 + m * 60 + s


ASA_TEARDOWN = re.compile(r"%ASA-6-302014: Teardown TCP connection \d+ .* duration (\d+:\d\d:\d\d) bytes (\d+) (.+)$")


def test_an_asa_teardown_reason_fits_its_bytes_and_duration() -> None:
    """SYN Timeout: an embryonic connection, no bytes, closed at the 30 s embryonic timeout; Idle
    Timeout: idle for the hour of 'timeout conn' at least; FINs and resets end sessions that carried data."""
    by_reason: dict[str, list[tuple[int, int]]] = {}
    for line in lines(source(cisco, "cisco-asa")):
        m = ASA_TEARDOWN.search(line)
        if m:
            by_reason.setdefault(m[3], []).append((seconds(m[1]), int(m[2])))
    assert set(by_reason) == {r for r, _ in cisco.TCP_TEARDOWN}, by_reason.keys()
    assert all(size == 0 and duration == cisco.SYN_TIMEOUT for duration, size in by_reason["SYN Timeout"])
    assert all(duration >= cisco.IDLE_TIMEOUT and size > 0 for duration, size in by_reason["Idle Timeout"])
    for reason in ("TCP FINs", "TCP Reset-I", "TCP Reset-O"):
        assert all(size > 0 for _, size in by_reason[reason]), reason


IOS_LINE = re.compile(r"^<\d+>(\d+): (\S+): (\w{3} [ \d]\d \d\d:\d\d:\d\d)\.(\d{3}): %([A-Z0-9_-]+): (.*)$")
OSPF = re.compile(r"^Process 1, Nbr (\S+) on (\S+) from (\w+) to (\w+), (.+)$")
# RFC 2328's neighbour state machine, as IOS's log-adjacency-changes reports a neighbour reaching FULL or DOWN
OSPF_CHANGES = {("LOADING", "FULL", "Loading Done"), ("EXCHANGE", "FULL", "Exchange Done"),
                ("FULL", "DOWN", "Neighbor Down: Dead timer expired"),
                ("FULL", "DOWN", "Neighbor Down: Interface down or detached"),
                ("FULL", "DOWN", "Neighbor Down: Adjacency forced to reset")}


def ios_lines() -> list[re.Match[str]]:
    found = [IOS_LINE.match(line) for line in lines(source(cisco, "cisco-ios"))]
    assert all(found)
    return [m for m in found if m]


def test_ios_adjacency_changes_follow_each_neighbours_state() -> None:
    state: dict[tuple[str, str], str] = {}
    changes = 0
    for m in ios_lines():
        if m[5] != "OSPF-5-ADJCHG":
            continue
        ospf = OSPF.match(m[6])
        assert ospf and (ospf[3], ospf[4], ospf[5]) in OSPF_CHANGES, m[6]
        key = (m[2], ospf[1])
        assert state.get(key, ospf[3] if ospf[3] == "FULL" else "DOWN") == ("FULL" if ospf[3] == "FULL" else "DOWN")
        state[key] = ospf[4]
        changes += 1
    assert changes > COUNT // 20 and set(state.values()) == {"FULL", "DOWN"}


def test_ios_times_keep_the_order_of_a_devices_sequence_numbers() -> None:
    """All stamped in one second (as the pool stamps what it sends in a second): per device, the
    milliseconds never go down as the numbers go up."""
    by_device: dict[str, list[tuple[int, str, int]]] = {}
    for m in ios_lines():
        by_device.setdefault(m[2], []).append((int(m[1]), m[3], int(m[4])))
    assert len(by_device) == len(cisco.IOS_HOSTS)
    for device, stamped in by_device.items():
        stamped.sort()
        times = [(stamp, msec) for _, stamp, msec in stamped]
        assert times == sorted(times), device
        assert len({msec for _, msec in times}) > 100, device          # a fraction, not a constant


IOS_LOGIN_AT = re.compile(r" at (\d\d:\d\d:\d\d) UTC (\w{3}) (\w{3}) ([ \d]\d) (\d{4})$")


def test_an_ios_login_says_when_it_happened_at_the_time_it_is_logged() -> None:
    """'Login Success ... at 20:13:50 UTC Sun Dec  6 2026': the clock of the login is the log's own
    (a stamp the pool keeps current), not a date fixed when the text was written."""
    logins = 0
    for m in ios_lines():
        if m[5].startswith("SEC_LOGIN"):
            at = IOS_LOGIN_AT.search(m[6])
            assert at, m[6]
            assert time.strftime("%H:%M:%S %a %b %e %Y", time.gmtime(NOW)) == " ".join(at.groups()[:4]) + " " + at[5]
            assert m[3].endswith(at[1])
            logins += 1
    assert logins > COUNT // 20


BSD_LINE = re.compile(r"^<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (.*)$")


def panos_seconds(stamp: str) -> int:
    return calendar.timegm(time.strptime(stamp, "%Y/%m/%d %H:%M:%S"))


def test_a_panos_session_started_its_elapsed_time_before_it_was_logged() -> None:
    """TRAFFIC columns (PAN-OS 10.2 field list): receive time 1, generated time 6, start time 35, elapsed 36."""
    rows = [next(csv.reader([m[1]])) for m in (BSD_LINE.match(x) for x in lines(source(paloalto, "paloalto"))) if m]
    traffic = [r for r in rows if r[3] == "TRAFFIC"]
    assert len(traffic) > COUNT // 2 and len({r[36] for r in traffic}) > 8
    for r in traffic:
        assert r[1] == r[6] and panos_seconds(r[35]) == panos_seconds(r[6]) - int(r[36]), r[:7] + r[35:37]


CHECKPOINT_FIELD = re.compile(r'(\w+):"([^"]*)"')


def test_a_checkpoint_connection_started_its_elapsed_time_before_its_log_update() -> None:
    updates = [dict(CHECKPOINT_FIELD.findall(x)) for x in lines(source(checkpoint, "checkpoint"))
               if 'product:"Log Update"' in x]
    assert len(updates) > COUNT // 4 and len({u["elapsed"] for u in updates}) > 8
    for u in updates:
        assert int(u["start_time"]) == int(u["time"]) - int(u["elapsed"]), u


FORTIOS_PAIR = re.compile(r'(\w+)=("[^"]*"|\S*)')


def test_a_fortigate_dns_filter_log_is_a_dns_query() -> None:
    """utm:dns (FortiOS log 1501054802, dns-response): to port 53, UDP but for a few over TCP."""
    dns = [dict((k, v.strip('"')) for k, v in FORTIOS_PAIR.findall(x)) for x in lines(source(fortinet, "fortigate"))
           if 'type="utm" subtype="dns"' in x]
    assert len(dns) > COUNT // 20
    assert all(d["dstport"] == "53" and d["proto"] in ("17", "6") for d in dns)
    assert sum(d["proto"] == "17" for d in dns) >= 0.9 * len(dns)


# Microsoft, event 4624: the logon process and package each logon type goes through.
LOGON_PROCESSES = {2: {("User32", "Negotiate")}, 7: {("User32", "Negotiate")}, 10: {("User32", "Negotiate")},
                   11: {("User32", "Negotiate")}, 3: {("NtLmSsp", "NTLM"), ("Kerberos", "Kerberos")},
                   5: {("Advapi", "Negotiate")}}


def test_a_windows_logon_type_fits_its_account_and_logon_process() -> None:
    events = [json.loads(x[x.index("{"):]) for x in lines(source(windows, "windows-security"), "json")]
    logons = {e["TargetLogonId"]: e for e in events if e["EventID"] == 4624}
    assert {e["LogonType"] for e in logons.values()} == set(LOGON_PROCESSES)
    for e in logons.values():
        assert (e["LogonProcessName"].strip(), e["AuthenticationPackageName"]) in LOGON_PROCESSES[e["LogonType"]], e
    for e in logons.values():
        kind = e["LogonType"]
        service_account = e["TargetUserName"] in windows.SERVICE_ACCOUNTS
        assert service_account == (kind == 5), e
        assert e["ProcessName"] == {3: "-", 5: windows.SERVICES_EXE}.get(kind, windows.WINLOGON), e
    logoffs = [e for e in events if e["EventID"] == 4634]
    assert len(logoffs) > COUNT // 20
    assert all(e["LogonType"] == logons[e["TargetLogonId"]]["LogonType"] for e in logoffs)


FIRST_EXCHANGE = 0.2                  # seconds from a connection's start to its TLS hello or HTTP request, at most


def test_a_zeek_protocol_record_lies_within_its_connection() -> None:
    """Same uid: a dns record at its conn's start, an ssl or http one within the first exchanges
    (a round trip or so: FIRST_EXCHANGE) and never after the conn ended (ts + duration)."""
    records = [json.loads(x[x.index("{"):]) for x in lines(source(ids, "zeek"))]
    conns = {r["uid"]: r for r in records if r["_path"] == "conn"}
    apps = [r for r in records if r["_path"] != "conn"]
    assert {r["_path"] for r in apps} == {"ssl", "http", "dns"} and len(apps) > COUNT // 3
    for r in apps:
        conn = conns[r["uid"]]
        after = r["ts"] - conn["ts"]
        assert -1e-6 <= after <= min(conn["duration"], FIRST_EXCHANGE) + 1e-6, (r, conn)
        if r["_path"] == "dns":
            assert after == 0, (r, conn)
