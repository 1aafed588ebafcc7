"""Fortinet FortiGate: FortiOS traffic, utm and event logs, key=value, as FortiOS sends them.

Native: ``<189>date=2026-12-06 time=21:04:05 devname="FGT-HQ-01" devid="FG200F..." eventtime=...
tz="+0000" logid="0000000013" type="traffic" subtype="forward" ...`` with no syslog header (FortiOS
``set format default``). CEF: FortiOS ``set format cef``, an RFC 3164 header then
``CEF:0|Fortinet|Fortigate|v7.4.4|<logid>|<type>:<subtype> <action>|<sev>|...`` with the FTNTFGT
custom keys. A traffic log is one closed session: ``sentbyte`` + ``rcvdbyte`` is its size, the
source NAT (``transip``) comes from the unit's share of the company's egress pool, ``policyid``
and ``policyname`` from its policy. Proof of delivery: ``loggen_stream=`` / ``loggen_seq=`` pairs
(native) and ``loggenStream`` / ``loggenSeq`` extensions (CEF), which FortiOS parsers leave alone.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Callable, Iterator

from loggend.content import flows, netplan
from loggend.content.flows import Flow
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Proof, Source, Stamp

VERSION = "v7.4.4"
NATIVE_PROOF = Proof(" loggen_stream=", " ", "loggen_seq=", "")
CEF_PROOF = Proof(" loggenStream=", " ", "loggenSeq=", "")
HOSTS = ("FGT-HQ-01", "FGT-BR-LON", "FGT-BR-NYC")
PRI = {"notice": "<189>", "information": "<190>", "warning": "<188>", "alert": "<185>", "error": "<187>"}
CEF_SEVERITY = {"information": "3", "notice": "3", "warning": "5", "error": "7", "alert": "9"}
# (policy id, name) by direction; deny hits the implicit policy 0
POLICIES = {"outbound": (12, "LAN-to-WAN-web"), "internal": (20, "LAN-to-Servers"), "inbound": (31, "WAN-to-DMZ-VIP")}
INTF = {"outbound": ("port1", "lan", "wan1", "wan"), "internal": ("port1", "lan", "port3", "lan"),
        "inbound": ("wan1", "wan", "port4", "dmz")}
SERVICE = {443: "HTTPS", 80: "HTTP", 53: "DNS", 123: "NTP", 22: "SSH", 25: "SMTP", 993: "IMAPS", 3389: "RDP",
           445: "SMB", 8080: "HTTP-8080", 3306: "MYSQL", 389: "LDAP", 514: "SYSLOG"}
APP = {"ssl": (40568, "SSL", "Network.Service"), "web-browsing": (15893, "HTTP.BROWSER", "Web.Client"),
       "dns": (16195, "DNS", "Network.Service"), "quic": (40169, "QUIC", "Network.Service"),
       "ntp": (16270, "NTP", "Network.Service"), "ssh": (16060, "SSH", "Remote.Access")}
COUNTRIES = ("United States", "Germany", "Ireland", "Netherlands", "United Kingdom", "France", "Japan", "Canada")
WEB_CATEGORIES = ((52, "Information Technology", 30), (41, "Search Engines and Portals", 20),
                  (37, "Social Networking", 12), (49, "Business", 25), (26, "Malicious Websites", 2),
                  (61, "Phishing", 1))
IPS = (("MS.SMB.Server.SMB1.Trans2.Secondary.Handling.Code.Execution", 43796, "critical"),
       ("Apache.Log4j.Error.Log.Remote.Code.Execution", 51006, "critical"),
       ("HTTP.URI.SQL.Injection", 15621, "high"),
       ("Bash.Function.Definitions.Remote.Code.Execution", 39294, "critical"))
ADMINS = ("admin", "netops", "svc-fmg")
# kind -> weight; the generator picks with these
KINDS = (Kind("traffic:forward", 70, "a forwarded session closed or denied (bytes, packets, NAT, policy)",
              r'type="traffic" subtype="forward"'),
         Kind("utm:webfilter", 12, "a URL allowed or blocked by FortiGuard category",
              r'type="utm" subtype="webfilter"'),
         Kind("utm:dns", 9, "a DNS query seen by the DNS filter",
              r'type="utm" subtype="dns"'),
         Kind("utm:ips", 3, "an IPS signature matched and the packet dropped",
              r'type="utm" subtype="ips"'),
         Kind("utm:app-ctrl", 4, "application control identified an application",
              r'type="utm" subtype="app-ctrl"'),
         Kind("event:system", 2, "admin logins and configuration changes",
              r'type="event" subtype="system"'))


def _tz(seconds: float, utc: bool) -> bytes:
    if utc:
        return b"+0000"
    return time.strftime("%z", time.localtime(seconds)).encode()


STAMP_TZ = Stamp("fortios-tz", _tz)


def identity(rng: random.Random) -> Identity:
    serials = tuple(f"FG{rng.choice(('100F', '200F', '600E'))}TK{rng.randint(19, 23)}{rng.randint(0, 999999):06d}"
                    for _ in HOSTS)
    return Identity(HOSTS, {"serials": serials, "nat_pool": flows.nat_pool(rng)})


class _Unit:
    """One FortiGate's fields for a message: the header pairs and the session counter."""

    def __init__(self, ident: Identity, rng: random.Random) -> None:
        self.rng = rng
        self.ident = ident
        self.sessions = flows.Counter(rng, 100_000, 9_000_000)

    def pick(self) -> tuple[str, str]:
        i = self.rng.randrange(len(self.ident.hosts))
        return self.ident.hosts[i], self.ident.extra["serials"][i]


