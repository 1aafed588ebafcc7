"""Small pure parsers of the values people type (durations, rates, ports, sizes, addresses).

Every parser takes the name of the key or flag it is parsing, so the one-line error it raises
names what the user typed (``/etc/loggen.yaml: rate`` or ``--rate``). Used by the config, the
command line and every command's flags; each is a pure function but ``resolve_host`` (DNS).
"""

from __future__ import annotations

import math
import os
import re
import socket
import unicodedata

from loggend.errors import ConfigError

DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
RATE_SUFFIXES = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}
MAX_RATE = 1e9
MIN_RATE = 1.0                    # the least rate but 0: below it a rate reads, rounds and shows as 0 (unlimited)
MAX_DURATION = 3650 * 86400.0     # ten years: any longer duration or interval is a typo (or an attack)
MAX_SIZE = 1 << 60                # 1 EiB
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)?", re.ASCII)
_RATE_RE = re.compile(r"(\d+(?:\.\d+)?)([kKmM]?)", re.ASCII)
_NUMERIC_LABEL_RE = re.compile(r"\d+|0[xX][0-9A-Fa-f]*", re.ASCII)
_HOST_LABEL_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
MAX_HOST_NAME = 253               # characters of a DNS name, its dots included (RFC 1035)
MAX_WORKERS = 1024
MIN_HUNG_TIMEOUT = 1.0
MAX_HUNG_TIMEOUT = 3600.0         # a longer one would all but switch hung detection off
MIN_INTERVAL, MAX_INTERVAL = 0.1, 60.0
LIVE_AUTO = 0.0                   # live_interval: auto (1 s on a terminal, LIVE_PIPE_SECONDS elsewhere)
MIN_LIVE, MAX_LIVE = 1.0, 3600.0
SOCKET_PATH_BYTES = 107           # sun_path holds 108 bytes, NUL included
TOKEN_RE = re.compile(r"|[!-~]{16,256}")
ORIGIN_RE = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")
HOST_RE = re.compile(r"\*|\.?[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[?[0-9A-Fa-f:.]+\]?")
OFF_WORDS = ("off", "false", "no", "none")


def parse_duration(key: str, text: str | float, bare_unit: str = "s", zero: str = "") -> float:
    """``90s``, ``30m``, ``1h``, ``1.5h``, ``250ms``; a bare number is in ``bare_unit``. ``zero`` is what 0
    means where it means something (the error says so: ``0 = until stopped``)."""
    m = _DURATION_RE.fullmatch(str(text).strip())
    if not m:
        raise ConfigError(key, text, "a duration such as 90s, 30m or 1h" + (f" (0 = {zero})" if zero else ""))
    seconds = float(m.group(1)) * DURATION_UNITS[m.group(2) or bare_unit]
    if not seconds <= MAX_DURATION:                 # 400 digits are inf: no run, reload or sleep takes that
        raise ConfigError(key, text, f"a duration of at most {MAX_DURATION / 86400:.0f}d, such as 90s, 30m or 1h")
    return seconds


def parse_run_duration(key: str, text: str | float, bare_unit: str = "s") -> float:
    """A run's ``duration``: 0 is until stopped."""
    return parse_duration(key, text, bare_unit, zero="until stopped")


def parse_rate(key: str, text: str | float) -> float:
    """Events per second: ``250000``, ``250k``, ``4M``; 0 = as fast as possible; between 0 and
    ``MIN_RATE`` is refused (it would read, round and show as 0, which means unlimited)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        try:
            value = float(text)
        except OverflowError:                    # a YAML integer of 400 digits: over any bound below
            value = math.inf
    else:
        m = _RATE_RE.fullmatch(str(text).strip())
        if not m:
            raise ConfigError(key, text, "events per second >= 0, e.g. 50000, 250k or 4M (0 = unlimited)")
        value = float(m.group(1)) * RATE_SUFFIXES[m.group(2)]
    if not (0 <= value <= MAX_RATE) or math.isnan(value):
        raise ConfigError(key, text, f"events per second between 0 and {MAX_RATE:.0e} (0 = unlimited)")
    if 0 < value < MIN_RATE:
        raise ConfigError(key, text, f"events per second of at least {MIN_RATE:g}, or 0 (unlimited)")
    return value


def not_ascii(text: object) -> bool:
    """A number written with other digits than 0-9 (int() takes ``５`` and ``٥`` as 5): refused as
    written, so what is checked is what the user sees."""
    return isinstance(text, str) and not text.isascii()


def ascii_float(text: object) -> float:
    """``float()`` of a number written with the digits 0-9; ValueError for any other (``not_ascii``)."""
    if not_ascii(text):
        raise ValueError(text)
    return float(text)  # type: ignore[arg-type]


def parse_port(key: str, text: str | float, lowest: int = 1) -> int:
    """A port (UDP, TCP or the dashboard's); ``lowest=0`` lets a listener ask for any free port."""
    try:
        if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()) or not_ascii(text):
            raise ValueError(text)
        port = int(text)
    except (TypeError, ValueError, OverflowError):     # OverflowError: a float infinity
        port = -1
    if not lowest <= port <= 65535:
        raise ConfigError(key, text, f"a port from {lowest} to 65535")
    return port


