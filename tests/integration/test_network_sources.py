"""The network sources' messages go through syslog-ng's own vendor parsers (its scl), 10,000 each.

Each source's default form is fed to the parser a SIEM would use for it (cisco-parser(),
panos-parser(), fortigate-parser(), checkpoint-parser(), the junos application, iptables-parser()),
one private syslog-ng start per source (tests/support/sngparse.py). At least 99.9 % must be
recognised; what the parser extracted must be valid (addresses parse, ports 0-65535, bytes =
sent + received, the proof of delivery numbering every message in order); conversations hold
(every ASA Teardown closes a Built connection with the same sizes; every SRX close follows its
create). syslog-ng 3.38 has no CEF parser, so the CEF forms go through csv-parser() on the header
and kv-parser() on the extension, the way syslog-ng users parse CEF with it.
"""

from __future__ import annotations

import ipaddress
import random
import re

import pytest

from loggend.content.model import Source
from tests.support import sngparse
from tests.support.drafts import lines

REASON = sngparse.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")
COUNT = 10_000
MIN_RECOGNISED = 0.999
CEF_PARSER = ('csv-parser(columns("cef.version", "cef.vendor", "cef.product", "cef.device_version", '
              '"cef.signature", "cef.name", "cef.severity", "cef.ext") delimiters("|") flags(greedy) '
              'template("$MSG") drop-invalid(yes)); kv-parser(template("${cef.ext}") prefix("cef."))')
Row = dict[str, str]


def run(source: Source, parser: str, form: str = "native", flags: str = "no-parse") -> tuple[list[str], list[Row]]:
    sent = lines(source, COUNT, form)
    rows = sngparse.parse(sent, parser, flags=flags)
    return sent, rows


def accepted(rows: list[Row], key: str, parser_ok: bool = True) -> list[Row]:
    good = [r for r in rows if (r.get(sngparse.OK_KEY) == "1" or not parser_ok) and r.get(key)]
    assert len(good) >= MIN_RECOGNISED * len(rows), f"{len(rows) - len(good)} of {len(rows)} not recognised"
    return good


def check_address(*values: str) -> None:
    for v in values:
        ipaddress.ip_address(v)


def check_port(*values: str) -> None:
    for v in values:
        assert 0 <= int(v) <= 65535, v


def check_numbered(rows: list[Row], stream_key: str, seq_key: str, stream: str = "t0") -> None:
    """Proof of delivery survives the parser: every message carries the stream and its own number."""
    assert [r[stream_key] for r in rows] == [stream] * len(rows)
    assert [int(r[seq_key]) for r in rows] == list(range(len(rows)))


def cef_accepted(source: Source, vendor: str, seq_key: str = "cef.loggenSeq") -> list[Row]:
    """The source's CEF form through csv-parser() and kv-parser(): recognised, numbered, its vendor's."""
    _, rows = run(source, CEF_PARSER, form="cef", flags="")
    good = accepted(rows, "cef.ext")
    check_numbered(rows, "cef.loggenStream", seq_key)
    assert {r["cef.vendor"] for r in good} == {vendor}
    for r in good:
        if "cef.src" in r:
            check_address(r["cef.src"], r["cef.dst"])
        if "cef.spt" in r:
            check_port(r["cef.spt"], r["cef.dpt"])
    return good