def _flow_pairs(f: Flow, sid: int) -> str:
    sintf, srole, dintf, drole = INTF[f.direction]
    country = "Reserved" if f.direction != "inbound" else "United States"
    dcountry = "Reserved" if f.direction != "outbound" else COUNTRIES[sid % len(COUNTRIES)]
    return (f'srcip={f.src} srcport={f.sport} srcintf="{sintf}" srcintfrole="{srole}" dstip={f.dst} '
            f'dstport={f.dport} dstintf="{dintf}" dstintfrole="{drole}" srccountry="{country}" '
            f'dstcountry="{dcountry}" sessionid={sid} proto={f.proto_number}')


def _traffic(rng: random.Random, f: Flow, sid: int) -> tuple[str, str, str]:
    pid, pname = POLICIES[f.direction]
    service = SERVICE.get(f.dport, f"{f.proto}/{f.dport}")
    head = 'logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root"'
    if not f.allowed:
        return ("notice", f'{head} {_flow_pairs(f, sid)} action="deny" '
                f'policyid=0 policytype="policy" service="{service}" trandisp="noop" duration=0 sentbyte=0 '
                f'rcvdbyte=0 sentpkt=1 rcvdpkt=0 appcat="unscanned" crscore=30 craction=131072 crlevel="high"',
                "deny")
    action = "close" if f.proto == "tcp" else "accept"
    if f.proto == "tcp" and rng.random() < 0.12:
        action = rng.choice(("client-rst", "server-rst", "timeout"))
    nat = (f'trandisp="snat" transip={f.nat_src} transport={f.nat_sport}' if f.direction == "outbound" else
           f'trandisp="dnat" tranip={f.nat_dst} tranport={f.dport}' if f.direction == "inbound" else 'trandisp="noop"')
    appid, app, appcat = APP.get(f.app, (0, service, "unscanned"))
    return ("notice", f'{head} {_flow_pairs(f, sid)} action="{action}" policyid={pid} policytype="policy" '
            f'policyname="{pname}" service="{service}" {nat} appid={appid} app="{app}" appcat="{appcat}" '
            f'apprisk="medium" duration={f.duration} sentbyte={f.sent} rcvdbyte={f.rcvd} sentpkt={f.pkts_sent} '
            f'rcvdpkt={f.pkts_rcvd}', action)


def _webfilter(rng: random.Random, f: Flow, sid: int) -> tuple[str, str, str]:
    cat, desc, _ = rng.choices(WEB_CATEGORIES, [c[2] for c in WEB_CATEGORIES])[0]
    blocked = cat in (26, 61)
    host = netplan.domain(rng)
    logid, ev, action, level, msg = (("0316013057", "ftgd_blk", "blocked", "warning",
                                      "URL belongs to a denied category in policy") if blocked else
                                     ("0316013056", "ftgd_allow", "passthrough", "notice",
                                      "URL belongs to an allowed category in policy"))
    return (level, f'logid="{logid}" type="utm" subtype="webfilter" eventtype="{ev}" level="{level}" vd="root" '
            f'policyid={POLICIES["outbound"][0]} {_flow_pairs(f, sid)} service="HTTPS" hostname="{host}" '
            f'profile="default" action="{action}" reqtype="direct" url="https://{host}/" sentbyte={f.sent} '
            f'rcvdbyte={0 if blocked else f.rcvd} direction="outgoing" msg="{msg}" method="domain" cat={cat} '
            f'catdesc="{desc}"', action)


