"""Juniper SRX: RT_FLOW session create, close and deny, as Junos sends them in structured-data mode.

``<14>1 2026-12-06T21:04:05Z srx-hq-01 RT_FLOW - RT_FLOW_SESSION_CLOSE [junos@2636.1.1.1.2.129
reason="TCP FIN" source-address="10.10.4.7" ...][loggen@32473 stream="w0" seq="000000000042"]``
(``set system syslog host ... structured-data brief``). A create is
followed later by its close with the same session-id-32, addresses, NAT and policy; the close
carries the sizes (``bytes-from-client`` + ``bytes-from-server`` is the session's total) and the
elapsed time. Proof of delivery is a second SD element, which Junos parsers leave alone.

A create carries no ``reason`` (Juniper's "Session Create Log Fields" table has none; close and deny
have one), and syslog-ng 3.38's junos application, which ``default-network-drivers()`` picks by
app-parser, keys on ``.SDATA.junos@2636...reason``: it recognises closes and denies, not creates,
whose fields a SIEM still gets from the RFC 5424 structured data (``syslog(flags(syslog-protocol))``).
loggen does not add a field real devices do not send to please that parser.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from loggend.content import flows
from loggend.content.flows import Flow
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Proof, Source

SD_ID = "junos@2636.1.1.1.2.129"            # the SRX product id syslog-ng's junos adapter keys on
PRI = "<14>"                                 # user.info, as RT_FLOW logs
PROOF = Proof('[loggen@32473 stream="', '"', ' seq="', '"]')
HOSTS = ("srx-hq-01", "srx-hq-02", "srx-dc1-01")
ZONES = {"outbound": ("trust", "untrust"), "internal": ("trust", "servers"), "inbound": ("untrust", "dmz")}
INGRESS = {"trust": "reth1.0", "untrust": "reth0.0", "servers": "reth2.0", "dmz": "reth3.0"}
POLICIES = {"outbound": "trust-to-untrust-web", "internal": "trust-to-servers", "inbound": "untrust-to-dmz-web"}
DENY_POLICY = "deny-all-cleanup"
SERVICES = {443: "junos-https", 80: "junos-http", 53: "junos-dns-udp", 123: "junos-ntp", 22: "junos-ssh",
            25: "junos-smtp", 993: "junos-imaps", 3389: "junos-rdp", 445: "junos-smb", 8080: "junos-http-ext",
            3306: "junos-mysql", 389: "junos-ldap", 514: "junos-syslog"}
APPS = {"ssl": ("SSL", "Web", "4"), "web-browsing": ("HTTP", "Web", "4"), "dns": ("DNS", "Infrastructure", "2"),
        "ntp": ("NTP", "Infrastructure", "1"), "ssh": ("SSH", "Remote-Access", "3"),
        "smtp": ("SMTP", "Messaging", "3"), "quic": ("QUIC", "Web", "3"), "ms-ds-smb": ("SMB", "Infrastructure", "3"),
        "ms-rdp": ("RDP", "Remote-Access", "4"), "mysql": ("MYSQL", "Database", "3"),
        "ldap": ("LDAP", "Infrastructure", "2"), "imaps": ("IMAP", "Messaging", "2"),
        "syslog": ("SYSLOG", "Infrastructure", "1")}
TCP_CLOSE = (("TCP FIN", 80), ("TCP RST", 14), ("idle Timeout", 6))


def identity(rng: random.Random) -> Identity:
    return Identity(HOSTS, {"nat_pool": flows.nat_pool(rng), "zones": tuple(INGRESS)})


def _app(f: Flow) -> tuple[str, str, str]:
    return APPS.get(f.app, ("UNKNOWN", "N/A", "1"))


def _common(f: Flow, sid: int, policy: str) -> str:
    src_zone, dst_zone = ZONES[f.direction]
    snat = ("source rule", "snat-egress") if f.direction == "outbound" else ("N/A", "N/A")
    dnat = ("destination rule", "dnat-dmz-web") if f.direction == "inbound" else ("N/A", "N/A")
    return (f'source-address="{f.src}" source-port="{f.sport}" destination-address="{f.dst}" '
            f'destination-port="{f.dport}" service-name="{SERVICES.get(f.dport, "None")}" '
            f'nat-source-address="{f.nat_src}" nat-source-port="{f.nat_sport}" nat-destination-address="{f.nat_dst}" '
            f'nat-destination-port="{f.dport}" src-nat-rule-type="{snat[0]}" '
            f'src-nat-rule-name="{snat[1]}" dst-nat-rule-type="{dnat[0]}" dst-nat-rule-name="{dnat[1]}" '
            f'protocol-id="{f.proto_number}" policy-name="{policy}" source-zone-name="{src_zone}" '
            f'destination-zone-name="{dst_zone}" session-id-32="{sid}"')


def _tail(f: Flow) -> str:
    app, cat, risk = _app(f)
    encrypted = "Yes" if f.app in ("ssl", "quic") else "No"
    return (f'username="N/A" roles="N/A" packet-incoming-interface="{INGRESS[ZONES[f.direction][0]]}" '
            f'application="{app}" nested-application="UNKNOWN" encrypted="{encrypted}" '
            f'application-category="{cat}" application-risk="{risk}"')


def _draft(host: str, msgid: str, sd: str) -> Draft:
    return (PRI + "1 ", flows.STAMP_RFC3339, f" {host} RT_FLOW - {msgid} [{SD_ID} {sd}]", PROOF.stream_before, STREAM,
            PROOF.stream_after + PROOF.seq_before, SEQ, PROOF.seq_after)


def _create(f: Flow, sid: int, host: str) -> Draft:
    sd = f"{_common(f, sid, POLICIES[f.direction])} {_tail(f)}"
    return _draft(host, "RT_FLOW_SESSION_CREATE", sd)


def _close(f: Flow, sid: int, host: str, reason: str) -> Draft:
    sd = (f'reason="{reason}" {_common(f, sid, POLICIES[f.direction])} packets-from-client="{f.pkts_sent}" '
          f'bytes-from-client="{f.sent}" packets-from-server="{f.pkts_rcvd}" bytes-from-server="{f.rcvd}" '
          f'elapsed-time="{f.duration}" {_tail(f)}')
    return _draft(host, "RT_FLOW_SESSION_CLOSE", sd)


def _deny(f: Flow, sid: int, host: str) -> Draft:
    src_zone, dst_zone = ZONES[f.direction]
    app = _app(f)[0]
    sd = (f'source-address="{f.src}" source-port="{f.sport}" destination-address="{f.dst}" '
          f'destination-port="{f.dport}" connection-tag="0" service-name="{SERVICES.get(f.dport, "None")}" '
          f'protocol-id="{f.proto_number}" icmp-type="0" policy-name="{DENY_POLICY}" source-zone-name="{src_zone}" '
          f'destination-zone-name="{dst_zone}" application="{app}" nested-application="UNKNOWN" username="N/A" '
          f'roles="N/A" packet-incoming-interface="{INGRESS[src_zone]}" encrypted="No" reason="Denied by policy" '
          f'session-id-32="{sid}" application-category="N/A" application-sub-category="N/A" '
          f'application-risk="1" application-characteristics="N/A"')
    return _draft(host, "RT_FLOW_SESSION_DENY", sd)


def _reason(rng: random.Random, f: Flow) -> str:
    if f.proto == "udp":
        return "response received" if f.app == "dns" else "idle Timeout"
    return str(rng.choices([r for r, _ in TCP_CLOSE], [w for _, w in TCP_CLOSE])[0])


def generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    pool = ident.extra["nat_pool"]
    sessions = {host: flows.Counter(rng, 10_000, 90_000_000) for host in ident.hosts}

    def start() -> tuple[tuple[Flow, int, str], tuple[Draft, ...]]:
        host = rng.choice(ident.hosts)
        f = flows.flow(rng, pool, allowed=True)
        sid = sessions[host].next()
        return (f, sid, host), (_create(f, sid, host),)

    def finish(state: tuple[Flow, int, str]) -> Draft:
        f, sid, host = state
        return _close(f, sid, host, _reason(rng, f))

    def deny() -> Draft:
        host = rng.choice(ident.hosts)
        return _deny(flows.flow(rng, pool, allowed=False), sessions[host].next(), host)

    return flows.paired(rng, count, start, finish, deny, flows.DENY_SHARE)


SOURCES = (Source(
    name="juniper-srx", vendor="Juniper Networks", product="SRX Series (Junos OS)", version="Junos OS 21.x-23.x",
    kinds=(Kind("RT_FLOW_SESSION_CREATE", 46, "a session is allowed and set up (policy, NAT, application)"),
           Kind("RT_FLOW_SESSION_CLOSE", 46, "a session ends: reason, packets and bytes each way, elapsed time"),
           Kind("RT_FLOW_SESSION_DENY", 8, "a policy refuses a session")),
    forms=(Form("native", "RFC 5424 with the junos@2636 structured data (Junos 'structured-data' syslog)", PROOF),),
    fields=("source-address", "source-port", "destination-address", "destination-port", "nat-source-address",
            "nat-source-port", "policy-name", "source-zone-name", "destination-zone-name", "session-id-32",
            "protocol-id", "application", "reason", "bytes-from-client", "bytes-from-server", "elapsed-time"),
    parser="syslog-ng: syslog(flags(syslog-protocol)) for every message's structured data; the scl junos "
           "application (default-network-drivers()) recognises close and deny only: it keys on reason=, which "
           "Junos creates do not carry",
    reference="Junos OS System Log Messages Reference: RT_FLOW_SESSION_CREATE, RT_FLOW_SESSION_CLOSE, "
              "RT_FLOW_SESSION_DENY",
    identity=identity, generate=generate),)