def test_juniper_srx_through_the_junos_application() -> None:
    from loggend.content.juniper import SD_ID, SOURCES
    sd = f".SDATA.{SD_ID}."
    _, rows = run(SOURCES[0], "app-parser(topic(syslog))", flags="syslog-protocol")
    good = accepted(rows, sd + "source-address", parser_ok=False)    # syslog() parsed the junos SD
    check_numbered(rows, ".SDATA.loggen@32473.stream", ".SDATA.loggen@32473.seq")
    created: dict[tuple[str, str], Row] = {}
    closes = 0
    for r in good:
        check_address(r[sd + "source-address"], r[sd + "destination-address"])
        check_port(r[sd + "source-port"], r[sd + "destination-port"])
        key = (r["HOST"], r[sd + "session-id-32"])
        if r["MSGID"] == "RT_FLOW_SESSION_CREATE":
            # Junos creates carry no reason (Juniper's "Session Create Log Fields" table has none) and 3.38's junos
            # application keys on reason=: default-network-drivers() leaves creates unrecognised, as it would a
            # real SRX's; their fields come from the structured data all the same
            assert sd + "reason" not in r and r.get(".app.name") is None
            check_address(r[sd + "nat-source-address"])
            created[key] = r
            continue
        assert r[".app.name"] == "junos" and r[sngparse.OK_KEY] == "1", r["MSGID"]
        if r["MSGID"] == "RT_FLOW_SESSION_CLOSE":
            opened = created.pop(key)                 # a close follows its create
            for field in ("source-address", "source-port", "nat-source-address", "nat-source-port",
                          "destination-address", "destination-port", "policy-name", "application"):
                assert opened[sd + field] == r[sd + field], field
            assert int(r[sd + "bytes-from-client"]) > 0 and int(r[sd + "bytes-from-server"]) > 0
            assert int(r[sd + "elapsed-time"]) >= 0
            closes += 1
        else:
            assert r[sd + "reason"] == "Denied by policy"
    assert not created, f"{len(created)} sessions created and never closed"
    assert closes > COUNT // 3


def test_fortigate_native_through_fortigate_parser() -> None:
    from loggend.content.fortinet import SOURCES
    p = ".fortigate."
    _, rows = run(SOURCES[0], "fortigate-parser()")
    good = accepted(rows, p + "devname")
    check_numbered(rows, p + "loggen_stream", p + "loggen_seq")
    kinds = set()
    for r in good:
        kinds.add(f"{r[p + 'type']}:{r[p + 'subtype']}")
        assert r[p + "devid"].startswith("FG") and r[p + "date"] and r[p + "time"]
        if p + "srcip" in r:
            check_address(r[p + "srcip"], r[p + "dstip"])
        if p + "srcport" in r:
            check_port(r[p + "srcport"], r[p + "dstport"])
        if r[p + "type"] == "traffic":
            if r[p + "action"] == "deny":
                assert r[p + "policyid"] == "0" and r[p + "sentbyte"] == "0"
            else:
                assert int(r[p + "sentbyte"]) > 0 and int(r[p + "rcvdbyte"]) > 0
            if r[p + "trandisp"] == "snat":
                assert ipaddress.ip_address(r[p + "transip"]) in ipaddress.ip_network("198.18.0.0/28")
    assert kinds == {k.name for k in SOURCES[0].kinds}


def test_fortigate_cef_through_csv_and_kv_parsers() -> None:
    from loggend.content.fortinet import SOURCES
    for r in cef_accepted(SOURCES[0], "Fortinet"):
        assert r["cef.product"] == "Fortigate" and r["cef.deviceExternalId"].startswith("FG")
        if r["cef.cat"] == "traffic:forward" and r["cef.act"] != "deny":
            assert int(r["cef.out"]) > 0 and int(r["cef.in"]) > 0


