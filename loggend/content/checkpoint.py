"""Check Point: firewall logs as the Log Exporter sends them (syslog format, or CEF).

Native (Log Exporter ``format syslog``): RFC 5424 with app name ``CheckPoint``, the gateway's fields
as ``key:"value";`` pairs inside one bracket: ``<134>1 2026-12-06T21:04:05Z cp-gw-01 CheckPoint
12345 - [action:"Accept"; flags:"411908"; ifdir:"outbound"; ... src:"10.10.4.7"; ...]``.
CEF (``format cef``): ``CEF:0|Check Point|VPN-1 & FireWall-1|Check Point|Log|https|Unknown|...``
after an RFC 3164 header. A connection is an Accept when it opens and, later, a "Log Update"
accounting record with the same loguid (and, like the gateway's, no addresses) carrying its bytes
(bytes = client + server side) and duration; Drops come from the cleanup rule; NAT (xlatesrc) from
the gateway's egress pool; rule names and uids from its policy. Proof of delivery:
``loggen_stream:"..."; loggen_seq:"..."`` in the bracket (native) and ``loggenStream=`` /
``loggenSeq=`` extensions (CEF). Every line stays under 1,024 bytes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

from loggend.content import flows, netplan
from loggend.content.flows import Flow
from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Part, Proof, Source

NATIVE_PROOF = Proof(' loggen_stream:"', '";', ' loggen_seq:"', '";')
CEF_PROOF = Proof(" loggenStream=", " ", "loggenSeq=", "")
HOSTS = ("cp-gw-01", "cp-gw-02")
EPOCH = "\0"                       # where the epoch-seconds stamp goes in a value (time, start_time...)
MGMT = "cp-mgmt"
PRODUCT = "VPN-1 & FireWall-1"
# (rule name, direction) -> the policy's rules; the uid is fixed per identity
RULES = (("Allow web to Internet", "outbound"), ("Internal to servers", "internal"), ("DMZ published web", "inbound"),
         ("Cleanup rule", "deny"))
ZONES = {"outbound": ("Internal", "External"), "internal": ("Internal", "Internal"), "inbound": ("External", "DMZ")}
IFACES = {"Internal": "eth1", "External": "eth0", "DMZ": "eth2"}
SERVICE_IDS = {443: "https", 80: "http", 53: "domain-udp", 123: "ntp-udp", 22: "ssh", 25: "smtp", 993: "imap-ssl",
               3389: "Remote_Desktop_Protocol", 445: "microsoft-ds", 8080: "http_8080", 3306: "mysql", 389: "ldap",
               514: "syslog"}
UPDATE_KEEPS = frozenset(("action", "flags", "ifdir", "ifname", "logid", "loguid", "origin", "originsicname",
                          "sequencenum", "time", "version", "__policy_id_tag"))
KINDS = (Kind("Accept", 44, "a connection allowed by a rule (NAT, zones, rule name and uid)",
              'rule_action:"Accept"'),
         Kind("Log Update", 44, "the accounting record closing an accepted connection: bytes, packets, elapsed",
              'product:"Log Update"'),
         Kind("Drop", 12, "a connection dropped by the cleanup rule", 'action:"Drop"'))


def identity(rng: random.Random) -> Identity:
    uids = tuple(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in RULES)
    origins = tuple(netplan.internal_server(rng) for _ in HOSTS)
    return Identity(HOSTS, {"rule_uids": uids, "origins": origins, "nat_pool": flows.nat_pool(rng),
                            "layer_uuid": (str(uuid.UUID(int=rng.getrandbits(128), version=4)),),
                            "policy_tag": (f"{{{str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()}}}",)})


class _Gateway:
    def __init__(self, ident: Identity, rng: random.Random) -> None:
        self.ident = ident
        self.rng = rng
        self.sequence = flows.Counter(rng, 1, 500, step=1)

    def pick(self) -> int:
        return self.rng.randrange(len(self.ident.hosts))

    def loguid(self) -> str:
        r = self.rng
        return f"{{0x{r.getrandbits(32):x},0x{r.getrandbits(16):x},0x{r.getrandbits(32):x},0x{r.getrandbits(32):x}}}"

    def rule(self, f: Flow) -> tuple[int, str, str]:
        key = f.direction if f.allowed else "deny"
        i = next(n for n, (_, d) in enumerate(RULES) if d == key)
        return i + 1, RULES[i][0], self.ident.extra["rule_uids"][i]


def _pairs(gw: _Gateway, g: int, f: Flow, loguid: str, action: str) -> list[tuple[str, str]]:
    ident = gw.ident
    inzone, outzone = ZONES[f.direction]
    ifname = IFACES[inzone]
    match, rule_name, rule_uid = gw.rule(f)
    pairs = [("action", action), ("flags", "411908" if f.allowed else "428292"), ("ifdir", "inbound"),
             ("ifname", ifname), ("logid", "0"), ("loguid", loguid), ("origin", ident.extra["origins"][g]),
             ("originsicname", f"CN={ident.hosts[g]},O={MGMT}..k4t7q2"), ("sequencenum", str(gw.sequence.next())),
             ("time", EPOCH), ("version", "5"),
             ("__policy_id_tag", f"product={PRODUCT}[db_tag={ident.extra['policy_tag'][0]};mgmt={MGMT};"
                                 f"date=1764979200;policy_name=Standard\\]"),
             ("dst", f.dst), ("inzone", inzone),
             ("layer_name", "Network"), ("layer_uuid", ident.extra["layer_uuid"][0]), ("match_id", str(match)),
             ("parent_rule", "0"), ("rule_action", action), ("rule_name", rule_name), ("rule_uid", rule_uid),
             ("outzone", outzone), ("proto", str(f.proto_number)), ("s_port", str(f.sport)),
             ("service", str(f.dport)), ("service_id", SERVICE_IDS.get(f.dport, f"{f.proto}-{f.dport}")),
             ("src", f.src)]
    if f.direction == "outbound" and f.allowed:
        pairs += [("xlatedport", "0"), ("xlatedst", "0.0.0.0"), ("xlatesport", str(f.nat_sport)),
                  ("xlatesrc", f.nat_src)]
    elif f.direction == "inbound" and f.allowed:
        pairs += [("xlatedport", str(f.dport)), ("xlatedst", f.nat_dst), ("xlatesport", "0"), ("xlatesrc", "0.0.0.0")]
    return pairs + [("product", PRODUCT)]


def _update(pairs: list[tuple[str, str]], f: Flow) -> list[tuple[str, str]]:
    """The accounting record of a connection: Log Update with its sizes (client side + server side).
    Like the gateway's, it names the connection by its loguid only: no addresses, no rule."""
    keep = [(k, v) for k, v in pairs if k in UPDATE_KEEPS]
    return keep + [("bytes", str(f.bytes)), ("client_inbound_bytes", str(f.sent)),
                   ("client_outbound_bytes", str(f.rcvd)), ("server_inbound_bytes", str(f.rcvd)),
                   ("server_outbound_bytes", str(f.sent)), ("client_inbound_packets", str(f.pkts_sent)),
                   ("client_outbound_packets", str(f.pkts_rcvd)), ("packets", str(f.packets)),
                   ("elapsed", str(flows.elapsed(f))), ("segment_time", EPOCH),
                   ("start_time", flows.ago_mark(flows.elapsed(f))),
                   ("product", "Log Update")]


