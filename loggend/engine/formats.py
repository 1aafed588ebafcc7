"""The wire formats: RFC 3164, RFC 5424, CEF, LEEF and JSON, and the timestamps they carry.

A catalogue template filled with values is an ``Event`` (priority, host, program, pid, the
human text and the named field values). A ``Format`` renders it into the bytes of one message,
split where the stream id goes, so one rendering serves every worker::

    head + <stream id> + tail        (``Rendered``)

with the *patch sites* the pool rewrites while it sends: every timestamp (a ``Stamp`` kind of
fixed width: the header's, CEF's ``rt``, LEEF's ``devTime``, JSON's ``@timestamp``) and the
twelve sequence digits. Sites are placed so that messages of one length share their layout
(the header stamp right after ``<PRI>``, body stamps and the sequence at a fixed distance from
the end), which keeps the pool's patch runs long. ``sequence=False`` renders no stream and no
sequence at all.

The stream id and the sequence number are in every format: RFC 3164 ends in
``stream=ID seq=NNNNNNNNNNNN``; RFC 5424 carries them in an SD element
``[loggen@32473 stream="w0" seq="000000000042"]`` (the enterprise number is configurable);
CEF as ``cs1Label=stream cs1=ID cn1Label=seq cn1=N``; LEEF as ``stream=ID`` and ``seq=N``
attributes; JSON as ``"stream"`` and ``"seq"`` (a 12-digit string). Escaping follows each spec.
Pure functions; used while the pool is built, never per sent message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from loggend import __version__

SEQ_DIGITS = 12
SEQ_ZEROS = "0" * SEQ_DIGITS
FORMATS = ("rfc3164", "rfc5424", "cef", "leef", "json")
# The shortest max_length each format can honour with any stream id: its fixed parts, a short text.
MIN_LENGTHS = {"rfc3164": 160, "rfc5424": 200, "cef": 300, "leef": 300, "json": 480}
DEFAULT_ENTERPRISE = 32473          # IANA's example enterprise number (RFC 5612); configurable
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LEEF_DELIMITER = "^"
CEF_SEVERITY = (10, 9, 8, 7, 5, 3, 2, 1)       # syslog severity 0..7 -> CEF 0..10 (emerg = 10)


# --- timestamps ---------------------------------------------------------------------------------------

def _parts(seconds: float, utc: bool) -> time.struct_time:
    return time.gmtime(seconds) if utc else time.localtime(seconds)


def _offset(tm: time.struct_time, utc: bool) -> str:
    if utc:
        return "Z"
    minutes = (tm.tm_gmtoff or 0) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def stamp_rfc3164(seconds: float, utc: bool) -> bytes:
    """``Nov  8 04:05:06``: English month, space-padded day, whatever the locale (15 bytes)."""
    tm = _parts(seconds, utc)
    return b"%s %2d %02d:%02d:%02d" % (MONTHS[tm.tm_mon - 1].encode(), tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)


def stamp_rfc3339(seconds: float, utc: bool) -> bytes:
    """``2026-11-29T08:49:12Z`` (UTC, 20 bytes) or ``...+01:00`` (local, 25 bytes)."""
    tm = _parts(seconds, utc)
    return (f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}T{tm.tm_hour:02d}:{tm.tm_min:02d}:"
            f"{tm.tm_sec:02d}{_offset(tm, utc)}").encode()


def stamp_cef(seconds: float, utc: bool) -> bytes:
    """``Nov 29 2026 08:49:12`` (CEF ``rt``, LEEF ``devTime`` with devTimeFormat MMM dd yyyy HH:mm:ss)."""
    tm = _parts(seconds, utc)
    return b"%s %02d %04d %02d:%02d:%02d" % (MONTHS[tm.tm_mon - 1].encode(), tm.tm_mday, tm.tm_year, tm.tm_hour,
                                             tm.tm_min, tm.tm_sec)


def stamp_clf(seconds: float, utc: bool) -> bytes:
    """``06/Dec/2026:21:04:05 +0000``: the Common Log Format's ``[time_local]`` (26 bytes)."""
    tm = _parts(seconds, utc)
    minutes = 0 if utc else (tm.tm_gmtoff or 0) // 60
    return b"%02d/%s/%04d:%02d:%02d:%02d %s%02d%02d" % (
        tm.tm_mday, MONTHS[tm.tm_mon - 1].encode(), tm.tm_year, tm.tm_hour, tm.tm_min, tm.tm_sec,
        b"-" if minutes < 0 else b"+", abs(minutes) // 60, abs(minutes) % 60)


STAMP_RFC3164, STAMP_RFC3339, STAMP_CEF = range(3)
Stamp = Callable[[float, bool], bytes]
# By kind; every kind has one width per time zone. Templates' timestamp tokens and replayed lines
# add kinds of their own (``register_stamp``) before the pool is built; forked workers inherit them.
STAMPS: dict[int, Stamp] = {STAMP_RFC3164: stamp_rfc3164, STAMP_RFC3339: stamp_rfc3339, STAMP_CEF: stamp_cef}
_STAMP_NAMES: dict[str, int] = {}


def register_stamp(name: str, stamp: Stamp) -> int:
    """The kind of the stamp called ``name`` (registered on first use, the same kind after)."""
    kind = _STAMP_NAMES.get(name)
    if kind is None:
        kind = _STAMP_NAMES[name] = len(STAMPS)
        STAMPS[kind] = stamp
    return kind


STAMP_CLF = register_stamp("clf", stamp_clf)     # the catalogue's nginx [time_local]


# --- events and renderings ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    """One catalogue template filled in: everything any format needs."""

    pri: int
    host: str
    program: str                 # RFC 3164 TAG / RFC 5424 APP-NAME
    pid: int | None              # None: the kernel logs without one
    text: str                    # the human message (ASCII)
    fields: dict[str, str]       # the template's named values
    source: str                  # the log source (CEF product, JSON event.dataset)
    event_id: str                # the kind of event (RFC 5424 MSGID, CEF signature id, LEEF event id)
    name: str                    # a short name of the event (CEF name)
    placeholders: tuple[tuple[str, int], ...] = ()   # user templates: (placeholder, stamp kind) in the text

    @property
    def facility(self) -> int:
        return self.pri >> 3

    @property
    def severity(self) -> int:
        return self.pri & 7


@dataclass(frozen=True)
class Rendered:
    """A message split where the stream id goes (``head + stream + tail``), with its patch sites.

    ``start_sites``: (offset from the start of the head, stamp kind); ``end_sites``: (offset back
    from the end of the head, i.e. from where the stream id goes, stamp kind); ``seq_from_end``:
    where the sequence digits start, counted back from the end of the tail (-1: no sequence).
    Without sequence numbers the tail is empty and the head is the whole message.
    """

    head: bytes
    tail: bytes
    start_sites: tuple[tuple[int, int], ...]
    end_sites: tuple[tuple[int, int], ...]
    seq_from_end: int
    tail_sites: tuple[tuple[int, int], ...] = ()     # (offset from the start of the tail, kind)

    @property
    def layout(self) -> tuple[tuple[tuple[int, int], ...], ...]:
        return self.start_sites, self.end_sites, self.tail_sites


@dataclass(frozen=True)
class Format:
    """Base: subclasses say how an event becomes head + stream + tail."""

    sequence: bool = True
    utc: bool = False
    enterprise: int = DEFAULT_ENTERPRISE

    def render(self, event: Event, now: float) -> Rendered:
        raise NotImplementedError

    def stamp(self, kind: int, now: float) -> str:
        return STAMPS[kind](now, self.utc).decode()

    def header3164(self, event: Event, now: float) -> tuple[str, int]:
        """``<PRI>STAMP HOST TAG[PID]: `` and where its stamp starts."""
        tag = f"{event.program}[{event.pid}]" if event.pid is not None else event.program
        pri = f"<{event.pri}>"
        return f"{pri}{self.stamp(STAMP_RFC3164, now)} {event.host} {tag}: ", len(pri)

    def split(self, body: str, stream_key: str, tail: str, start_sites: tuple[tuple[int, int], ...],
              end_sites: tuple[tuple[int, int], ...], seq_from_end: int) -> Rendered:
        """``body`` then, with sequence numbers, ``stream_key`` + the stream id + ``tail``."""
        if not self.sequence:
            return Rendered(_ascii(body), b"", start_sites, end_sites, -1)
        return Rendered(_ascii(body + stream_key), _ascii(tail), start_sites,
                        tuple((offset + len(stream_key), kind) for offset, kind in end_sites), seq_from_end)


def _ascii(text: str) -> bytes:
    return text.encode("ascii", "replace")


class Rfc3164(Format):
    """``<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG stream=ID seq=N``."""

    def render(self, event: Event, now: float) -> Rendered:
        header, at = self.header3164(event, now)
        return self.split(header + event.text, " stream=", f" seq={SEQ_ZEROS}", ((at, STAMP_RFC3164),), (),
                          SEQ_DIGITS)


class Rfc5424(Format):
    """``<PRI>1 2026-11-29T08:49:12Z HOST APP PROCID MSGID [loggen@N stream="ID" seq="N"] MSG``."""

    def render(self, event: Event, now: float) -> Rendered:
        pri = f"<{event.pri}>1 "
        procid = str(event.pid) if event.pid is not None else "-"
        header = (f"{pri}{self.stamp(STAMP_RFC3339, now)} {event.host} {event.program[:48]} {procid} "
                  f"{event.event_id[:32]} ")
        sites = ((len(pri), STAMP_RFC3339),)
        if not self.sequence:
            return Rendered(_ascii(f"{header}- {event.text}"), b"", sites, (), -1)
        tail = f'" seq="{SEQ_ZEROS}"] {event.text}'
        return self.split(header, f'[loggen@{self.enterprise} stream="', tail, sites, (),
                          len(tail) - len('" seq="'))


def cef_header(value: str) -> str:
    """CEF header field: ``\\`` and ``|`` escaped."""
    return value.replace("\\", "\\\\").replace("|", "\\|")


def cef_value(value: str) -> str:
    """CEF extension value: ``\\``, ``=`` and line breaks escaped."""
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def leef_value(value: str) -> str:
    """LEEF attribute value: ``\\`` and the delimiter escaped, line breaks as spaces."""
    return (value.replace("\\", "\\\\").replace(LEEF_DELIMITER, "\\" + LEEF_DELIMITER)
            .replace("\r", " ").replace("\n", " "))


# Template field -> (CEF key, LEEF key, ECS field). Fields without a standard name keep theirs.
FIELD_NAMES: dict[str, tuple[str, str, str]] = {
    "user": ("suser", "usrName", "user.name"),
    "bad_user": ("suser", "usrName", "user.name"),
    "ip_ext": ("src", "src", "source.ip"),
    "ip_int": ("src", "src", "source.ip"),
    "ip_any": ("src", "src", "source.ip"),
    "ip_dst": ("dst", "dst", "destination.ip"),
    "sport": ("spt", "srcPort", "source.port"),
    "dport": ("dpt", "dstPort", "destination.port"),
    "method": ("requestMethod", "method", "http.request.method"),
    "url": ("request", "url", "url.original"),
    "status": ("cn2", "httpStatus", "http.response.status_code"),
    "bytes": ("out", "dstBytes", "http.response.bytes"),
    "ua": ("requestClientApplication", "userAgent", "user_agent.original"),
    "referer": ("requestContext", "referrer", "http.request.referrer"),
    "domain": ("dhost", "dstHost", "destination.domain"),
    "qname": ("query", "dnsQuery", "dns.question.name"),
    "qtype": ("cs3", "dnsType", "dns.question.type"),
    "proto": ("proto", "proto", "network.transport"),
    "iface": ("deviceInboundInterface", "inInterface", "observer.ingress.interface.name"),
    "mac": ("smac", "srcMAC", "source.mac"),
    "fw_mac": ("cs4", "macPair", "labels.mac_pair"),
    "pktlen": ("in", "totalPacketSize", "network.bytes"),
    "mail_from": ("suser", "sender", "email.from.address"),
    "mail_to": ("duser", "recipient", "email.to.address"),
    "unit": ("cs5", "unit", "systemd.unit"),
    "uid": ("suid", "usrId", "user.id"),
    "session": ("cs6", "sessionId", "session.id"),
    "sudo_cmd": ("cs2", "command", "process.command_line"),
    "cron_cmd": ("cs2", "command", "process.command_line"),
}


# CEF custom fields (csN/cnN) and their labels: the LEEF name of the field they carry.
CEF_LABELS = {cef: leef for cef, leef, _ in FIELD_NAMES.values() if cef[:2] in ("cs", "cn") and cef[2:].isdigit()}


def _named_fields(event: Event, which: int) -> list[tuple[str, str]]:
    """(key, value) in the format's vocabulary (0 CEF, 1 LEEF, 2 ECS), first name wins."""
    out: dict[str, str] = {}
    for name, value in event.fields.items():
        key = FIELD_NAMES[name][which] if name in FIELD_NAMES else name
        out.setdefault(key, value)
    return list(out.items())


class Cef(Format):
    """RFC 3164 header, then ``CEF:0|loggen|SOURCE|VERSION|ID|NAME|SEVERITY|extension``, the
    extension ending in ``rt=<time> cs1Label=stream cs1=ID cn1Label=seq cn1=N``."""

    def render(self, event: Event, now: float) -> Rendered:
        header, at = self.header3164(event, now)
        ext = []
        for k, v in _named_fields(event, 0):
            ext.append(f"{k}={cef_value(v)}")
            if k in CEF_LABELS:                     # custom fields say what they hold (cs2Label=command)
                ext.append(f"{k}Label={CEF_LABELS[k]}")
        ext.append(f"msg={cef_value(event.text)}")
        rt = self.stamp(STAMP_CEF, now)
        body = (f"{header}CEF:0|loggen|{cef_header(event.source)}|{__version__}|{cef_header(event.event_id)}|"
                f"{cef_header(event.name)}|{CEF_SEVERITY[event.severity]}|{' '.join(ext)} rt={rt}")
        return self.split(body, " cs1Label=stream cs1=", f" cn1Label=seq cn1={SEQ_ZEROS}", ((at, STAMP_RFC3164),),
                          ((len(rt), STAMP_CEF),), SEQ_DIGITS)


class Leef(Format):
    """RFC 3164 header, then ``LEEF:2.0|loggen|SOURCE|VERSION|ID|^|attributes``, the attributes
    ending in ``devTime=<time>^devTimeFormat=...^stream=ID^seq=N``."""

    def render(self, event: Event, now: float) -> Rendered:
        header, at = self.header3164(event, now)
        d = LEEF_DELIMITER
        attrs = [f"{k}={leef_value(v)}" for k, v in _named_fields(event, 1)]
        attrs += [f"sev={CEF_SEVERITY[event.severity]}", f"msg={leef_value(event.text)}",
                  "devTimeFormat=MMM dd yyyy HH:mm:ss"]
        dev = self.stamp(STAMP_CEF, now)
        body = (f"{header}LEEF:2.0|loggen|{cef_header(event.source)}|{__version__}|{cef_header(event.event_id)}|{d}|"
                f"{d.join(attrs)}{d}devTime={dev}")
        return self.split(body, f"{d}stream=", f"{d}seq={SEQ_ZEROS}", ((at, STAMP_RFC3164),), ((len(dev), STAMP_CEF),),
                          SEQ_DIGITS)


# ECS fields whose type is a number (long): sent as JSON numbers, as Elastic maps them.
ECS_NUMBERS = frozenset({"source.port", "destination.port", "http.response.status_code", "http.response.bytes",
                         "network.bytes"})


def _nest(flat: list[tuple[str, str]]) -> dict[str, object]:
    """ECS dotted names into nested objects (``source.ip`` -> {"source": {"ip": ...}})."""
    out: dict[str, object] = {}
    for key, text in flat:
        value: object = int(text) if key in ECS_NUMBERS and text.isdigit() else text
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node.setdefault(leaf, value)
    return out


class Json(Format):
    """RFC 3164 header, then one JSON object (ECS field names where they exist) ending in
    ``"@timestamp":"...","stream":"ID","seq":"N"}``."""

    def render(self, event: Event, now: float) -> Rendered:
        header, at = self.header3164(event, now)
        doc: dict[str, object] = {
            "message": event.text,
            "host": {"name": event.host},
            "process": {"name": event.program, **({"pid": event.pid} if event.pid is not None else {})},
            "log": {"syslog": {"priority": event.pri, "facility": {"code": event.facility},
                               "severity": {"code": event.severity}}},
            "event": {"dataset": event.source, "code": event.event_id},
        }
        for key, value in _nest(_named_fields(event, 2)).items():
            doc.setdefault(key, value)
        stamp = self.stamp(STAMP_RFC3339, now)
        # a user template's placeholders stay one byte each, as in the other formats
        text = json.dumps(doc, separators=(",", ":")).replace("\\u007f", "\x7f")[:-1] + f',"@timestamp":"{stamp}"'
        if not self.sequence:
            return Rendered(_ascii(header + text + "}"), b"", ((at, STAMP_RFC3164),),
                            ((len(stamp) + 2, STAMP_RFC3339),), -1)
        return self.split(header + text, ',"stream":"', f'","seq":"{SEQ_ZEROS}"}}', ((at, STAMP_RFC3164),),
                          ((len(stamp) + 1, STAMP_RFC3339),), SEQ_DIGITS + 2)


FORMAT_CLASSES: dict[str, type[Format]] = {"rfc3164": Rfc3164, "rfc5424": Rfc5424, "cef": Cef, "leef": Leef,
                                           "json": Json}


def make_format(name: str, sequence: bool, utc: bool, enterprise: int = DEFAULT_ENTERPRISE) -> Format:
    return FORMAT_CLASSES[name](sequence=sequence, utc=utc, enterprise=enterprise)
