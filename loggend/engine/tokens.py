"""User templates: a message with tokens, parsed once, filled in while the pool is built.

Syntax (in a template's ``message``)::

    {kind}  {kind:args}      a value of that kind
    {name=kind:args}         the same, and remember it as ``name``
    {name}                   the value remembered as ``name`` earlier in the same message
    {{  }}                   literal braces

Kinds and their arguments:

========== ================================== =============================================
kind       args                               value
========== ================================== =============================================
int        ``LO-HI`` (default 0-65535)        a whole number, uniform
float      ``LO-HI`` or ``LO-HI/PRECISION``   a decimal, uniform, PRECISION digits (2)
choice     ``a|b*3|c`` or ``@FILE``           one of them; ``*W`` weights; a file: a line each
ipv4       ``CIDR`` (default 0.0.0.0/0)       an address in the network
ipv6       ``CIDR`` (default 2001:db8::/32)   an address in the network
mac        (none)                             ``aa:bb:cc:dd:ee:ff``
uuid       (none)                             a random (version 4) UUID
hex        ``LENGTH`` (default 8)             lower-case hex digits
word       (none) or ``a|b|c``                a word (from loggen's list, or these)
user       (none)                             a user name (from loggen's list)
host       (none)                             the simulated host sending this message
timestamp  ``iso8601`` (default), ``epoch``,  the time of sending, patched every second like
           ``epoch_ms``, or a strftime        the header's; strftime formats must have a
           format (``%d/%m/%Y %H:%M:%S``)     fixed width (``%b``, not ``%B``)
seq        (none)                             the stream's sequence number (12 digits)
========== ================================== =============================================

Named values (``{sid=hex:16}``) become fields of the event, so CEF, LEEF and JSON carry them as
key=value pairs. Parsing is strict: an error names the column and the token (``TokenError``);
the config loader adds the file, template and line. Values come from the ``random.Random`` the
pool is built with, so the same seed gives the same stream. Timestamps and ``{seq}`` are written
as *placeholders* of their exact width (``\\x7f`` and a letter) that ``fill_placeholders`` turns
into patch sites once the format has wrapped the message.
"""

from __future__ import annotations

import calendar
import ipaddress
import os
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

from loggend.engine import catalog
from loggend.engine.formats import SEQ_DIGITS, register_stamp
from loggend.engine.userfile import read_user_file

PLACEHOLDER = catalog.PLACEHOLDER   # no format escapes it; in catalogue messages only as their time_local
SEQ_KIND = -1                 # a patch site holding sequence digits, not a timestamp
CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7f)) - {"\t"}   # a tab is text; DEL is the placeholder
# names the formats give their own fields: a value named so would repeat or hide one (JSON keys,
# CEF/LEEF extension keys, the sequence the sink counts by)
RESERVED_NAMES = frozenset({"stream", "seq", "message", "msg", "host", "process", "log", "event", "@timestamp",
                            "rt", "sev", "devtime", "devtimeformat", "cs1", "cs1label", "cn1", "cn1label"})
MAX_TOKENS = 64
MAX_CHOICES = 100_000
MAX_HEX = 256
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
FLOAT_PRECISION = 2
TIMESTAMP_STYLES = ("iso8601", "epoch", "epoch_ms")


class TokenError(ValueError):
    """A template that cannot be parsed: ``column`` (1-based) and what is wrong there."""

    def __init__(self, column: int, token: str, why: str) -> None:
        super().__init__(f"column {column}: {token}: {why}")
        self.column, self.token, self.why = column, token, why


@dataclass(frozen=True)
class Token:
    kind: str
    args: tuple[object, ...]        # parsed arguments, per kind
    name: str = ""                  # remember the value under this name ("" = do not)
    column: int = 0


@dataclass(frozen=True)
class Ref:
    name: str


Part = str | Token | Ref


@dataclass(frozen=True)
class UserTemplate:
    """A template from the config or ``--templates``, its message parsed."""

    name: str
    message: tuple[Part, ...]
    weight: float = 1.0
    facility: int = 1                # user
    severity: int = 6                # info
    program: str = "app"
    pid: bool = True                 # TAG[PID] with a PID stable per host, or TAG alone
    hosts: tuple[str, ...] = ()      # the host names it speaks for (a source's devices); () = the fleet's


# --- timestamps --------------------------------------------------------------------------------------

SAMPLE_TIMES = [calendar.timegm((2026, m, d, h, 5, 7, 0, 0, 0)) for m in range(1, 13) for d in (1, 9, 10, 28)
                for h in (0, 9, 13)]


