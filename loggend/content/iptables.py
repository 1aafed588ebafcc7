"""iptables: the kernel's netfilter LOG target lines, as the kernel hands them to syslog.

``<4>Dec  6 21:04:05 fw-edge-01 kernel: [734512.118204] FW-DROP-IN: IN=eth0 OUT= MAC=... SRC=...
DST=... LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=31442 DF PROTO=TCP SPT=51234 DPT=3389 WINDOW=64240
RES=0x00 SYN URGP=0`` (kern.warning, RFC 3164, as rsyslog or journald forward it). A Linux edge
gateway: it drops unsolicited packets to the company's public addresses (scans of 22, 23, 445,
3389...) and logs the new connections it forwards from the inside. The uptime stamp grows with
each line; TTL, lengths and window sizes are those of real stacks. Proof of delivery: trailing
``loggen_stream=`` / ``loggen_seq=`` pairs, which netfilter parsers leave alone.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

from loggend.content import flows, netplan
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Proof, Source

PROOF = Proof(" loggen_stream=", " ", "loggen_seq=", "")
PRI = "<4>"                                              # kern.warning
HOSTS = ("fw-edge-01", "fw-edge-02")
MACS_PER_HOST = 3                                        # eth0, the upstream router, eth1
SCAN_PORTS = ((22, 30), (23, 12), (445, 12), (3389, 14), (1433, 5), (5900, 5), (8080, 8), (25, 4), (80, 5), (443, 5))
TTLS = (49, 52, 56, 110, 113, 117, 238, 243)             # hops away from Linux (64), Windows (128), routers (255)
WINDOWS = (1024, 14600, 29200, 64240, 65535)
_SCAN_PORTS = tuple(p for p, _ in SCAN_PORTS)
_SCAN_WEIGHTS = tuple(itertools.accumulate(w for _, w in SCAN_PORTS))
KINDS = (Kind("FW-DROP-IN", 60, "an unsolicited inbound packet dropped on the outside interface"),
         Kind("FW-ACCEPT-FWD", 32, "a new connection forwarded from the inside to the Internet"),
         Kind("FW-REJECT-FWD", 8, "an outbound connection refused by the egress policy"))


def identity(rng: random.Random) -> Identity:
    macs = tuple(netplan.mac(rng) for _ in range(len(HOSTS) * MACS_PER_HOST))
    return Identity(HOSTS, {"macs": macs, "nat_pool": flows.nat_pool(rng)})


def _tcp_tail(rng: random.Random, syn: bool) -> str:
    flags = "SYN URGP=0" if syn else "ACK PSH URGP=0"
    return f"WINDOW={rng.choice(WINDOWS)} RES=0x00 {flags}"


def _line(rng: random.Random, prefix: str, iface: str, out: str, mac: str, src: str, dst: str, proto: str,
          sport: int, dport: int, ttl: int) -> str:
    length = rng.choice((52, 60, 60, 64)) if proto == "TCP" else rng.randint(40, 120)
    head = (f"{prefix}: IN={iface} OUT={out} MAC={mac} SRC={src} DST={dst} LEN={length} TOS=0x00 PREC=0x00 "
            f"TTL={ttl} ID={rng.randint(1, 65535)}{' DF' if proto == 'TCP' else ''} PROTO={proto} SPT={sport} "
            f"DPT={dport}")
    if proto == "TCP":
        return f"{head} {_tcp_tail(rng, True)}"
    return f"{head} LEN={length - 20}"


def _drop_in(rng: random.Random, ident: Identity, h: int) -> str:
    port = rng.choices(_SCAN_PORTS, cum_weights=_SCAN_WEIGHTS)[0]
    macs = ident.extra["macs"][h * MACS_PER_HOST:]
    mac = f"{macs[0]}:{macs[1]}:08:00"                   # to eth0, from the upstream router, IPv4
    return _line(rng, "FW-DROP-IN", "eth0", "", mac, netplan.external(rng), rng.choice(ident.extra["nat_pool"]),
                 "TCP", netplan.ephemeral_port(rng), port, rng.choice(TTLS))


def _forward(rng: random.Random, ident: Identity, h: int, prefix: str) -> str:
    f = flows.flow(rng, ident.extra["nat_pool"], direction="outbound")
    mac = f"{ident.extra['macs'][h * MACS_PER_HOST + 2]}:{netplan.mac(rng)}:08:00"    # to eth1, from a client
    return _line(rng, prefix, "eth1", "eth0", mac, f.src, f.dst, f.proto.upper(), f.sport, f.dport, 63)


def generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    uptime = [rng.uniform(86_400, 4_000_000) for _ in ident.hosts]
    names = [k.name for k in KINDS]
    weights = list(itertools.accumulate(k.weight for k in KINDS))
    for _ in range(count):
        h = rng.randrange(len(ident.hosts))
        uptime[h] += rng.expovariate(50.0)
        kind = rng.choices(names, cum_weights=weights)[0]
        text = _drop_in(rng, ident, h) if kind == "FW-DROP-IN" else _forward(rng, ident, h, kind)
        yield (PRI, flows.STAMP_RFC3164, f" {ident.hosts[h]} kernel: [{uptime[h]:12.6f}] {text}{PROOF.stream_before}",
               STREAM, PROOF.stream_after + PROOF.seq_before, SEQ)


SOURCES = (Source(
    name="iptables", vendor="Linux", product="netfilter (iptables/nftables LOG target)", version="Linux 5.x/6.x",
    kinds=KINDS,
    forms=(Form("native", "kernel LOG lines as syslog (RFC 3164, kern.warning, tag 'kernel:')", PROOF),),
    fields=("IN", "OUT", "MAC", "SRC", "DST", "LEN", "TTL", "ID", "PROTO", "SPT", "DPT", "WINDOW"),
    parser="syslog-ng: network() (RFC 3164) + the scl iptables application (iptables-parser())",
    reference="Linux net/netfilter/nf_log_syslog.c (the LOG target's line); iptables-extensions(8) LOG",
    identity=identity, generate=generate),)
