"""suricata and zeek: network sensors' JSON logs of the company's traffic.

* ``suricata``: EVE JSON (``eve-log`` with ``filetype: syslog``: ``suricata[pid]: {json}``,
  local5.info): dns, http and tls transactions, alerts, and the flow record that closes each
  conversation with the same ``flow_id`` and community id, logged after them. The flow's
  counters only grow: an alert's ``flow`` snapshot is never above the final flow record, whose
  ``age`` is its end minus its start. Timestamps are Suricata's (``2026-12-06T21:04:05.123456+0000``).
* ``zeek``: conn, dns, http and ssl logs as JSON (``LogAscii::use_json``), each with its ``_path``,
  forwarded as ``zeek: {json}``. A connection's dns/http/ssl entries share its ``uid`` and come
  first; its conn entry (``ts`` = the first packet, ``duration``, ``orig_bytes`` + headers =
  ``orig_ip_bytes``) closes it.

Both carry the proof as two JSON members of their own.
"""

from __future__ import annotations

import base64
import hashlib
import random
import socket
import struct
from collections.abc import Iterator

from loggend.content import netplan
from loggend.content.hostkit import (
    ISO_SECONDS,
    JSON_PROOF,
    JSON_PROOF_PARTS,
    OFFSET,
    Episode,
    ago_step,
    epoch_ago,
    interleave,
    iso_seconds_ago,
    syslog3164,
)
from loggend.content.model import Draft, Form, Identity, Kind, Part, Source, Stamp

SURICATA_PRI = 174              # local5.info
ZEEK_PRI = 134                  # local0.info
PROTO_NUMBERS = {"TCP": 6, "UDP": 17}
TCP_HEADER = 52                 # IPv4 + TCP with timestamps, per packet (Zeek's ip_bytes)
UDP_HEADER = 28
# Emerging Threats-style rules: (sid, rev, signature, category, severity, app)
SIGNATURES = (
    (2013028, 7, "ET POLICY curl User-Agent Outbound", "Attempted Information Leak", 2, "http"),
    (2027865, 4, "ET INFO Observed DNS Query to .cloud TLD", "Potentially Bad Traffic", 2, "dns"),
    (2033966, 2, "ET INFO Observed Discord Domain in DNS Lookup", "Misc activity", 3, "dns"),
    (2019401, 6, "ET POLICY Vulnerable Java Version 1.8.x Detected", "Potential Corporate Privacy Violation", 1,
     "http"),
    (2018959, 5, "ET POLICY Python-urllib/ Suspicious User Agent", "Attempted Information Leak", 2, "http"),
    (2035465, 2, "ET INFO Observed SSL Cert for Free Hosting Domain (*.netlify .app)", "Misc activity", 3, "tls"),
    (2028371, 3, "ET JA3 Hash - Possible Malware - Various Eitest", "Unknown Traffic", 3, "tls"),
    (2010935, 3, "ET SCAN Suspicious inbound to MSSQL port 1433", "Potentially Bad Traffic", 2, "tls"),
)
AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36", "Microsoft-CryptoAPI/10.0", "Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.71",
          "curl/8.5.0", "Python-urllib/3.11", "apt-transport-https (Debian APT-HTTP/1.3 (2.6.1))")
ISSUERS = ("C=US, O=Let's Encrypt, CN=R11", "C=US, O=Google Trust Services, CN=WR2",
           "C=US, O=DigiCert Inc, CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1",
           "C=US, O=Microsoft Corporation, CN=Microsoft Azure RSA TLS Issuing CA 04")
URIS = ("/", "/index.html", "/update/v2/manifest.json", "/pki/crl/products/MicRooCerAut2011.crl", "/connecttest.txt",
        "/ubuntu/dists/jammy/InRelease", "/api/status")


def identity(rng: random.Random) -> Identity:
    return Identity(hosts=tuple(f"ids-sensor{i:02d}" for i in range(1, rng.randint(2, 3) + 1)),
                    extra={"resolvers": tuple(netplan.internal_server(rng) for _ in range(2)),
                           "interfaces": ("eth1", "eth2")})


def community_id(src: str, sport: int, dst: str, dport: int, proto: int) -> str:
    """Community ID v1 (seed 0) of a 5-tuple, as Suricata and Zeek compute it."""
    a, b = socket.inet_aton(src), socket.inet_aton(dst)
    if (a, sport) > (b, dport):
        a, b, sport, dport = b, a, dport, sport
    digest = hashlib.sha1(struct.pack("!H", 0) + a + b + struct.pack("!BBHH", proto, 0, sport, dport)).digest()
    return "1:" + base64.b64encode(digest).decode()