def test_checkpoint_native_through_checkpoint_parser() -> None:
    from loggend.content.checkpoint import SOURCES
    p = ".checkpoint."
    _, rows = run(SOURCES[0], "checkpoint-parser()")
    good = accepted(rows, p + "loguid")
    check_numbered(rows, p + "loggen_stream", p + "loggen_seq")
    accepts: dict[str, Row] = {}
    updates = 0
    for r in good:
        assert r["PROGRAM"] == "CheckPoint" and r["HOST"].startswith("cp-gw-")
        check_address(r[p + "origin"])
        if p + "bytes" not in r:
            check_address(r[p + "src"], r[p + "dst"])
            check_port(r[p + "s_port"], r[p + "service"])
            if r[p + "outzone"] == "External" and r[p + "action"] == "Accept":
                assert ipaddress.ip_address(r[p + "xlatesrc"]) in ipaddress.ip_network("198.18.0.0/28")
            if r[p + "action"] == "Accept":
                accepts[r[p + "loguid"]] = r
            else:
                assert (r[p + "action"], r[p + "rule_name"]) == ("Drop", "Cleanup rule")
            continue
        opened = accepts.pop(r[p + "loguid"])            # the accounting record follows its Accept
        assert (opened["HOST"], opened[p + "origin"], opened[p + "ifname"]) == (r["HOST"], r[p + "origin"],
                                                                               r[p + "ifname"])
        assert int(r[p + "bytes"]) == int(r[p + "client_inbound_bytes"]) + int(r[p + "client_outbound_bytes"])
        assert int(r[p + "elapsed"]) >= 0
        updates += 1
    assert not accepts, f"{len(accepts)} connections accepted and never accounted"
    assert updates > COUNT // 3


def test_checkpoint_cef_through_csv_and_kv_parsers() -> None:
    from loggend.content.checkpoint import SOURCES
    for r in cef_accepted(SOURCES[0], "Check Point"):
        assert r["cef.device_version"] == "Check Point"
        if "cef.bytes" in r:                             # an accounting record: sizes, no addresses
            assert int(r["cef.bytes"]) == int(r["cef.in"]) + int(r["cef.out"])
        else:
            assert "cef.src" in r and "cef.spt" in r


def test_iptables_through_the_iptables_application() -> None:
    from loggend.content.iptables import SOURCES
    p = ".iptables."
    _, rows = run(SOURCES[0], "app-parser(topic(syslog))", flags="")
    good = accepted(rows, p + "SRC")
    check_numbered(rows, p + "loggen_stream", p + "loggen_seq")
    public = ipaddress.ip_network("198.18.0.0/28")
    prefixes = set()
    for r in good:
        assert (r[".app.name"], r["PROGRAM"], r["FACILITY"]) == ("iptables", "kernel", "kern")
        check_address(r[p + "SRC"], r[p + "DST"])
        check_port(r[p + "SPT"], r[p + "DPT"])
        assert 1 <= int(r[p + "TTL"]) <= 255 and r[p + "PROTO"] in ("TCP", "UDP")
        prefix = r["MESSAGE"].split("] ", 1)[1].split(":", 1)[0]
        prefixes.add(prefix)
        if prefix == "FW-DROP-IN":                     # unsolicited packets to the company's public addresses
            assert r[p + "IN"] == "eth0" and ipaddress.ip_address(r[p + "DST"]) in public
        else:                                          # forwarded from the inside
            assert (r[p + "IN"], r[p + "OUT"]) == ("eth1", "eth0") and ipaddress.ip_address(r[p + "SRC"]).is_private
    assert prefixes == {k.name for k in SOURCES[0].kinds}


ASA_BUILT = re.compile(r"Built (inbound|outbound) (TCP|UDP) connection (\d+) for (\w+):([\d.]+)/(\d+) "
                       r"\(([\d.]+)/(\d+)\) to (\w+):([\d.]+)/(\d+) \(([\d.]+)/(\d+)\)$")
ASA_TEARDOWN = re.compile(r"Teardown (TCP|UDP) connection (\d+) for (\w+):([\d.]+)/(\d+) to (\w+):([\d.]+)/(\d+) "
                          r"duration (\d+):(\d\d):(\d\d) bytes (\d+)( [\w -]+)?$")
ASA_XLATE = re.compile(r"Built dynamic (TCP|UDP) translation from inside:([\d.]+)/(\d+) to outside:([\d.]+)/(\d+)$")