def parse_int(key: str, text: object, low: int, high: int) -> int:
    try:
        if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()) or not_ascii(text):
            raise ValueError(text)
        value: int = int(text)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(key, text, f"a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise ConfigError(key, text, f"a whole number from {low} to {high}")
    return value


def parse_choice(key: str, text: str, allowed: tuple[str, ...]) -> str:
    if text not in allowed:
        raise ConfigError(key, text, "one of " + ", ".join(allowed))
    return text


def split_target(key: str, text: str, lowest_port: int = 1) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    text = str(text).strip()
    try:
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ConfigError(key, text, "HOST, HOST:PORT or [IPv6]:PORT")
            return host, parse_port(key, rest[1:], lowest_port) if rest else None
        if text.count(":") == 1:
            host, _, port = text.partition(":")
            return host, parse_port(key, port, lowest_port)
    except ConfigError as err:                  # the whole target as written, not its port part
        raise ConfigError(key, text, err.allowed) from None
    return text, None


def is_address(host: str) -> bool:
    """A full IPv4 dotted quad or an IPv6 address (no inet_aton shorthand such as ``5`` or ``127.1``)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
            return True
        except OSError:
            pass
    return False


SHORTHAND = ("a host name, or an address written in full such as 192.0.2.10 or 2001:db8::1 (shorthand such as 5 or "
             "127.1 is not accepted)")


def is_shorthand(host: str) -> bool:
    """What inet_aton would read as an address but is not written as one: ``5``, ``127.1``, ``0x7f.1``,
    ``10.0.0.010``. A host name's last label is never all digits (RFC 1123, 3696), so nothing is lost."""
    if is_address(host):
        return False
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return bool(_NUMERIC_LABEL_RE.fullmatch(last))


def other_digits(text: str) -> bool:
    """Whether ``text`` has a character other than 0-9 that is a digit or becomes one when a resolver maps
    it (IDNA: NFKC): a fullwidth ５, an Arabic-Indic ٥, a superscript ², a circled ⑩."""
    return any(not c.isascii() and (c.isdigit() or any(d.isdigit() for d in unicodedata.normalize("NFKC", c)))
               for c in text)


# Unicode's default ignorable code points (DerivedCoreProperties.txt): characters that show as nothing
# where a font has no glyph for them, beside the control and format characters.
IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
             (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
             (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
             (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))


def invisible(text: str) -> bool:
    """Whether ``text`` has a character that shows as nothing (a control or format character, or one
    Unicode calls default ignorable: a zero-width space, a soft hyphen, a byte-order mark, a variation
    selector, a Hangul filler), which IDNA drops or turns into another label: ``exa`` + a zero-width
    space + ``mple.com`` would be looked up as ``example.com``, another name than the one on screen."""
    return any(unicodedata.category(c) in ("Cc", "Cf") or
               any(lo <= ord(c) <= hi for lo, hi in IGNORABLE) for c in text if not c.isascii() or not c.isprintable())


def parse_host_name(key: str, value: object) -> str:
    """A name a TLS handshake can send and verify: an IP address, or a DNS name (international ones
    too) of labels of 1 to 63 letters, digits, hyphens or underscores, at most 253 characters in all.
    "" stays "" (none)."""
    name = str(value or "").strip()
    if not name or is_address(name):
        return name
    if other_digits(name):
        raise ConfigError(key, value, "a host name or IP address written with the digits 0-9")
    if invisible(name):
        raise ConfigError(key, value, "a host name or IP address without invisible characters")
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name[:-1].split(".") if ascii_name.endswith(".") else ascii_name.split(".")
    if not 0 < len(ascii_name) <= MAX_HOST_NAME or not all(_HOST_LABEL_RE.fullmatch(x) for x in labels):
        raise ConfigError(key, value, f"a host name (labels of 1 to 63 letters, digits or hyphens, at most "
                          f"{MAX_HOST_NAME} characters in all) or an IP address")
    if is_shorthand(ascii_name):
        raise ConfigError(key, value, SHORTHAND)
    return name


def resolve_host(key: str, host: str) -> str:
    """The numeric address the workers will send to (resolved once, at start-up).

    Shorthand addresses are refused: ``target: 5`` would otherwise be 0.0.0.5 and send off the box.
    """
    if not host:
        raise ConfigError(key, host, "a host name or IP address")
    if other_digits(host):
        raise ConfigError(key, host, "a host name or IP address written with the digits 0-9")
    if invisible(host):
        raise ConfigError(key, host, "a host name or IP address without invisible characters")
    written = host
    if not host.isascii():                    # what the resolver will look up (IDNA: fullwidth dots are dots)
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ConfigError(key, written, "a host name that resolves, or an IP address") from None
    if is_shorthand(host):
        raise ConfigError(key, written, SHORTHAND)
    if ":" in host and not is_address(host):       # no name has a colon: not asked of a DNS server
        raise ConfigError(key, written, "HOST, HOST:PORT or [IPv6]:PORT")
    if host.rstrip(".").lower().endswith(".invalid") or host.rstrip(".").lower() == "invalid":
        # RFC 6761: no name under .invalid exists; not asked of a DNS server either
        raise ConfigError(key, written, "a host name that resolves, or an IP address")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (socket.gaierror, UnicodeError):
        raise ConfigError(key, written, "a host name that resolves, or an IP address") from None
    infos.sort(key=lambda i: i[0] != socket.AF_INET)          # prefer IPv4, like most SIEM inputs
    return str(infos[0][4][0])


SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}
_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE | re.ASCII)
_PORT_PART_RE = re.compile(r"(\d+)(?:-(\d+))?", re.ASCII)
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def parse_bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS or text in FALSE_WORDS:
        return text in TRUE_WORDS
    raise ConfigError(key, value, "true or false")