def _dns(rng: random.Random, f: Flow, sid: int) -> tuple[str, str, str]:
    qname = netplan.domain(rng)
    answer = netplan.external(rng)
    return ("notice", f'logid="1501054802" type="utm" subtype="dns" eventtype="dns-response" level="notice" '
            f'vd="root" policyid={POLICIES["outbound"][0]} {_flow_pairs(f, sid)} profile="default" '
            f'srcmac="{netplan.mac(rng)}" xid={rng.randint(1, 65535)} qname="{qname}" qtype="A" qtypeval=1 '
            f'qclass="IN" ipaddr="{answer}" msg="Domain is monitored" action="pass" cat=52 '
            f'catdesc="Information Technology"', "pass")


def _ips(rng: random.Random, f: Flow, sid: int) -> tuple[str, str, str]:
    attack, attackid, severity = rng.choice(IPS)
    return ("alert", f'logid="0419016384" type="utm" subtype="ips" eventtype="signature" level="alert" vd="root" '
            f'severity="{severity}" {_flow_pairs(f, sid)} service="{SERVICE.get(f.dport, "tcp")}" '
            f'policyid={POLICIES[f.direction][0]} attack="{attack}" action="dropped" attackid={attackid} '
            f'profile="default" ref="http://www.fortinet.com/ids/VID{attackid}" incidentserialno={sid % 10**9} '
            f'msg="applications3: {attack}," crscore=50 craction=4096 crlevel="critical"', "dropped")


def _appctrl(rng: random.Random, f: Flow, sid: int) -> tuple[str, str, str]:
    appid, app, appcat = APP.get(f.app, (40568, "SSL", "Network.Service"))
    return ("information", f'logid="1059028704" type="utm" subtype="app-ctrl" eventtype="signature" '
            f'level="information" vd="root" appid={appid} {_flow_pairs(f, sid)} '
            f'service="{SERVICE.get(f.dport, "tcp")}" direction="outgoing" policyid={POLICIES[f.direction][0]} '
            f'applist="default" appcat="{appcat}" app="{app}" action="pass" hostname="{netplan.domain(rng)}" '
            f'incidentserialno={sid % 10**9} msg="{appcat}: {app}," apprisk="elevated"', "pass")


def _event(rng: random.Random, f: Flow, sid: int) -> tuple[str, str, str]:
    admin = rng.choice(ADMINS)
    src = netplan.internal_client(rng)
    roll = rng.random()
    if roll < 0.6:
        return ("information", f'logid="0100032001" type="event" subtype="system" level="information" vd="root" '
                f'logdesc="Admin login successful" sn="{sid}" user="{admin}" ui="https({src})" method="https" '
                f'srcip={src} dstip={f.nat_src} action="login" status="success" reason="none" '
                f'profile="super_admin" msg="Administrator {admin} logged in successfully from https({src})"', "login")
    if roll < 0.8:
        return ("alert", f'logid="0100032002" type="event" subtype="system" level="alert" vd="root" '
                f'logdesc="Admin login failed" sn="0" user="{admin}" ui="ssh({src})" method="ssh" srcip={src} '
                f'dstip={f.nat_src} action="login" status="failed" reason="passwd_invalid" '
                f'msg="Administrator {admin} login failed from ssh({src}) because of invalid password"', "login")
    return ("information", f'logid="0100044547" type="event" subtype="system" level="information" vd="root" '
            f'logdesc="Object attribute configured" user="{admin}" ui="GUI({src})" action="Edit" '
            f'cfgtid={sid % 10**7} cfgpath="firewall.policy" cfgobj="{POLICIES["outbound"][0]}" '
            f'cfgattr="status[enable->disable]" msg="Edit firewall.policy {POLICIES["outbound"][0]}"', "Edit")


BUILDERS: dict[str, Callable[[random.Random, Flow, int], tuple[str, str, str]]] = {
    "traffic:forward": _traffic, "utm:webfilter": _webfilter, "utm:dns": _dns, "utm:ips": _ips,
    "utm:app-ctrl": _appctrl, "event:system": _event}
_KIND_NAMES = tuple(k.name for k in KINDS)
_KIND_WEIGHTS = tuple(itertools.accumulate(k.weight for k in KINDS))     # cumulative
DNS_UDP = netplan.Service("udp", 53, "dns")
DNS_TCP = netplan.Service("tcp", 53, "dns")
DNS_TCP_SHARE = 0.03                     # queries over TCP (truncated answers, zone data): a few in a hundred
PAIR = re.compile(r'(\w+)=("([^"]*)"|(\S*))')