def test_cisco_asa_through_cisco_parser_and_its_conversations() -> None:
    from loggend.content.cisco import SOURCES
    _, rows = run(SOURCES[0], "cisco-parser()")
    good = accepted(rows, ".cisco.mnemonic")
    nat_pool = ipaddress.ip_network("198.18.0.0/28")
    built: dict[str, tuple[str, ...]] = {}
    xlate: tuple[str, ...] | None = None
    teardowns = 0
    for r in good:
        assert r[".cisco.facility"] == "ASA"
        text = r["MESSAGE"].split(": ", 1)[1]
        mnemonic = r[".cisco.mnemonic"]
        if mnemonic == "305011":
            m = ASA_XLATE.match(text)
            assert m, text
            check_address(m[2], m[4])
            assert ipaddress.ip_address(m[4]) in nat_pool
            xlate = m.groups()
        elif mnemonic in ("302013", "302015"):
            m = ASA_BUILT.match(text)
            assert m, text
            check_address(m[5], m[7], m[10], m[12])
            check_port(m[6], m[8], m[11], m[13])
            if m[1] == "outbound" and m[4] == "outside":     # the translation logged just before it
                assert xlate is not None and (xlate[1], xlate[2], xlate[3], xlate[4]) == (m[10], m[11], m[12], m[13])
            built[m[3]] = (m[2], m[5], m[6], m[10], m[11])
        elif mnemonic in ("302014", "302016"):
            m = ASA_TEARDOWN.match(text)
            assert m, text
            opened = built.pop(m[2])                         # every Teardown closes a Built connection
            assert opened == (m[1], m[4], m[5], m[7], m[8])
            # an embryonic connection (SYN Timeout) carried nothing; every other one carried data
            assert (int(m[12]) == 0) == (m[13] == " SYN Timeout") and int(m[10]) < 60 and int(m[11]) < 60
            teardowns += 1
    assert not built, f"{len(built)} connections built and never torn down"
    assert teardowns > COUNT // 3


def test_cisco_ios_through_cisco_parser() -> None:
    from loggend.content.cisco import SOURCES
    sent, rows = run(SOURCES[1], "cisco-parser()")
    good = accepted(rows, ".cisco.mnemonic")
    last: dict[str, int] = {}
    kinds = set()
    for line, r in zip(sent, good, strict=True):
        kinds.add(f"{r['.cisco.facility']}-{r['.cisco.severity']}-{r['.cisco.mnemonic']}")
        number = int(line.split(">", 1)[1].split(":", 1)[0])    # the device's sequence number
        assert number == last.get(r["HOST"], number - 1) + 1, r["HOST"]
        last[r["HOST"]] = number
    assert set(last) == set(SOURCES[1].identity(random.Random(7)).hosts)
    assert kinds == {k.name for k in SOURCES[1].kinds}


def test_paloalto_native_through_the_panos_application() -> None:
    from loggend.content.paloalto import SOURCES
    p = ".panos."
    _, rows = run(SOURCES[0], "app-parser(topic(syslog))", flags="")
    good = accepted(rows, p + "device_name")
    nat_pool = ipaddress.ip_network("198.18.0.0/28")
    last: dict[str, int] = {}
    rule_uuids: dict[str, str] = {}
    types = set()
    for r in good:
        assert r[".app.name"] == "panos" and r[p + "device_name"] == r["HOST"]   # every column where it belongs
        types.add(r[p + "type"])
        seqno = int(r[p + "seqno"])                        # the firewall's own log numbering counts up
        assert seqno > last.get(r["HOST"], 0)
        last[r["HOST"]] = seqno
        if r[p + "type"] not in ("TRAFFIC", "THREAT"):
            continue
        check_address(r[p + "src"], r[p + "dst"], r[p + "natsrc"], r[p + "natdst"])
        check_port(r[p + "sport"], r[p + "dport"], r[p + "natsport"], r[p + "natdport"])
        assert rule_uuids.setdefault(r[p + "rule"], r[p + "rule_uuid"]) == r[p + "rule_uuid"]
        if r[p + "from"] == "trust" and r[p + "to"] == "untrust":
            assert ipaddress.ip_address(r[p + "natsrc"]) in nat_pool
        if r[p + "type"] == "TRAFFIC":
            assert int(r[p + "bytes"]) == int(r[p + "bytes_sent"]) + int(r[p + "bytes_received"])
            assert int(r[p + "packets"]) == int(r[p + "pkts_sent"]) + int(r[p + "pkts_received"])
            assert (r[p + "action"] == "deny") == (r[p + "session_end_reason"] == "policy-deny")
        else:
            assert r[p + "severity"] in ("informational", "low", "medium", "high", "critical")
            assert r[p + "direction"] in ("client-to-server", "server-to-client")
    assert types == {k.name for k in SOURCES[0].kinds}