def parse_int_list(key: str, value: object, allowed: str, low: int, high: int) -> tuple[int, ...]:
    """``514-553``, ``514``, ``"514,600-610"`` or a YAML list of numbers and ranges."""
    parts: list[object] = list(value) if isinstance(value, list) else list(str(value).split(","))
    out: list[int] = []
    for part in parts:
        is_number = isinstance(part, int) and not isinstance(part, bool)
        m = _PORT_PART_RE.fullmatch(str(part).strip()) if is_number or isinstance(part, str) else None
        if not m:
            raise ConfigError(key, value, allowed)
        try:
            first = int(m.group(1))
            last = int(m.group(2) or first)
        except ValueError:                          # more digits than int() takes
            raise ConfigError(key, value, allowed) from None
        if not low <= first <= last <= high:
            raise ConfigError(key, value, allowed)
        out.extend(range(first, last + 1))
    if not out:
        raise ConfigError(key, value, allowed)
    return tuple(out)


def parse_ports(key: str, value: object) -> tuple[int, ...]:
    allowed = "ports from 1 to 65535: a range 514-553, a port, or a list [514, 600-610]"
    return parse_int_list(key, value, allowed, 1, 65535)


def parse_size(key: str, value: object) -> int:
    """Bytes: ``12G``, ``512M``, ``12GiB``, a number of bytes; 0 = no limit."""
    m = _SIZE_RE.fullmatch(str(value).strip())
    if isinstance(value, bool) or not m:
        raise ConfigError(key, value, "a size such as 512M or 12G (0 = no limit)")
    size = float(m.group(1)) * SIZE_UNITS[m.group(2).upper()]
    if not size <= MAX_SIZE:                        # 400 digits are inf, and int(inf) an OverflowError
        raise ConfigError(key, value, f"a size of at most {format_size(MAX_SIZE)}, such as 512M or 12G (0 = no limit)")
    return int(size)


def parse_listen(key: str, value: object) -> tuple[str, int]:
    """``ADDRESS:PORT`` for a listening socket; ``PORT`` alone means 127.0.0.1."""
    text = str(value).strip()
    if text.isdigit():
        return "127.0.0.1", parse_port(key, text)
    host, port = split_target(key, text, lowest_port=0)
    if port is None or not host:
        raise ConfigError(key, value, "ADDRESS:PORT, e.g. 127.0.0.1:8080")
    return resolve_host(key, host), port