class _Conversation:
    """One connection's facts, shared by every log line about it."""

    __slots__ = ("src", "sport", "dst", "dport", "proto", "app", "host", "duration", "step", "pkts_out", "pkts_in",
                 "size_out", "size_in", "bytes_out", "bytes_in", "community")

    def __init__(self, rng: random.Random, resolvers: tuple[str, ...]) -> None:
        r = rng.random()
        self.src, self.sport = netplan.internal_client(rng), netplan.ephemeral_port(rng)
        self.host = netplan.domain(rng)
        if r < 0.3:
            self.app, self.proto, self.dst, self.dport = "dns", "UDP", rng.choice(resolvers), 53
            self.pkts_out, self.pkts_in = 1, 1
            self.size_out, self.size_in = rng.randint(70, 110), rng.randint(90, 480)
            self.duration = rng.randint(1, 80) / 1000
        else:
            self.app = "tls" if r < 0.8 else "http"
            self.proto, self.dst, self.dport = "TCP", netplan.external(rng), 443 if self.app == "tls" else 80
            self.pkts_out, self.pkts_in = rng.randint(6, 400), rng.randint(6, 900)
            self.size_out, self.size_in = rng.randint(60, 700), rng.randint(120, 1400)
            self.duration = rng.choice((0.2, 1.0, 4.0, 15.0, 60.0, 300.0)) * rng.random() + 0.05
        self.bytes_out, self.bytes_in = self.pkts_out * self.size_out, self.pkts_in * self.size_in
        self.step = ago_step(self.duration)
        self.community = community_id(self.src, self.sport, self.dst, self.dport, PROTO_NUMBERS[self.proto])


# --- suricata -----------------------------------------------------------------------------------------

SURICATA_KINDS = (
    Kind("flow", 47, "the flow record closing every conversation (counters, age, state, alerted)",
         r'"event_type":"flow"'),
    Kind("tls", 23, "a TLS handshake: SNI, version, certificate (TLS 1.2)", r'"event_type":"tls"'),
    Kind("dns", 14, "a DNS query and its answer", r'"event_type":"dns"'),
    Kind("http", 9, "an HTTP transaction", r'"event_type":"http"'),
    Kind("alert", 7, "a signature match on a conversation, with the flow's counters so far", r'"event_type":"alert"'),
)


def _fraction(rng: random.Random) -> str:
    return f".{rng.randint(0, 999_999):06d}"


class _Suricata:
    def __init__(self, ident: Identity, rng: random.Random) -> None:
        self.rng = rng
        self.sensors = ident.hosts
        self.resolvers = ident.extra["resolvers"]
        self.pids = {h: rng.randint(700, 9000) for h in self.sensors}

    def _line(self, sensor: str, c: _Conversation, flow_id: int, event: str, at: str, *body: Part) -> Draft:
        return (*syslog3164(SURICATA_PRI, sensor, f"suricata[{self.pids[sensor]}]"), '{"timestamp":"', ISO_SECONDS,
                at, OFFSET,
                f'","flow_id":{flow_id},"in_iface":"eth1","event_type":"{event}","src_ip":"{c.src}",'
                f'"src_port":{c.sport},"dest_ip":"{c.dst}","dest_port":{c.dport},"proto":"{c.proto}",'
                f'"community_id":"{c.community}"', *body, *JSON_PROOF_PARTS)

    def _app(self, c: _Conversation) -> str:
        rng = self.rng
        if c.app == "dns":
            qid, answer = rng.randint(1, 65535), netplan.external(rng)
            return (f',"dns":{{"version":2,"type":"answer","id":{qid},"flags":"8180","qr":true,"rd":true,"ra":true,'
                    f'"opcode":0,"rrname":"{c.host}","rrtype":"A","rcode":"NOERROR","answers":[{{"rrname":"{c.host}",'
                    f'"rrtype":"A","ttl":{rng.choice((60, 300, 3600))},"rdata":"{answer}"}}]}}')
        if c.app == "http":
            return (f',"tx_id":0,"http":{{"hostname":"{c.host}","url":"{rng.choice(URIS)}",'
                    f'"http_user_agent":"{rng.choice(AGENTS)}","http_content_type":"text/html","http_method":"GET",'
                    f'"protocol":"HTTP/1.1","status":200,"length":{max(0, c.bytes_in - 400)}}}')
        if rng.random() < 0.7:
            return f',"tls":{{"sni":"{c.host}","version":"TLS 1.3"}}'
        serial = ":".join(f"{rng.randint(0, 255):02X}" for _ in range(16))
        fingerprint = ":".join(f"{rng.randint(0, 255):02x}" for _ in range(20))
        return (f',"tls":{{"subject":"CN={c.host}","issuerdn":"{rng.choice(ISSUERS)}","serial":"{serial}",'
                f'"fingerprint":"{fingerprint}","sni":"{c.host}","version":"TLS 1.2","notbefore":"2026-10-01T00:00:00",'
                '"notafter":"2027-01-01T23:59:59"}')

    def _flow_counts(self, c: _Conversation, share: float) -> str:
        """The flow's counters after ``share`` of its packets each way (the first to the server at least)."""
        out, back = max(1, int(c.pkts_out * share)), int(c.pkts_in * share)
        return (f'"pkts_toserver":{out},"pkts_toclient":{back},"bytes_toserver":{out * c.size_out},'
                f'"bytes_toclient":{back * c.size_in}')

    def episode(self) -> Episode:
        rng = self.rng
        sensor = rng.choice(self.sensors)
        c = _Conversation(rng, self.resolvers)
        flow_id = rng.randint(10**14, 2**51)
        # fractions of the second: the flow starts, its transaction, an alert, the flow record is written
        start, seen, alert_at, end = sorted(_fraction(rng) for _ in range(4))
        opening = [self._line(sensor, c, flow_id, c.app, seen, self._app(c))]
        alerted = rng.random() < 0.12
        if alerted:
            sid, rev, signature, category, severity, app = rng.choice(SIGNATURES)
            opening.append(self._line(
                sensor, c, flow_id, "alert", alert_at,
                f',"tx_id":0,"alert":{{"action":"allowed","gid":1,"signature_id":{sid},"rev":{rev},'
                f'"signature":"{signature}","category":"{category}","severity":{severity}}},"app_proto":"{c.app}",'
                f'"flow":{{{self._flow_counts(c, 0.5)},"start":"', iso_seconds_ago(c.step), start, OFFSET, '"}'))
        tcp = (',"tcp":{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,'
               '"ack":true,"state":"closed"}') if c.proto == "TCP" else ""
        flow = self._line(
            sensor, c, flow_id, "flow", end,
            f',"app_proto":"{c.app}","flow":{{{self._flow_counts(c, 1.0)},"start":"',
            iso_seconds_ago(c.step), start, OFFSET, '","end":"', ISO_SECONDS, end, OFFSET,
            f'","age":{c.step},"state":"{"closed" if c.proto == "TCP" else "established"}",'
            f'"reason":"{"timeout" if c.proto == "UDP" else rng.choice(("timeout", "shutdown"))}",'
            f'"alerted":{"true" if alerted else "false"}}}{tcp}')
        return opening, [flow]


