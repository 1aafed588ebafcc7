"""Palo Alto Networks PAN-OS: TRAFFIC, THREAT, SYSTEM and CONFIG logs in the PAN-OS 10/11 CSV order.

Native (syslog server profile, BSD format, default log formats): ``<14>Dec  6 21:04:05 PA-3220-HQ
1,2026/12/06 21:04:05,016201001234,TRAFFIC,end,2561,2026/12/06 21:04:05,10.10.4.7,151.101.1.69,
198.18.0.3,151.101.1.69,allow-web-out,corp\\jdoe,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,...``
with every column of the PAN-OS 10.2/11.x field lists (empty where the device has nothing to
say). A TRAFFIC end log is one closed session: bytes = bytes sent + bytes received, packets likewise,
source NAT from the firewall's share of the company's egress pool, rule names and uuids from its
policy; its start time is its generated time less its elapsed seconds (``flows.elapsed``: one of
a few distances, each a stamp style the pool rewrites).
THREAT logs are mostly URL filtering (url subtype), then vulnerability and spyware.

CEF (the Palo Alto CEF configuration guide's format strings): ``CEF:0|Palo Alto Networks|PAN-OS|
11.1.2|end|TRAFFIC|1|rt=... src=... externalId=<sequence number>`` after an RFC 3164 header.

Proof of delivery: in CEF the stream goes in a ``loggenStream`` extension right before
``externalId``, the log's own sequence number. The native CSV has a fixed column count and its
sequence-number column follows a different column in each log type (THREAT: the direction), so no
literal text can name a stream right before it: native PAN-OS has no proof (the sink cannot count
its loss); its sequence numbers still count up per firewall, as the device's do.
"""

from __future__ import annotations

import itertools
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator

from loggend.content import flows, netplan
from loggend.content.flows import Flow
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Part, Proof, Source, Stamp

VERSION = "11.1.2"
PRI = {"informational": "<14>", "low": "<13>", "medium": "<12>", "high": "<11>", "critical": "<10>"}
CEF_PROOF = Proof(" loggenStream=", " ", "externalId=", " ")
NO_PROOF = ("PAN-OS CSV has a fixed column count and its sequence-number column follows a different column in "
            "each log type, so no stream id can sit right before it; the sink cannot count this form's loss "
            "(--format cef can)")
HOSTS = ("PA-3220-HQ", "PA-3220-DC1")
DEVICE_ID_COLUMNS = 17                             # source/destination device category ... MAC (PAN-OS 10.0+)
CONTAINER_COLUMNS = 9                              # container id ... destination dynamic address group
APP_META = {"ssl": ("encrypted-tunnel", "networking", "browser-based", "4"),
            "web-browsing": ("internet-utility", "general-internet", "browser-based", "4"),
            "dns": ("infrastructure", "networking", "network-protocol", "3"),
            "quic": ("internet-utility", "general-internet", "browser-based", "2"),
            "ms-ds-smb": ("file-sharing", "general-internet", "client-server", "4")}
STAMP = "\0"                                       # where the PAN-OS time stamp goes in a row
HIRES = "\1"                                       # where the high-resolution time stamp goes
CEF_TIME = "\2"                                    # where the CEF rt time stamp goes
CONFIG_VERSION = "2561"
THREAT_DIRECTIONS = ("outbound",) * 4 + ("inbound",)    # threats are seen on Internet-facing traffic
ZONES = {"outbound": ("trust", "untrust"), "internal": ("trust", "servers"), "inbound": ("untrust", "dmz")}
IFACES = {"trust": "ethernet1/2", "untrust": "ethernet1/1", "servers": "ethernet1/3", "dmz": "ethernet1/4"}
RULES = {"outbound": "allow-web-out", "internal": "allow-servers", "inbound": "dmz-web-inbound",
         "deny": "interzone-default"}
USERS = ("jdoe", "asmith", "mgarcia", "lchen", "pwilson", "kpatel", "svc-backup")
URL_CATEGORIES = (("computer-and-internet-info", 30), ("business-and-economy", 20), ("search-engines", 14),
                  ("social-networking", 10), ("news", 8), ("streaming-media", 8), ("malware", 1), ("phishing", 1))
VULNS = (("Microsoft Windows SMB Remote Code Execution Vulnerability", 41234, "critical", "vulnerability"),
         ("Apache Log4j Remote Code Execution Vulnerability", 91991, "critical", "vulnerability"),
         ("HTTP SQL Injection Attempt", 38195, "high", "vulnerability"),
         ("Suspicious DNS Query (generic:c2-domain)", 109010001, "medium", "spyware"),
         ("Cobalt Strike Beacon Command and Control Traffic", 86449, "critical", "spyware"))