def _with_epochs(text: str) -> list[Part]:
    """The text with each NUL placeholder replaced by the epoch-seconds stamp (a start time, marked
    with ``flows.ago_mark``, by that stamp the connection's elapsed seconds back)."""
    parts: list[Part] = []
    for i, piece in enumerate(text.split(EPOCH)):
        if i:
            parts.append(flows.STAMP_EPOCH)
        parts.extend(flows.with_ago(flows.STAMP_EPOCH, piece))
    return parts


def _proof_tail(proof: Proof) -> Draft:
    return (proof.stream_before, STREAM, proof.stream_after + proof.seq_before, SEQ, proof.seq_after)


def _native(host: str, pid: int, pairs: list[tuple[str, str]]) -> Draft:
    """The proof goes before the last pair: syslog-ng's kv-parser keeps the closing bracket in the last value."""
    text = "; ".join(f'{k}:"{v}"' for k, v in pairs[:-1]) + ";"
    last = f' {pairs[-1][0]}:"{pairs[-1][1]}"]'
    return ("<134>1 ", flows.STAMP_RFC3339, f" {host} CheckPoint {pid} - [", *_with_epochs(text),
            *_proof_tail(NATIVE_PROOF), *_with_epochs(last))


CEF_KEYS = {"action": "act", "src": "src", "dst": "dst", "s_port": "spt", "service": "dpt", "proto": "proto",
            "xlatesrc": "sourceTranslatedAddress", "xlatesport": "sourceTranslatedPort",
            "xlatedst": "destinationTranslatedAddress", "xlatedport": "destinationTranslatedPort",
            "ifname": "deviceInboundInterface", "origin": "dvc", "rule_name": "cs2", "loguid": "cs1",
            "bytes": "bytes", "client_inbound_bytes": "out", "client_outbound_bytes": "in", "elapsed": "cn3"}


