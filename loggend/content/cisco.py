"""Cisco ASA and Cisco IOS: their syslog lines as the devices send them.

ASA (``logging timestamp``, ``logging device-id hostname``): ``<166>Dec 06 2026 21:04:05 asa-hq-01 :
%ASA-6-302013: Built outbound TCP connection 1284113 for outside:151.101.1.69/443 (151.101.1.69/443)
to inside:10.10.4.7/51234 (198.18.0.3/40123)``. Every Built is followed later by its Teardown with
the same connection id, addresses, duration and byte count (the session's total, both ways); the
dynamic PAT translation (305011) precedes an outbound Built and maps to the device's NAT pool;
denies name the interface's access-group.

IOS (``service sequence-numbers``, ``service timestamps log datetime msec``, ``logging origin-id
hostname``): ``<189>48213: core-sw1: Dec  6 21:04:05.123: %SYS-5-CONFIG_I: Configured from console
by netops on vty0 (10.10.4.7)``. The milliseconds are fixed per message while the pool rewrites the
seconds, so they rise with the message's place in the generated list (never down as a device's
sequence numbers go up): any two messages of one device stamped in the same second have their times
in the order of their numbers. (Across seconds the wire order is the pool's, whose frames are
shuffled and which starts its numbers again each pass, as it would without the fraction.) OSPF
adjacency changes follow each neighbour's state, as ``log-adjacency-changes`` reports them: a full
neighbour goes down (dead timer, interface down, reset), a down one comes back through LOADING or
EXCHANGE to FULL.

Neither carries proof of delivery: Cisco text is free-form and its only numbering, the IOS
sequence number, comes first in the line, before the origin field that could carry a stream id
(the contract wants the stream before the number); the ASA has no numbering at all.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from loggend.content import flows, netplan
from loggend.content.flows import Flow
from loggend.content.model import Draft, Form, Identity, Kind, Source

ASA_FACILITY = 20                        # local4, the ASA default
IOS_FACILITY = 23                        # local7, the IOS default
ASA_NO_PROOF = ("ASA text is free-form and the ASA numbers nothing: no field could carry a stream id and a "
                "sequence number that its parsers leave alone, so the sink cannot count this source's loss")
IOS_NO_PROOF = ("the IOS sequence number leads the line, before the origin field that could carry a stream id, "
                "so the sink cannot count this source's loss")
ASA_HOSTS = ("asa-hq-01", "asa-dc1-01")
IOS_HOSTS = ("core-sw1", "core-sw2", "dist-sw-b1", "wan-rtr1")
IFACE = {"outbound": ("outside", "inside"), "internal": ("servers", "inside"), "inbound": ("outside", "dmz")}
ACL = {"outside": "outside_access_in", "inside": "inside_access_in", "servers": "servers_access_in"}
TCP_TEARDOWN = (("TCP FINs", 78), ("TCP Reset-I", 8), ("TCP Reset-O", 8), ("SYN Timeout", 3), ("Idle Timeout", 3))
# What a teardown reason says of the session (ASA 9.x syslog guide, 302014 reasons): a SYN Timeout
# is an embryonic connection that never completed its handshake (no payload, closed when the
# embryonic timeout, 30 s by default, ran out); an Idle Timeout closes a connection silent for the
# 'timeout conn' time (1:00:00 by default), so it lasted at least that long; FINs and resets end a
# session that carried data.
SYN_TIMEOUT = 30
IDLE_TIMEOUT = 3600
ADMINS = ("netops", "admin", "jdoe")
# OSPF neighbour state changes 'log-adjacency-changes' logs (RFC 2328 section 10.3; IOS OSPF-5-ADJCHG):
# (from, to, event) for a neighbour coming up to FULL and a FULL one going DOWN, with weights.
OSPF_UP = (("LOADING", "FULL", "Loading Done", 8), ("EXCHANGE", "FULL", "Exchange Done", 2))
OSPF_DOWN = (("FULL", "DOWN", "Neighbor Down: Dead timer expired", 5),
             ("FULL", "DOWN", "Neighbor Down: Interface down or detached", 3),
             ("FULL", "DOWN", "Neighbor Down: Adjacency forced to reset", 1))
OSPF_NEIGHBOURS = 8                      # 10.0.0.1-8, each on one interface of each device
MSEC = 1000
ASA_COMMANDS = ("write memory", "show running-config", "configure terminal", "clear xlate", "show conn count")
# Shares of what the conversations make (an outbound Built brings its 305011 translation and every Built
# its Teardown): measured, and held by tests/unit/test_source_kinds.py.
ASA_KINDS = (Kind("302013", 25.3, "Built TCP connection (inbound/outbound, mapped addresses)"),
             Kind("302014", 25.3, "Teardown TCP connection: duration, bytes, reason"),
             Kind("302015", 8.5, "Built UDP connection"), Kind("302016", 8.5, "Teardown UDP connection"),
             Kind("305011", 26.5, "Built dynamic TCP/UDP translation (PAT to the NAT pool)"),
             Kind("106023", 5.3, "Deny by access-group"), Kind("605005", 0.3, "Login permitted (ssh/https)"),
             Kind("111008", 0.3, "User executed a command"))
IOS_KINDS = (Kind("SEC-6-IPACCESSLOGP", 40, "ACL log: permitted/denied packets"),
             Kind("LINEPROTO-5-UPDOWN", 14, "line protocol changed state"),
             Kind("LINK-3-UPDOWN", 10, "interface changed state"),
             Kind("SYS-5-CONFIG_I", 8, "configured from console/vty"),
             Kind("SEC_LOGIN-5-LOGIN_SUCCESS", 8, "login succeeded"),
             Kind("SEC_LOGIN-4-LOGIN_FAILED", 6, "login failed"),
             Kind("OSPF-5-ADJCHG", 8, "OSPF neighbour changed state"),
             Kind("SSH-5-SSH2_USERAUTH", 6, "SSH2 user authentication"))


def _hms(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def asa_identity(rng: random.Random) -> Identity:
    return Identity(ASA_HOSTS, {"nat_pool": flows.nat_pool(rng), "interfaces": ("outside", "inside", "dmz", "servers")})


class _Asa:
    def __init__(self, ident: Identity, rng: random.Random) -> None:
        self.ident = ident
        self.rng = rng
        self.conns = {h: flows.Counter(rng, 100_000, 900_000_000, step=3) for h in ident.hosts}

    def draft(self, host: str, sev: int, msgid: str, text: str) -> Draft:
        return (f"<{ASA_FACILITY * 8 + sev}>", flows.STAMP_ASA, f" {host} : %ASA-{sev}-{msgid}: {text}")

    def built(self) -> tuple[tuple[str, int, Flow], tuple[Draft, ...]]:
        rng = self.rng
        f = flows.flow(rng, self.ident.extra["nat_pool"], allowed=True)
        host = rng.choice(self.ident.hosts)
        cid = self.conns[host].next()
        far, near = IFACE[f.direction]
        proto = f.proto.upper()
        if f.direction == "inbound":
            text = (f"Built inbound {proto} connection {cid} for {far}:{f.src}/{f.sport} ({f.src}/{f.sport}) "
                    f"to {near}:{f.nat_dst}/{f.dport} ({f.dst}/{f.dport})")
        else:
            text = (f"Built outbound {proto} connection {cid} for {far}:{f.dst}/{f.dport} ({f.dst}/{f.dport}) "
                    f"to {near}:{f.src}/{f.sport} ({f.nat_src}/{f.nat_sport})")
        drafts = []
        if f.direction == "outbound":
            drafts.append(self.draft(host, 6, "305011", f"Built dynamic {proto} translation from {near}:{f.src}/"
                                     f"{f.sport} to {far}:{f.nat_src}/{f.nat_sport}"))
        drafts.append(self.draft(host, 6, "302013" if f.proto == "tcp" else "302015", text))
        return (host, cid, f), tuple(drafts)

    def teardown(self, state: tuple[str, int, Flow]) -> Draft:
        host, cid, f = state
        far, near = IFACE[f.direction]
        if f.direction == "inbound":
            ends = f"for {far}:{f.src}/{f.sport} to {near}:{f.nat_dst}/{f.dport}"
        else:
            ends = f"for {far}:{f.dst}/{f.dport} to {near}:{f.src}/{f.sport}"
        head = f"Teardown {f.proto.upper()} connection {cid} {ends} duration"
        if f.proto != "tcp":
            return self.draft(host, 6, "302016", f"{head} {_hms(f.duration)} bytes {f.bytes}")
        reason = self.rng.choices([r for r, _ in TCP_TEARDOWN], [w for _, w in TCP_TEARDOWN])[0]
        duration, size = f.duration, f.bytes
        if reason == "SYN Timeout":
            duration, size = SYN_TIMEOUT, 0
        elif reason == "Idle Timeout":
            duration += IDLE_TIMEOUT
        return self.draft(host, 6, "302014", f"{head} {_hms(duration)} bytes {size} {reason}")

    def single(self) -> Draft:
        rng = self.rng
        host = rng.choice(self.ident.hosts)
        roll = rng.random()
        if roll < 0.9:
            f = flows.flow(rng, self.ident.extra["nat_pool"])
            far, near = IFACE[f.direction]
            src_if, dst_if = (far, near) if f.direction == "inbound" else (near, far)
            return self.draft(host, 4, "106023", f"Deny {f.proto} src {src_if}:{f.src}/{f.sport} dst {dst_if}:"
                              f"{f.dst}/{f.dport} by access-group \"{ACL[src_if]}\" [0x{rng.getrandbits(32):x}, 0x0]")
        admin = rng.choice(ADMINS)
        if roll < 0.95:
            src = netplan.internal_client(rng)
            return self.draft(host, 6, "605005", f"Login permitted from {src}/{netplan.ephemeral_port(rng)} to "
                              f"inside:{netplan.internal_server(rng)}/ssh for user \"{admin}\"")
        return self.draft(host, 5, "111008", f"User '{admin}' executed the '{rng.choice(ASA_COMMANDS)}' command.")


def asa_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    asa = _Asa(ident, rng)
    return flows.paired(rng, count, asa.built, asa.teardown, asa.single, 0.08)


def ios_identity(rng: random.Random) -> Identity:
    return Identity(IOS_HOSTS, {"interfaces": ("GigabitEthernet1/0/1", "GigabitEthernet1/0/24",
                                               "TenGigabitEthernet1/1/1", "Vlan10", "Vlan20")})


class _Ospf:
    """Each device's OSPF neighbours and whether each is FULL now; a change flips one of them."""

    def __init__(self, ident: Identity, rng: random.Random) -> None:
        ifaces = ident.extra["interfaces"]
        self.rng = rng
        self.links = {h: [rng.choice(ifaces) for _ in range(OSPF_NEIGHBOURS)] for h in ident.hosts}
        self.full = {h: [True] * OSPF_NEIGHBOURS for h in ident.hosts}

    def change(self, host: str) -> str:
        rng = self.rng
        n = rng.randrange(OSPF_NEIGHBOURS)
        up = not self.full[host][n]
        self.full[host][n] = up
        table = OSPF_UP if up else OSPF_DOWN
        old, new, event, _ = rng.choices(table, [w for *_, w in table])[0]
        return f"Process 1, Nbr 10.0.0.{n + 1} on {self.links[host][n]} from {old} to {new}, {event}"