DIRECTIVE_RE = re.compile(r"%[-_0^#]*[EO]?.?", re.S)


def _strftime_width(fmt: str) -> int:
    """The width of ``fmt`` at any time, or TokenError-worthy ValueError when it varies or names a
    directive strftime does not know (it would be sent as written: ``%Q`` in every message)."""
    for directive in DIRECTIVE_RE.findall(fmt):
        if directive != "%%" and time.strftime(directive, time.gmtime(0)) == directive:
            raise ValueError(f"strftime format {fmt!r}: {directive!r} is not a strftime directive "
                             "(write %% for a literal %)")
    widths = {len(time.strftime(fmt, time.gmtime(t))) for t in SAMPLE_TIMES}
    widths |= {len(time.strftime(fmt, time.localtime(t))) for t in SAMPLE_TIMES}
    if len(widths) != 1:
        raise ValueError(f"strftime format {fmt!r} changes width over the year ({min(widths)} to {max(widths)} "
                         "characters); use fixed-width fields such as %m and %d, not %B or %-d")
    width = widths.pop()
    if not width:
        raise ValueError("an empty timestamp format")
    return width


def timestamp_kind(style: str) -> tuple[int, int]:
    """(stamp kind, width) of a timestamp token's style, registered with the formats' stamps."""
    if style == "iso8601":
        return register_stamp("token:iso8601", _iso8601), 25
    if style == "epoch":
        return register_stamp("token:epoch", lambda now, utc: b"%010d" % int(now)), 10
    if style == "epoch_ms":
        return register_stamp("token:epoch_ms", lambda now, utc: b"%010d000" % int(now)), 13
    width = _strftime_width(style)

    def stamp(now: float, utc: bool) -> bytes:
        return time.strftime(style, time.gmtime(now) if utc else time.localtime(now)).encode("ascii", "replace")
    return register_stamp(f"token:strftime:{style}", stamp), width


def _iso8601(now: float, utc: bool) -> bytes:
    t = time.gmtime(now) if utc else time.localtime(now)
    offset = 0 if utc else t.tm_gmtoff
    sign = "+" if offset >= 0 else "-"
    return (time.strftime("%Y-%m-%dT%H:%M:%S", t) + f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
            ).encode()


# --- parsing -----------------------------------------------------------------------------------------

def _range(text: str, default: tuple[float, float], kind: type) -> tuple[float, float]:
    if not text:
        return default
    m = re.fullmatch(r"\s*(-?[0-9.]+)\s*-\s*(-?[0-9.]+)\s*", text)
    if not m:
        raise ValueError(f"expected LO-HI, e.g. {int(default[0])}-{int(default[1])}")
    lo, hi = kind(m[1]), kind(m[2])
    if lo > hi:
        raise ValueError(f"{lo} is above {hi}")
    return lo, hi


def _choice_file(path: str, base: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The lines of ``@FILE`` (relative to ``base``), read by the config files' rules (``userfile``)."""
    if base and not os.path.isabs(path):
        path = os.path.join(base, path)
    try:
        text = read_user_file(path).decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start:,})") from None
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    lines = text.replace("\r\n", "\n").split("\n")
    for number, line in enumerate(lines, 1):
        bad = next((ch for ch in line if ch in CONTROL), None)
        if bad is not None:
            raise ValueError(f"{path}: line {number} holds a control character ({repr(bad)[1:-1]}): a value is "
                             "sent inside one message, which is one line")
    items = [line for line in lines if line.strip()]
    if not items:
        raise ValueError(f"{path} has no lines")
    if len(items) > MAX_CHOICES:
        raise ValueError(f"{path} has more than {MAX_CHOICES:,} lines")
    return tuple(items), tuple(1.0 for _ in items)