SYSTEM_EVENTS = (("general", "informational", "general", "User {user} logged in via Web from {ip} using https"),
                 ("auth", "medium", "auth-fail", "failed authentication for user {user}. Reason: Invalid username/"
                                                 "password. From: {ip}."),
                 ("general", "informational", "general", "Committed configuration by {user}"),
                 ("ha", "informational", "ha2-link-change", "HA2 peer link up"))
KINDS = (Kind("TRAFFIC", 76, "a session ended: NAT, rule, application, bytes and packets each way, end reason"),
         Kind("THREAT", 18, "URL filtering, vulnerability and spyware detections"),
         Kind("SYSTEM", 4, "admin logins, authentication failures, commits, HA"),
         Kind("CONFIG", 2, "configuration changes by an administrator"))


def _hires(seconds: float, utc: bool) -> bytes:
    t = time.gmtime(seconds) if utc else time.localtime(seconds)
    offset = "+00:00" if utc else time.strftime("%z", t)[:3] + ":" + time.strftime("%z", t)[3:]
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.000"
            f"{offset}").encode()


STAMP_HIRES = Stamp("panos-hires", _hires)
SITES: dict[str, Part] = {STAMP: flows.STAMP_PANOS, HIRES: STAMP_HIRES, CEF_TIME: flows.STAMP_CEF}
SITE_SPLIT = re.compile("([\0\1\2])")


def identity(rng: random.Random) -> Identity:
    serials = tuple(f"0162010{rng.randint(0, 99999):05d}" for _ in HOSTS)
    rule_uuids = tuple(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in RULES)
    return Identity(HOSTS, {"serials": serials, "nat_pool": flows.nat_pool(rng), "rule_uuids": rule_uuids})


class _Firewall:
    def __init__(self, ident: Identity, rng: random.Random) -> None:
        self.ident = ident
        self.rng = rng
        self.sessions = flows.Counter(rng, 10_000, 4_000_000)
        self.seqnos = [rng.randint(10**9, 10**10) for _ in ident.hosts]

    def rule(self, f: Flow) -> tuple[str, str]:
        key = f.direction if f.allowed else "deny"
        return RULES[key], self.ident.extra["rule_uuids"][list(RULES).index(key)]

    def user(self, f: Flow) -> str:
        return f"corp\\{self.rng.choice(USERS)}" if f.direction != "inbound" and self.rng.random() < 0.7 else ""


def _head(fw: _Firewall, h: int, kind: str, subtype: str) -> list[str]:
    return ["1", STAMP, fw.ident.extra["serials"][h], kind, subtype, CONFIG_VERSION, STAMP]


def _addresses(f: Flow) -> list[str]:
    natsrc = f.nat_src if f.direction == "outbound" else "0.0.0.0"
    natdst = f.nat_dst if f.direction == "inbound" else ("0.0.0.0" if f.direction != "outbound" else f.dst)
    return [f.src, f.dst, natsrc, natdst]


def _session_cols(fw: _Firewall, f: Flow, sid: int, action: str) -> list[str]:
    src_zone, dst_zone = ZONES[f.direction]
    rule, _ = fw.rule(f)
    natsport = str(f.nat_sport) if f.direction == "outbound" else "0"
    natdport = str(f.dport) if f.direction in ("outbound", "inbound") else "0"
    return [*_addresses(f), rule, fw.user(f), "", f.app if f.allowed else "not-applicable", "vsys1", src_zone, dst_zone,
            IFACES[src_zone], IFACES[dst_zone], "default", STAMP, str(sid), "1", str(f.sport), str(f.dport),
            natsport, natdport, "0x400053" if f.direction == "outbound" else "0x400019", f.proto, action]


def _location(address: str) -> str:
    return "10.0.0.0-10.255.255.255" if address.startswith("10.") else ("United States" if address[0] < "5" else "DE")


def _app_meta(app: str) -> list[str]:
    """Application subcategory, category, technology and risk, as App-ID describes them."""
    return list(APP_META.get(app, ("infrastructure", "networking", "client-server", "2")))