def _ios_text(rng: random.Random, ident: Identity, kind: str) -> str:
    iface = rng.choice(ident.extra["interfaces"])
    admin = rng.choice(ADMINS)
    src = netplan.internal_client(rng)
    if kind == "SEC-6-IPACCESSLOGP":
        verdict, acl = ("denied", "OUTSIDE-IN") if rng.random() < 0.6 else ("permitted", "MGMT-ACCESS")
        proto = rng.choice(("tcp", "udp"))
        packets = rng.randint(1, 40)
        return (f"list {acl} {verdict} {proto} {netplan.external(rng) if verdict == 'denied' else src}"
                f"({netplan.ephemeral_port(rng)}) -> {netplan.internal_server(rng)}({rng.choice((22, 23, 161, 443))}), "
                f"{packets} packet{'s' if packets > 1 else ''}")
    if kind == "LINEPROTO-5-UPDOWN":
        return f"Line protocol on Interface {iface}, changed state to {rng.choice(('up', 'down'))}"
    if kind == "LINK-3-UPDOWN":
        return f"Interface {iface}, changed state to {rng.choice(('up', 'down'))}"
    if kind == "SYS-5-CONFIG_I":
        return f"Configured from console by {admin} on vty0 ({src})"
    if kind == "SEC_LOGIN-5-LOGIN_SUCCESS":
        return f"Login Success [user: {admin}] [Source: {src}] [localport: 22] at {flows.ago_mark(0)}"
    if kind == "SEC_LOGIN-4-LOGIN_FAILED":
        return f"Login failed [user: {rng.choice(('admin', 'cisco', 'root'))}] [Source: {src}] [localport: 22] " \
               f"[Reason: Login Authentication Failed] at {flows.ago_mark(0)}"
    return (f"SSH2 Session from {src} (tty = 0) using crypto cipher 'aes256-gcm', hmac 'hmac-sha2-256' "
            f"Succeeded for user '{admin}'")