def _choices(text: str, base: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    if text.startswith("@"):
        return _choice_file(text[1:], base)
    values, weights = [], []
    for item in text.split("|"):
        value, star, weight = item.rpartition("*") if "*" in item else (item, "", "")
        try:
            if not weight.isascii():
                raise ValueError(weight)          # digits 0-9 only: float() takes a fullwidth 5
            w = float(weight) if star else 1.0
        except ValueError:
            raise ValueError(f"weight {weight!r} of {value!r} is not a number") from None
        if w <= 0:
            raise ValueError(f"weight of {value!r} must be above 0")
        values.append(value)
        weights.append(w)
    if not text or not values:
        raise ValueError("expected a|b|c (with *WEIGHT where wanted) or @FILE")
    return tuple(values), tuple(weights)


def _network(text: str, default: str, version: int) -> tuple[int, int]:
    try:
        net = ipaddress.ip_network(text or default, strict=False)
    except ValueError as err:
        raise ValueError(str(err)) from None
    if net.version != version:
        raise ValueError(f"{text} is not an IPv{version} network")
    # a host address, as ipaddress's hosts() gives it: above /31 (/127) neither the network address
    # nor (IPv4) the broadcast address
    if net.num_addresses <= 2:
        return int(net.network_address), net.num_addresses
    return int(net.network_address) + 1, net.num_addresses - (2 if version == 4 else 1)


def parse_args(kind: str, text: str, base: str = "") -> tuple[object, ...]:
    """A kind's arguments, checked; ValueError says what is allowed."""
    if kind == "int":
        lo, hi = _range(text, (0, 65535), int)
        return (int(lo), int(hi))
    if kind == "float":
        spec, _, precision = text.partition("/")
        lo, hi = _range(spec, (0.0, 1.0), float)
        digits = FLOAT_PRECISION
        if precision:
            if not (precision.isascii() and precision.isdigit()) or int(precision) > 12:
                raise ValueError("precision after / must be 0 to 12 digits")
            digits = int(precision)
        return (lo, hi, digits)
    if kind in ("choice", "word"):
        if kind == "word" and not text:
            return (catalog.WORDS, tuple(1.0 for _ in catalog.WORDS))
        return _choices(text, base)
    if kind == "ipv4":
        return _network(text, "0.0.0.0/0", 4)
    if kind == "ipv6":
        return _network(text, "2001:db8::/32", 6)
    if kind == "hex":
        if text and (not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_HEX):
            raise ValueError(f"a length from 1 to {MAX_HEX}")
        return (int(text or 8),)
    if kind == "timestamp":
        return timestamp_kind(text or "iso8601")
    if kind in ("mac", "uuid", "user", "host", "seq"):
        if text:
            raise ValueError(f"{kind} takes no arguments")
        return ()
    raise ValueError(f"unknown kind; one of {', '.join(KINDS)}")


KINDS = ("int", "float", "choice", "ipv4", "ipv6", "mac", "uuid", "hex", "word", "user", "host", "timestamp", "seq")


def parse_message(text: str, base: str = "") -> tuple[Part, ...]:
    """The parts of a template's message; TokenError at the first problem. ``base``: the folder
    relative ``@FILE`` choices are read from."""
    parts: list[Part] = []
    named: set[str] = set()
    literal: list[str] = []
    i, n, tokens = 0, len(text), 0
    bad = next((k for k, ch in enumerate(text) if ch in CONTROL), -1)
    if bad >= 0:
        raise TokenError(bad + 1, repr(text[bad])[1:-1], "a control character (a line break, DEL...): "
                         "one message is one line, so it would split or corrupt it on the wire")
    while i < n:
        c = text[i]
        if c == "}":
            if text[i + 1:i + 2] != "}":
                raise TokenError(i + 1, "}", "a lone closing brace (write }} for a literal one)")
            literal.append("}")
            i += 2
            continue
        if c != "{":
            literal.append(c)
            i += 1
            continue
        if text[i + 1:i + 2] == "{":
            literal.append("{")
            i += 2
            continue
        end = text.find("}", i)
        if end < 0:
            raise TokenError(i + 1, text[i:i + 20], "not closed (write {{ for a literal brace)")
        body = text[i + 1:end]
        token = "{" + body + "}"
        if "{" in body:
            raise TokenError(i + 1, token, "a brace inside a token")
        tokens += 1
        if tokens > MAX_TOKENS:
            raise TokenError(i + 1, token, f"more than {MAX_TOKENS} tokens in one message")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(_parse_token(body, token, i + 1, named, base))
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _parse_token(body: str, token: str, column: int, named: set[str], base: str) -> Token | Ref:
    head, colon, args = body.partition(":")
    name = ""
    if "=" in head:
        name, _, head = head.partition("=")
        if not NAME.fullmatch(name):
            raise TokenError(column, token, f"{name!r} is not a name (letters, digits, _ . -)")
        if name in named:
            raise TokenError(column, token, f"{name!r} is already named in this message; write {{{name}}} to repeat it")
        if name.lower() in RESERVED_NAMES:
            raise TokenError(column, token, f"{name!r} is a field loggen's formats write themselves "
                             f"({', '.join(sorted(RESERVED_NAMES))}); choose another name")
    kind = head.strip()
    if not colon and not name and kind not in KINDS:
        if kind in named:
            return Ref(kind)
        raise TokenError(column, token, f"unknown kind or name; kinds: {', '.join(KINDS)}")
    try:
        parsed = parse_args(kind, args, base)
    except ValueError as err:
        raise TokenError(column, token, str(err)) from None
    if name:
        named.add(name)
    return Token(kind, parsed, name, column)


def uses(parts: Iterable[Part], kind: str) -> bool:
    return any(isinstance(p, Token) and p.kind == kind for p in parts)


# --- values ------------------------------------------------------------------------------------------

def _placeholder(letter: str, width: int) -> str:
    return (PLACEHOLDER + letter + PLACEHOLDER * width)[:width]


def render_parts(parts: tuple[Part, ...], rng: random.Random, host: str,
                 stamps: dict[str, int]) -> tuple[str, dict[str, str]]:
    """(message text, named values) of one event. Timestamps and ``{seq}`` become placeholders;
    ``stamps`` maps each placeholder used to its stamp kind (``SEQ_KIND`` for the sequence)."""
    out: list[str] = []
    values: dict[str, str] = {}
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        if isinstance(part, Ref):
            out.append(values[part.name])
            continue
        value = VALUES[part.kind](part.args, rng, host, stamps)
        if part.name:
            values[part.name] = value
        out.append(value)
    return "".join(out), values


def _timestamp(args: tuple[object, ...], stamps: dict[str, int]) -> str:
    kind, width = int(args[0]), int(args[1])           # type: ignore[call-overload]
    for ph, k in stamps.items():
        if k == kind:
            return ph
    ph = _placeholder(chr(ord("A") + len(stamps)), width)
    stamps[ph] = kind
    return ph


def _seq(stamps: dict[str, int]) -> str:
    ph = _placeholder("S", SEQ_DIGITS)
    stamps[ph] = SEQ_KIND
    return ph


def _int(a: tuple[object, ...], rng: random.Random) -> str:
    return str(rng.randint(int(a[0]), int(a[1])))                        # type: ignore[call-overload]


def _float(a: tuple[object, ...], rng: random.Random) -> str:
    return f"{rng.uniform(float(a[0]), float(a[1])):.{a[2]}f}"           # type: ignore[arg-type]


def _choice(a: tuple[object, ...], rng: random.Random) -> str:
    values, weights = cast(tuple[str, ...], a[0]), cast(tuple[float, ...], a[1])
    return rng.choices(values, weights)[0]


def _address(a: tuple[object, ...], rng: random.Random, version: int) -> str:
    base, size = int(a[0]), int(a[1])                                    # type: ignore[call-overload]
    return str(ipaddress.ip_address(base + rng.randrange(size)) if version == 4 else
               ipaddress.IPv6Address(base + rng.randrange(size)))


VALUES: dict[str, Callable[[tuple[object, ...], random.Random, str, dict[str, int]], str]] = {
    "int": lambda a, rng, host, st: _int(a, rng),
    "float": lambda a, rng, host, st: _float(a, rng),
    "choice": lambda a, rng, host, st: _choice(a, rng),
    "word": lambda a, rng, host, st: _choice(a, rng),
    "ipv4": lambda a, rng, host, st: _address(a, rng, 4),
    "ipv6": lambda a, rng, host, st: _address(a, rng, 6),
    "mac": lambda a, rng, host, st: ":".join(f"{rng.randrange(256):02x}" for _ in range(6)),
    "uuid": lambda a, rng, host, st: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "hex": lambda a, rng, host, st: f"{rng.getrandbits(4 * int(a[0])):0{a[0]}x}",   # type: ignore[call-overload]
    "user": lambda a, rng, host, st: rng.choice(catalog.USERS),
    "host": lambda a, rng, host, st: host,
    "timestamp": lambda a, rng, host, st: _timestamp(a, st),
    "seq": lambda a, rng, host, st: _seq(st),
}


def fill_placeholders(data: bytes, stamps: dict[str, int], now: float,
                      utc: bool) -> tuple[bytes, list[tuple[int, int]]]:
    """Each placeholder in ``data`` replaced by its stamp now (zeros for the sequence), and the
    sites: (offset, kind). A placeholder cut by ``max_length`` is blanked, not patched."""
    from loggend.engine.formats import STAMPS
    if PLACEHOLDER.encode() not in data:
        return data, []
    buf = bytearray(data)
    sites: list[tuple[int, int]] = []
    for ph, kind in stamps.items():
        mark = ph.encode()
        at = buf.find(mark)
        while at >= 0:
            buf[at:at + len(mark)] = b"0" * len(mark) if kind == SEQ_KIND else STAMPS[kind](now, utc)
            sites.append((at, kind))
            at = buf.find(mark, at + len(mark))
    return bytes(buf).replace(PLACEHOLDER.encode(), b" "), sites