def suricata_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    return interleave(rng, count, _Suricata(ident, rng).episode, "suricata")


# --- zeek ---------------------------------------------------------------------------------------------

ZEEK_KINDS = (
    Kind("conn", 50, "a connection's summary, after its protocol entries (same uid)", r'"_path":"conn"'),
    Kind("ssl", 25, "a TLS session: version, cipher, SNI, established", r'"_path":"ssl"'),
    Kind("dns", 15, "a DNS query, its answers and round trip", r'"_path":"dns"'),
    Kind("http", 10, "an HTTP request and response", r'"_path":"http"'),
)
MICROS = 1_000_000
FIRST_EXCHANGE = 0.2                     # seconds: a TLS hello or HTTP request comes within this of the start
UID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CIPHERS = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
           "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")


class _Zeek:
    def __init__(self, ident: Identity, rng: random.Random) -> None:
        self.rng = rng
        self.sensors = ident.hosts
        self.resolvers = ident.extra["resolvers"]

    def _uid(self) -> str:
        return "C" + "".join(self.rng.choices(UID_ALPHABET, k=17))

    def _line(self, sensor: str, path: str, ts: Stamp, micro: str, uid: str, c: _Conversation, body: str) -> Draft:
        return (*syslog3164(ZEEK_PRI, sensor, "zeek"), f'{{"_path":"{path}","ts":', ts, micro,
                f',"uid":"{uid}","id.orig_h":"{c.src}","id.orig_p":{c.sport},"id.resp_h":"{c.dst}",'
                f'"id.resp_p":{c.dport}{body}', *JSON_PROOF_PARTS)

    def _app(self, c: _Conversation) -> tuple[str, str]:
        rng = self.rng
        if c.app == "dns":
            answer, ttl = netplan.external(rng), rng.choice((60, 300, 3600))
            return "dns", (f',"proto":"udp","trans_id":{rng.randint(1, 65535)},"rtt":{c.duration:.6f},'
                           f'"query":"{c.host}","qclass":1,"qclass_name":"C_INTERNET","qtype":1,"qtype_name":"A",'
                           '"rcode":0,"rcode_name":"NOERROR","AA":false,"TC":false,"RD":true,"RA":true,"Z":0,'
                           f'"answers":["{answer}"],"TTLs":[{ttl}.0],"rejected":false')
        if c.app == "http":
            return "http", (f',"trans_depth":1,"method":"GET","host":"{c.host}","uri":"{rng.choice(URIS)}",'
                            f'"version":"1.1","user_agent":"{rng.choice(AGENTS)}","request_body_len":0,'
                            f'"response_body_len":{max(0, c.bytes_in - 400)},"status_code":200,"status_msg":"OK",'
                            f'"tags":[],"resp_fuids":["F{self._uid()[1:]}"],"resp_mime_types":["text/html"]')
        version = "TLSv13" if rng.random() < 0.7 else "TLSv12"
        cipher = rng.choice(CIPHERS[:3]) if version == "TLSv13" else CIPHERS[3]
        return "ssl", (f',"version":"{version}","cipher":"{cipher}","curve":"x25519","server_name":"{c.host}",'
                       f'"resumed":{"true" if rng.random() < 0.2 else "false"},"established":true,'
                       f'"ssl_history":"{"CsiI" if version == "TLSv13" else "CsxknGIi"}"')

    def episode(self) -> Episode:
        rng = self.rng
        sensor = rng.choice(self.sensors)
        c = _Conversation(rng, self.resolvers)
        uid = self._uid()
        path, body = self._app(c)
        # the protocol record's ts lies in its connection (Zeek stamps it when it sees the protocol's
        # first message): a DNS query at the connection's start, a TLS client hello or an HTTP request
        # after the TCP handshake, within the connection's first round trips
        start = rng.randrange(MICROS)
        later = int(rng.uniform(0, min(c.duration, FIRST_EXCHANGE)) * MICROS) if path != "dns" else 0
        at = min(MICROS - 1, start + later)
        micro = f".{start:06d}"
        opening = [self._line(sensor, path, epoch_ago(c.step), f".{at:06d}", uid, c, body)]
        tcp = c.proto == "TCP"
        header = TCP_HEADER if tcp else UDP_HEADER
        service = {"tls": "ssl", "http": "http", "dns": "dns"}[c.app]
        conn = self._line(sensor, "conn", epoch_ago(c.step), micro, uid, c, (
            f',"proto":"{c.proto.lower()}","service":"{service}","duration":{c.step + c.duration % 1:.6f},'
            f'"orig_bytes":{c.bytes_out},"resp_bytes":{c.bytes_in},"conn_state":"SF",'
            f'"local_orig":true,"local_resp":{"true" if c.app == "dns" else "false"},"missed_bytes":0,'
            f'"history":"{"ShADadFf" if tcp else "Dd"}","orig_pkts":{c.pkts_out},'
            f'"orig_ip_bytes":{c.bytes_out + header * c.pkts_out},"resp_pkts":{c.pkts_in},'
            f'"resp_ip_bytes":{c.bytes_in + header * c.pkts_in},"community_id":"{c.community}"'))
        return opening, [conn]