def ios_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    numbers = {h: rng.randint(1_000, 900_000) for h in ident.hosts}
    names = [k.name for k in IOS_KINDS]
    weights = list(itertools.accumulate(k.weight for k in IOS_KINDS))
    ospf = _Ospf(ident, rng)
    for i in range(count):
        host = rng.choice(ident.hosts)
        numbers[host] += 1
        kind = rng.choices(names, cum_weights=weights)[0]
        sev = int(kind.split("-")[-2])
        text = ospf.change(host) if kind == "OSPF-5-ADJCHG" else _ios_text(rng, ident, kind)
        yield (f"<{IOS_FACILITY * 8 + sev}>{numbers[host]}: {host}: ", flows.STAMP_IOS,
               *flows.with_ago(flows.STAMP_IOS_CLOCK, f".{i * MSEC // count:03d}: %{kind}: {text}"))


_ASA_FORM = Form("native", "ASA syslog: legacy timestamp, device-id hostname, %ASA-sev-id", None, ASA_NO_PROOF)
_IOS_FORM = Form("native", "IOS syslog: sequence number, origin-id hostname, msec timestamp, %FAC-SEV-MNEMONIC",
                 None, IOS_NO_PROOF)
SOURCES = (
    Source(name="cisco-asa", vendor="Cisco", product="Adaptive Security Appliance (ASA)", version="ASA 9.x",
           kinds=ASA_KINDS, forms=(_ASA_FORM,),
           fields=("facility", "severity", "message id", "connection id", "protocol", "source interface/address/port",
                   "destination interface/address/port", "mapped address/port", "duration", "bytes",
                   "teardown reason", "access-group", "user"),
           parser="syslog-ng: cisco-parser()",
           reference="Cisco Secure Firewall ASA Series Syslog Messages (302013-302016, 305011, 106023, 605005, 111008)",
           identity=asa_identity, generate=asa_generate),
    Source(name="cisco-ios", vendor="Cisco", product="IOS / IOS XE", version="IOS XE 17.x",
           kinds=IOS_KINDS, forms=(_IOS_FORM,),
           fields=("sequence number", "origin host", "timestamp", "facility", "severity", "mnemonic", "interface",
                   "user", "source address", "ACL name"),
           parser="syslog-ng: cisco-parser()",
           reference="Cisco IOS XE System Message Guide; 'service sequence-numbers', 'logging origin-id'",
           identity=ios_identity, generate=ios_generate),
)