def _traffic(fw: _Firewall, h: int, f: Flow, seqno: int) -> list[str]:
    _, rule_uuid = fw.rule(f)
    elapsed = flows.elapsed(f)
    action = "allow" if f.allowed else "deny"
    end = ("tcp-fin" if f.proto == "tcp" else "aged-out") if f.allowed else "policy-deny"
    tail = ["from-policy", "", "", "0", "", "0", "", "N/A", "0", "0", "0", "0", rule_uuid, "0", "0", "0", "",
            "", "", "", "", "", "", *[""] * DEVICE_ID_COLUMNS, *[""] * CONTAINER_COLUMNS, "", HIRES, "", "",
            *_app_meta(f.app), "", "", "untunneled", "no", "no"]
    return [*_head(fw, h, "TRAFFIC", "end" if f.allowed else "deny"), *_session_cols(fw, f, fw.sessions.next(), action),
            str(f.bytes), str(f.sent), str(f.rcvd), str(f.packets), flows.ago_mark(elapsed), str(elapsed), "any",
            "0", str(seqno),
            "0x0", _location(f.src), _location(f.dst), "0", str(f.pkts_sent), str(f.pkts_rcvd), end,
            "0", "0", "0", "0", "", HOSTS[h], *tail]


def _threat(fw: _Firewall, h: int, f: Flow, seqno: int) -> list[str]:
    rng = fw.rng
    rule, rule_uuid = fw.rule(f)
    if rng.random() < 0.8:
        cats = [c for c, _ in URL_CATEGORIES]
        category = rng.choices(cats, [w for _, w in URL_CATEGORIES])[0]
        blocked = category in ("malware", "phishing")
        host = netplan.domain(rng)
        cols = _session_cols(fw, f, fw.sessions.next(), "block-url" if blocked else "alert")
        threat = [f'"{host}/"', "(9999)", category, "medium" if blocked else "informational", "client-to-server"]
        subtype, agent, method = "url", "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "get"
    else:
        name, tid, severity, subtype = rng.choice(VULNS)
        cols = _session_cols(fw, f, fw.sessions.next(), "reset-both" if severity == "critical" else "alert")
        threat = ["", f"{name}({tid})", "any", severity, "server-to-client" if subtype == "spyware" else
                  "client-to-server"]
        agent, method, category = "", "", "any"
    return [*_head(fw, h, "THREAT", subtype), *cols, *threat, str(seqno), "0x0", _location(f.src), _location(f.dst),
            "0", "text/html" if subtype == "url" else "", "0", "", "", str(rng.randint(1, 9999)), agent, "", "", "",
            "", "", "", "", "0", "0", "0", "0", "", HOSTS[h], "", "", "", method, "0", "", "0", "", "N/A",
            "unknown" if subtype == "url" else subtype, "AppThreat-8876-8812", "0x0", "0", "4294967295", "",
            f'"{category}"', rule_uuid, "0"]


def _system(fw: _Firewall, h: int, f: Flow, seqno: int) -> list[str]:
    rng = fw.rng
    module, severity, eventid, text = rng.choice(SYSTEM_EVENTS)
    description = text.format(user=rng.choice(("admin", "netops")), ip=netplan.internal_client(rng))
    return [*_head(fw, h, "SYSTEM", module), "", eventid, "", "0", "0", module, severity, description, str(seqno),
            "0x0", "0", "0", "0", "0", "", HOSTS[h]]


def _config(fw: _Firewall, h: int, f: Flow, seqno: int) -> list[str]:
    rng = fw.rng
    rule = rng.choice(list(RULES.values()))
    cmd = rng.choice(("set", "edit", "commit", "delete"))
    path = "" if cmd == "commit" else f" vsys  vsys1 rulebase security rules  {rule}"
    return [*_head(fw, h, "CONFIG", "0"), netplan.internal_client(rng), "vsys1", cmd, rng.choice(("admin", "netops")),
            "Web", "Submitted" if cmd == "commit" else "Succeeded", path, str(seqno), "0x0", "0", "0", "0", "0", "",
            HOSTS[h]]


BUILDERS: dict[str, Callable[[_Firewall, int, Flow, int], list[str]]] = {
    "TRAFFIC": _traffic, "THREAT": _threat, "SYSTEM": _system, "CONFIG": _config}


def _with_sites(text: str) -> list[Part]:
    """The row's text with its time-stamp placeholders replaced by stamp sites (a TRAFFIC log's
    start time: its generated time less the session's elapsed seconds)."""
    parts: list[Part] = []
    for piece in SITE_SPLIT.split(text):
        site = SITES.get(piece)
        if site is not None:
            parts.append(site)
        elif piece:
            parts.extend(flows.with_ago(flows.STAMP_PANOS, piece))
    return parts


def _severity(kind: str, row: list[str]) -> str:
    if kind == "THREAT":
        return row[7 + 27]
    if kind == "SYSTEM":
        return row[7 + 6]
    return "informational"