def _cef(host: str, pairs: list[tuple[str, str]]) -> Draft:
    d = dict(pairs)
    ext = ["cs1Label=Loguid", "cs2Label=Rule Name"]
    for k, v in pairs:
        if v == EPOCH or v.startswith(flows.AGO) or k in ("__policy_id_tag", "originsicname", "flags", "version"):
            continue
        key = CEF_KEYS.get(k, k)
        ext.append(f"{key}={flows.cef_escape(v)}")
    name = d.get("service_id", "Log")
    return ("<134>", flows.STAMP_RFC3164, f" {host} CEF:0|Check Point|{d['product']}|Check Point|Log|{name}|Unknown|"
            "rt=", flows.STAMP_EPOCH, "000 " + " ".join(ext), *_proof_tail(CEF_PROOF)[:-1])


def generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    gw = _Gateway(ident, rng)
    pool = ident.extra["nat_pool"]
    pids = tuple(rng.randint(2000, 40000) for _ in ident.hosts)

    def emit(g: int, pairs: list[tuple[str, str]]) -> Draft:
        return _native(ident.hosts[g], pids[g], pairs) if form == "native" else _cef(ident.hosts[g], pairs)

    def start() -> tuple[tuple[int, Flow, list[tuple[str, str]]], tuple[Draft, ...]]:
        g = gw.pick()
        f = flows.flow(rng, pool, allowed=True)
        pairs = _pairs(gw, g, f, gw.loguid(), "Accept")
        return (g, f, pairs), (emit(g, pairs),)

    def finish(state: tuple[int, Flow, list[tuple[str, str]]]) -> Draft:
        g, f, pairs = state
        return emit(g, _update(pairs, f))

    def drop() -> Draft:
        g = gw.pick()
        f = flows.flow(rng, pool, allowed=False)
        return emit(g, _pairs(gw, g, f, gw.loguid(), "Drop"))

    return flows.paired(rng, count, start, finish, drop, 0.12)


SOURCES = (Source(
    name="checkpoint", vendor="Check Point", product="Quantum Security Gateway (Log Exporter)", version="R81.20",
    kinds=KINDS,
    forms=(Form("native", "Log Exporter syslog format: RFC 5424, app name CheckPoint, key:\"value\"; pairs",
                NATIVE_PROOF),
           Form("cef", "Log Exporter CEF format after an RFC 3164 header", CEF_PROOF)),
    fields=("action", "loguid", "origin", "src", "dst", "s_port", "service", "service_id", "proto", "inzone",
            "outzone", "ifname", "rule_name", "rule_uid", "layer_name", "xlatesrc", "xlatesport", "bytes",
            "client_inbound_bytes", "server_inbound_bytes", "packets", "elapsed", "product", "time"),
    parser="syslog-ng: checkpoint-parser() (native), csv-parser() + kv-parser() (cef)",
    reference="Check Point sk122323 Log Exporter; Check Point Log Fields Description (R81.20)",
    identity=identity, generate=generate),)