def test_paloalto_cef_numbers_messages_with_its_sequence_number() -> None:
    from loggend.content.paloalto import SOURCES
    for r in cef_accepted(SOURCES[0], "Palo Alto Networks", seq_key="cef.externalId"):
        assert r["cef.product"] == "PAN-OS"
        if r["cef.name"] == "TRAFFIC":
            assert "cef.src" in r and "cef.spt" in r
            assert int(r["cef.flexNumber1"]) == int(r["cef.in"]) + int(r["cef.out"])


def test_default_network_drivers_picks_each_sources_parser_by_itself() -> None:
    """Mixed on one port, each source's native lines reach their own application (junos: the
    sessions that carry reason=, close and deny; 3.38's junos application keys on it)."""
    from loggend.content import checkpoint, cisco, fortinet, iptables, juniper, paloalto
    expected = {"cisco-asa": "cisco", "cisco-ios": "cisco", "paloalto": "panos", "fortigate": "fortigate",
                "checkpoint": "checkpoint", "juniper-srx": "junos", "iptables": "iptables"}
    sent: list[tuple[str, str]] = []
    for module in (cisco, paloalto, fortinet, checkpoint, juniper, iptables):
        for source in module.SOURCES:
            sent += [(source.name, line) for line in lines(source, 300)]
    random.Random(3).shuffle(sent)
    rows = sngparse.parse([line for _, line in sent], None, path=sngparse.DEFAULT_NETWORK_DRIVERS)
    for (name, line), r in zip(sent, rows, strict=True):
        if name == "juniper-srx" and "RT_FLOW_SESSION_CREATE" in line:
            continue
        assert r.get(".app.name") == expected[name], (name, line[:120])


def test_attack_scenarios_reach_the_same_vendor_parsers_with_the_attackers_address() -> None:
    """port-scan and exfiltration as each firewall logs them, mixed on one port: syslog-ng's
    default-network-drivers() hands each line to its vendor's application, which extracts the
    attacker's address (log content only) where that vendor's parser has a field for it."""
    from loggend.content.scenarios import Background, instance, message, parse
    apps = {"iptables": "iptables", "cisco-asa": "cisco", "paloalto": "panos", "fortigate": "fortigate"}
    fields = {"iptables": (".iptables.SRC", ".iptables.DST"), "panos": (".panos.src", ".panos.dst"),
              "fortigate": (".fortigate.srcip", ".fortigate.dstip")}
    sent: list[tuple[str, str, str]] = []
    for firewall in apps:
        scans = [f"port-scan:ports=20,firewall={firewall}"]
        if firewall != "iptables":
            scans.append(f"exfiltration:connections=3,firewall={firewall}")
        for text in scans:
            inst = instance(parse("test", text), Background(), 1)
            for seq, step in enumerate(inst.steps):
                sent.append((apps[firewall], inst.source, message(step, 1_796_591_045.0, True, "scn", seq).decode()))
    rows = sngparse.parse([line for _, _, line in sent], None, path=sngparse.DEFAULT_NETWORK_DRIVERS)
    for (app, attacker, line), r in zip(sent, rows, strict=True):
        assert r.get(".app.name") == app, line[:160]
        if app in fields:
            assert attacker in (r.get(fields[app][0]), r.get(fields[app][1])), (app, line[:160])
        else:
            assert attacker in r["MESSAGE"] and r.get(".cisco.mnemonic") in ("106023", "302013", "302014")