def _native(h: int, kind: str, row: list[str]) -> Draft:
    return (PRI[_severity(kind, row)], flows.STAMP_RFC3164, f" {HOSTS[h]} ", *_with_sites(",".join(row)))


CEF_TRAFFIC = {7: "src", 8: "dst", 9: "sourceTranslatedAddress", 10: "destinationTranslatedAddress", 11: "cs1",
               12: "suser", 14: "app", 16: "cs4", 17: "cs5", 18: "deviceInboundInterface",
               19: "deviceOutboundInterface", 22: "cn1", 24: "spt", 25: "dpt", 26: "sourceTranslatedPort",
               27: "destinationTranslatedPort", 29: "proto", 30: "act"}
CEF_EXTRA = {"TRAFFIC": {31: "flexNumber1", 32: "out", 33: "in", 34: "cn2", 36: "cn3", 46: "reason"},
             "THREAT": {31: "request", 32: "cs6", 33: "cat", 35: "deviceDirection"}}
CEF_LABELS = ("cs1Label=Rule cs4Label=Source Zone cs5Label=Destination Zone cn1Label=SessionID "
              "cn2Label=Packets cn3Label=Elapsed time in seconds flexNumber1Label=Total bytes cs6Label=Threat ID")


def _cef(h: int, kind: str, row: list[str]) -> Draft:
    sev = {"informational": "1", "low": "3", "medium": "5", "high": "7", "critical": "9"}[_severity(kind, row)]
    ext = [f"rt={CEF_TIME} deviceExternalId={row[2]}"]
    if kind in CEF_EXTRA:
        keys = {**CEF_TRAFFIC, **CEF_EXTRA[kind]}
        ext += [f"{key}={flows.cef_escape(row[i].strip(chr(34)))}" for i, key in keys.items() if row[i]]
        ext.append(CEF_LABELS)
    else:
        ext.append(f"msg={row[14]}" if kind == "SYSTEM" else f"msg={row[9]} {row[13].strip()}".rstrip())
    ext.append(f"dvchost={HOSTS[h]}")
    text = " ".join(ext)
    header = f" {HOSTS[h]} CEF:0|Palo Alto Networks|PAN-OS|{VERSION}|{row[4]}|{kind}|{sev}|"
    return ("<14>", flows.STAMP_RFC3164, header,
            *_with_sites(text), CEF_PROOF.stream_before, STREAM,
            CEF_PROOF.stream_after + CEF_PROOF.seq_before, SEQ, CEF_PROOF.seq_after + f"PanOSConfigVersion={row[5]}")


def generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    fw = _Firewall(ident, rng)
    pool = ident.extra["nat_pool"]
    names = [k.name for k in KINDS]
    weights = list(itertools.accumulate(k.weight for k in KINDS))
    for _ in range(count):
        kind = rng.choices(names, cum_weights=weights)[0]
        h = rng.randrange(len(ident.hosts))
        fw.seqnos[h] += 1
        threat = kind == "THREAT"
        f = flows.flow(rng, pool, allowed=True if threat else None,
                       direction=rng.choice(THREAT_DIRECTIONS) if threat else None)
        row = BUILDERS[kind](fw, h, f, fw.seqnos[h])
        yield _native(h, kind, row) if form == "native" else _cef(h, kind, row)


SOURCES = (Source(
    name="paloalto", vendor="Palo Alto Networks", product="Next-Generation Firewall (PAN-OS)",
    version="PAN-OS 10.2/11.x", kinds=KINDS,
    forms=(Form("native", "PAN-OS syslog, BSD header, default CSV log formats", None, NO_PROOF),
           Form("cef", "PAN-OS CEF (the CEF configuration guide's custom log formats) after an RFC 3164 header",
                CEF_PROOF)),
    fields=("receive_time", "serial", "type", "subtype", "src", "dst", "natsrc", "natdst", "rule", "srcuser", "app",
            "from", "to", "inbound_if", "outbound_if", "sessionid", "sport", "dport", "natsport", "proto", "action",
            "bytes", "bytes_sent", "bytes_received", "packets", "elapsed", "seqno", "session_end_reason",
            "device_name", "misc", "threatid", "category", "severity", "direction", "eventid", "description",
            "cmd", "admin", "path"),
    parser="syslog-ng: network() (RFC 3164) + the scl panos application (panos-parser()); csv/kv for cef",
    reference="PAN-OS 10.2/11.1 Syslog Field Descriptions (Traffic, Threat, System, Config log fields); "
              "PAN-OS CEF Configuration Guide",
    identity=identity, generate=generate),)
