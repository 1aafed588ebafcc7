"""The ``linux`` source: loggen's catalogue of Linux daemons (``loggend.engine.catalog``) as a source.

Its kinds are the catalogue's log sources (nginx, sshd, cron, the kernel's firewall...) with
their shares; its forms are the engine's formats (RFC 3164 by default, RFC 5424, CEF, LEEF, JSON),
each carrying the stream and the sequence number where ``loggend.engine.formats`` puts them.
``generate`` renders catalogue events with the engine's formats and hands them back as drafts,
so the catalogue joins a mix of sources like any vendor's.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

from loggend.content.model import SEQ, STREAM, Draft, Form, Identity, Kind, Part, Proof, Source, Stamp
from loggend.engine import catalog
from loggend.engine.formats import SEQ_DIGITS, STAMPS, Rendered, make_format
from loggend.engine.render import Fleet, fit, render_events
from loggend.engine.spec import MessageSpec

HOSTS = 1000                    # simulated hosts, as the catalogue's default
MAX_LENGTH = 1024               # RFC 3164's limit, as the catalogue's default
ENGINE_FORMATS = ("rfc3164", "rfc5424", "cef", "leef", "json")

PROOFS = {
    "rfc3164": Proof(" stream=", " seq=", " seq=", ""),
    "rfc5424": Proof(' stream="', '" seq="', '" seq="', '"]'),
    "cef": Proof(" cs1Label=stream cs1=", " cn1Label=seq cn1=", " cn1Label=seq cn1=", ""),
    "leef": Proof("^stream=", "^seq=", "^seq=", ""),
    "json": Proof(',"stream":"', '","seq":"', '","seq":"', '"}'),
}
FORMS = (
    Form("rfc3164", "BSD syslog as the daemons' local syslog forwards it: <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG",
         PROOFS["rfc3164"]),
    Form("rfc5424", "RFC 5424 with a loggen@32473 SD element (rsyslog's RSYSLOG_SyslogProtocol23Format)",
         PROOFS["rfc5424"]),
    Form("cef", "ArcSight CEF:0 after an RFC 3164 header", PROOFS["cef"]),
    Form("leef", "QRadar LEEF:2.0 after an RFC 3164 header", PROOFS["leef"]),
    Form("json", "one ECS-named JSON object after an RFC 3164 header", PROOFS["json"]),
)
_ENGINE_STAMPS: dict[int, Stamp] = {}


# What tells a catalogue source's lines apart where its name is not in them
MARKERS = {"nginx-access": r' nginx\[\d+\]: \S+ - \S+ \[[^]]+\] "', "nginx-error": r" nginx\[\d+\]: \[(?:error|warn)\]",
           "firewall": r" OUT= MAC=", "auditd": r" msg=audit\(", "kernel": r" kernel: (?!\[UFW|IPTABLES)"}


def _kinds() -> tuple[Kind, ...]:
    weights: dict[str, float] = {}
    for t in catalog.TEMPLATES:
        weights[t.source] = weights.get(t.source, 0.0) + t.weight
    tags: dict[str, set[str]] = {}
    for t in catalog.TEMPLATES:
        tags.setdefault(t.source, set()).add(re.escape(t.tag))
    return tuple(Kind(name, w, f"{name} lines of the catalogue",
                      MARKERS.get(name) or rf" (?:{'|'.join(sorted(tags[name]))})(?:\[\d+\])?: ")
                 for name, w in weights.items())


def identity(rng: random.Random) -> Identity:
    seed = rng.randrange(1 << 31)
    return Identity(Fleet.build(HOSTS, seed).names, {"seed": (str(seed),)})


def _stamp(kind: int) -> Stamp:
    found = _ENGINE_STAMPS.get(kind)
    if found is None:
        found = _ENGINE_STAMPS[kind] = Stamp(f"engine-{kind}", STAMPS[kind])
    return found


def _split(data: bytes, sites: list[tuple[int, int]], now: float, utc: bool) -> list[Part]:
    """Bytes with stamp sites (offset, kind) into text and ``Stamp`` parts."""
    out: list[Part] = []
    at = 0
    for offset, kind in sorted(sites):
        out.append(data[at:offset].decode("utf-8", "replace"))
        out.append(_stamp(kind))
        at = offset + len(STAMPS[kind](now, utc))
    out.append(data[at:].decode("utf-8", "replace"))
    return [p for p in out if p != ""]


def draft_of(r: Rendered, now: float, utc: bool) -> Draft:
    """An engine rendering as a draft: the same bytes, the same stamp and sequence sites."""
    head_sites = [*r.start_sites, *((len(r.head) - o, k) for o, k in r.end_sites)]
    parts = _split(r.head, head_sites, now, utc)
    if r.seq_from_end < 0:
        return tuple(parts)
    seq_at = len(r.tail) - r.seq_from_end
    tail = _split(r.tail[:seq_at], [s for s in r.tail_sites if s[0] < seq_at], now, utc)
    rest = _split(r.tail[seq_at + SEQ_DIGITS:], [(o - seq_at - SEQ_DIGITS, k) for o, k in r.tail_sites
                                                 if o > seq_at], now, utc)
    return (*parts, STREAM, *tail, SEQ, *rest)


def generate(ident: Identity, rng: random.Random, count: int, form: str) -> Iterator[Draft]:
    seed = int(ident.extra["seed"][0])
    spec = MessageSpec(seed=seed, hosts=len(ident.hosts), format=form)
    fmt = make_format(form, True, True)
    now = 0.0
    for event in render_events(spec, count, rng):
        yield draft_of(fit(fmt, event, now, MAX_LENGTH), now, True)


SOURCE = Source(
    name="linux",
    vendor="Linux",
    product="syslog of common daemons (loggen's catalogue)",
    version=f"loggen catalogue, {len(catalog.TEMPLATES)} templates",
    kinds=_kinds(),
    forms=FORMS,
    fields=("host", "program", "pid", "user", "source ip", "destination ip", "ports", "http method", "url",
            "http status", "bytes", "user agent", "dns query"),
    parser="rsyslog and syslog-ng's RFC 3164/5424 parsers (tests/integration/test_real_receivers.py)",
    reference="RFC 3164, RFC 5424, ArcSight CEF 25, IBM QRadar LEEF 2.0, Elastic Common Schema",
    identity=identity,
    generate=generate,
)
SOURCES = (SOURCE,)