def _native(host: str, serial: str, level: str, body: str) -> Draft:
    return (PRI[level], flows.STAMP_FORTIOS, f' devname="{host}" devid="{serial}" eventtime=', flows.STAMP_EPOCH_NS,
            ' tz="', STAMP_TZ, f'" {body}{NATIVE_PROOF.stream_before}', STREAM,
            NATIVE_PROOF.stream_after + NATIVE_PROOF.seq_before, SEQ)


def _cef(host: str, serial: str, level: str, kind: str, action: str, body: str) -> Draft:
    """FortiOS CEF: the key=value body's pairs as FTNTFGT<key> extensions, the common ones mapped."""
    pairs = _pairs(body)
    logid = pairs.get("logid", "0")
    ext = [f"deviceExternalId={serial}", f"FTNTFGTlogid={logid}", f"cat={kind}"]
    mapped = {"srcip": "src", "srcport": "spt", "dstip": "dst", "dstport": "dpt", "proto": "proto",
              "sessionid": "externalId", "srcintf": "deviceInboundInterface", "dstintf": "deviceOutboundInterface",
              "sentbyte": "out", "rcvdbyte": "in", "transip": "sourceTranslatedAddress",
              "transport": "sourceTranslatedPort", "action": "act", "user": "duser", "msg": "msg", "app": "app",
              "hostname": "dhost", "url": "request"}
    for key, value in pairs.items():
        if key in ("logid", "type", "subtype"):
            continue
        ext.append(f"{mapped.get(key, 'FTNTFGT' + key)}={flows.cef_escape(value)}")
    name = f"{kind} {action}"
    return (PRI[level], flows.STAMP_RFC3164,
            f" {host} CEF:0|Fortinet|Fortigate|{VERSION}|{logid}|{name}|{CEF_SEVERITY[level]}|{' '.join(ext)}"
            f"{CEF_PROOF.stream_before}", STREAM, CEF_PROOF.stream_after + CEF_PROOF.seq_before, SEQ)


def _pairs(body: str) -> dict[str, str]:
    """key=value / key="quoted value" pairs of a FortiOS body (the generator's own, so well formed)."""
    return {m[1]: m[3] if m[3] is not None else m[4] for m in PAIR.finditer(body)}


def _dns_service(rng: random.Random) -> netplan.Service:
    """A DNS filter log is a query to a resolver: port 53, over UDP but for the few that need TCP."""
    return DNS_TCP if rng.random() < DNS_TCP_SHARE else DNS_UDP


def generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    unit = _Unit(ident, rng)
    pool = ident.extra["nat_pool"]
    for _ in range(count):
        kind = rng.choices(_KIND_NAMES, cum_weights=_KIND_WEIGHTS)[0]
        utm = kind.startswith("utm:")
        service = _dns_service(rng) if kind == "utm:dns" else None
        f = flows.flow(rng, pool, allowed=True if utm else None, direction="outbound" if utm else None,
                       service=service)
        host, serial = unit.pick()
        level, body, action = BUILDERS[kind](rng, f, unit.sessions.next())
        yield _native(host, serial, level, body) if form == "native" else _cef(host, serial, level, kind, action, body)


SOURCES = (Source(
    name="fortigate", vendor="Fortinet", product="FortiGate (FortiOS)", version="FortiOS 7.2/7.4",
    kinds=KINDS,
    forms=(Form("native", "FortiOS key=value after <PRI>, no syslog header (set format default)", NATIVE_PROOF),
           Form("cef", "FortiOS CEF (set format cef) after an RFC 3164 header", CEF_PROOF)),
    fields=("devname", "devid", "logid", "type", "subtype", "level", "srcip", "srcport", "dstip", "dstport",
            "srcintf", "dstintf", "sessionid", "proto", "action", "policyid", "policyname", "service", "transip",
            "transport", "app", "duration", "sentbyte", "rcvdbyte", "sentpkt", "rcvdpkt", "hostname", "url",
            "catdesc", "attack", "qname", "user", "msg"),
    parser="syslog-ng: fortigate-parser() (native), cef-parser() (cef)",
    reference="FortiOS 7.4 Log Message Reference (traffic 0000000013, utm webfilter/dns/ips/app-ctrl, event system)",
    identity=identity, generate=generate),)