def zeek_generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    return interleave(rng, count, _Zeek(ident, rng).episode, "zeek")


SOURCES = (
    Source(name="suricata", vendor="OISF", product="Suricata", version="Suricata 7 EVE JSON",
           kinds=SURICATA_KINDS,
           forms=(Form("native", "EVE JSON through Suricata's syslog output (suricata[pid]: {json}, local5.info)",
                       JSON_PROOF),),
           fields=("timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip", "dest_port", "proto",
                   "community_id", "alert.signature_id", "alert.signature", "alert.category", "alert.severity",
                   "dns.rrname", "http.hostname", "http.url", "http.status", "tls.sni", "tls.version",
                   "flow.bytes_toserver", "flow.bytes_toclient", "flow.age"),
           parser="none: syslog-ng has no Suricata scl parser; JSON checked with Python's json (rsyslog "
                  "mmjsonparse where present) and against Suricata's EVE field list",
           reference="Suricata 7 user guide, 'Eve JSON Format' (alert, flow, dns v2, http, tls)",
           identity=identity, generate=suricata_generate),
    Source(name="zeek", vendor="Zeek project", product="Zeek", version="Zeek 6 JSON logs (conn, dns, http, ssl)",
           kinds=ZEEK_KINDS,
           forms=(Form("native", "Zeek's JSON logs with _path, forwarded through syslog (zeek: {json})", JSON_PROOF),),
           fields=("_path", "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
                   "duration", "orig_bytes", "resp_bytes", "conn_state", "query", "answers", "host", "uri",
                   "status_code", "server_name", "version", "cipher"),
           parser="none: syslog-ng has no Zeek scl parser; JSON checked with Python's json (rsyslog mmjsonparse "
                  "where present) and against Zeek's log field lists",
           reference="Zeek documentation, 'Log Files' (conn.log, dns.log, http.log, ssl.log)",
           identity=identity, generate=zeek_generate),
)