def format_ports(ports: tuple[int, ...]) -> str:
    """(514, 515, ..., 553) -> ``514-553``; anything else comma-separated ranges."""
    runs: list[list[int]] = []
    for p in ports:
        if runs and p == runs[-1][1] + 1:
            runs[-1][1] = p
        else:
            runs.append([p, p])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def format_size(nbytes: int) -> str:
    for unit in ("E", "P", "T", "G", "M", "K"):
        if nbytes >= SIZE_UNITS[unit]:
            return f"{nbytes / SIZE_UNITS[unit]:.1f} {unit}iB"
    return f"{nbytes} B"


def plural(count: int, one: str, many: str = "") -> str:
    """``1 worker``, ``2 workers``; ``many`` where adding an s is wrong (``processes``)."""
    return f"{count:,} {one if count == 1 else many or one + 's'}"


# --- values of one kind of key each (the settings registry names them as its keys' parsers) -------------

def parse_processes(key: str, value: object) -> int:
    """``worker_processes``: a count, or 0 / ``auto`` for the default."""
    return 0 if str(value).strip() == "auto" else parse_int(key, value, 0, MAX_WORKERS)


def parse_hung_timeout(key: str, value: object) -> float:
    seconds = parse_duration(key, value)  # type: ignore[arg-type]
    if not MIN_HUNG_TIMEOUT <= seconds <= MAX_HUNG_TIMEOUT:
        raise ConfigError(key, value, f"from {MIN_HUNG_TIMEOUT:g}s (workers beat every 0.1 s) to "
                          f"{MAX_HUNG_TIMEOUT / 3600:g}h (a hung worker is found no later than this)")
    return seconds


def parse_dashboard(key: str, value: object) -> tuple[str, int] | None:
    """``ADDRESS:PORT`` (port 0 = any free one), or ``off`` for no web process."""
    if value is False or str(value).strip().lower() in OFF_WORDS:
        return None
    return parse_listen(key, value)


def parse_token(key: str, value: object) -> str:
    text = str(value)
    if not TOKEN_RE.fullmatch(text):
        raise ConfigError(key, "<hidden>", "empty, or 16 to 256 printable characters without spaces")
    return text


def parse_interval(key: str, value: object) -> float:
    seconds = parse_duration(key, value)  # type: ignore[arg-type]
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise ConfigError(key, value, f"from {MIN_INTERVAL:g}s to {MAX_INTERVAL:g}s")
    return seconds


def parse_origins(key: str, value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
    out = []
    for item in items:
        text = str(item).strip().rstrip("/")
        if not ORIGIN_RE.fullmatch(text):
            raise ConfigError(key, item, "origins such as https://grafana.example:3000")
        out.append(text)
    return tuple(out)


def parse_hosts(key: str, value: object) -> tuple[str, ...]:
    """Host names the dashboard answers to besides its own addresses: ``name``, ``.suffix`` or ``*``."""
    items = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
    out = []
    for item in items:
        text = str(item).strip().lower()
        if not HOST_RE.fullmatch(text):
            raise ConfigError(key, item, "host names such as loadgen.example, .example (any name under it) or *")
        out.append(text.strip("[]"))
    return tuple(out)


def parse_live_interval(key: str, value: object) -> float:
    """``auto`` (LIVE_AUTO), or seconds between live lines on stdout."""
    if str(value).strip() == "auto":
        return LIVE_AUTO
    seconds = parse_duration(key, value)  # type: ignore[arg-type]
    if not MIN_LIVE <= seconds <= MAX_LIVE:
        raise ConfigError(key, value, f"auto, or from {MIN_LIVE:g}s to {MAX_LIVE:g}s")
    return seconds


def parse_control_socket(key: str, value: object) -> str:
    """``auto`` (a per-run socket in the runtime directory), ``off``, or a path (made absolute)."""
    text = str(value).strip()
    if value is False or text.lower() in OFF_WORDS:
        return "off"
    if text == "auto":
        return text
    path = os.path.abspath(text) if text else ""
    if not path or len(path.encode()) > SOCKET_PATH_BYTES:
        raise ConfigError(key, value, f"auto, off, or a path of at most {SOCKET_PATH_BYTES} bytes")
    return path
