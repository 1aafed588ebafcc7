"""Replay of a captured log file: its lines as they are, their timestamps rewritten to the sending time.

Each line's first timestamp in a style loggen recognises becomes a patch site of the pool, like
the header timestamp of a generated message, so it carries the time of sending (to the second):

=========== ================================== =========================================
style       example                            rewritten as
=========== ================================== =========================================
RFC 3164    ``Nov 29 06:00:00``                the same, local time (UTC with ``--utc``)
ISO 8601    ``2026-11-29T06:00:00.123+01:00``  date and time in the line's own offset
            (RFC 5424, also with a space)      (``Z``: UTC; none: local); fraction kept
CLF         ``[29/Nov/2026:06:00:00 +0000]``   date and time in the line's own offset
epoch       ``1795932000`` or ``1795932000.5`` the epoch second; fraction kept
=========== ================================== =========================================

A line without one is sent unchanged and counted.

**Lines that are not syslog** (an nginx access log, a JSON log: no ``<PRI>`` at the start) get a
syslog header, as a file forwarder (rsyslog's imfile, syslog-ng's file source) sends them: RFC
3164 by default (``<133>Mmm dd hh:mm:ss HOST TAG: line``, local0.notice), RFC 5424 with
``wrap: rfc5424`` (``<133>1 TIMESTAMP HOST TAG - - SD line``), or none (``wrap: none``: sent
as they are, which a receiver reads with the first word of the line taken for the host). HOST is
the sending machine's name, TAG the file's; the header's timestamp is the time of sending, and
the line's own timestamp is rewritten too. With sequence numbers on (the default) the
stream and sequence are added where a receiver looks: an RFC 5424 line gets the SD element
``[loggen@N stream=... seq=...]`` (before its own), a line ending in a JSON object gets
``"stream"`` and ``"seq"`` members, any other line ends in `` stream=ID seq=N`` as loggen's
own messages do; ``sequence: false`` sends the lines byte for byte.

Worker ``i`` of ``W`` takes lines ``i, i + W, i + 2W...`` of the file (a file with fewer lines
than workers: every worker takes all), ``pool_size`` at a time: a pool holds one pass, and when
the sender finishes it the next pass is read and rendered (the file is streamed, plain or gzip,
looping at its end), so memory follows the pool, not the file. When a worker's lines fit in one
pass (repeated to fill it), that pass is sent again and again like a generated pool, with no
reading or rendering at all. Within a pass lines go
out grouped by length (UDP segmentation offload needs equal lengths); sequence numbers follow
the sending order.

``file_timing`` reads the file once for ``--speed``: the number of lines in each second of the
file's own time, which the control plane turns into a rate profile.
"""

from __future__ import annotations

import calendar
import gzip
import itertools
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from loggend.engine.formats import MONTHS, SEQ_DIGITS, Rendered, register_stamp

MONTH_RE = b"(" + b"|".join(m.encode() for m in MONTHS) + b")"
CLF = re.compile(rb"\[(\d\d)/" + MONTH_RE + rb"/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\]")
ISO = re.compile(rb"(\d{4})-(\d\d)-(\d\d)([T ])(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:?\d\d)?")
BSD = re.compile(MONTH_RE + rb" ([ 0-3]\d) (\d\d):(\d\d):(\d\d)")
EPOCH = re.compile(rb"(?<![\d.])(1\d{9})(?:\.\d+)?(?![\d])")
RFC5424 = re.compile(rb"<\d{1,3}>1 (?:\S+ ){5}")      # PRI VERSION TIMESTAMP HOST APP PROCID MSGID, then SD
MONTH_NUMBERS = {m.encode(): i + 1 for i, m in enumerate(MONTHS)}
MAX_LINE = 65_000                 # a longer line cannot be one datagram: skipped and counted
READ_LIMIT = MAX_LINE + 2         # a line is read this far at once (a sendable one and its CR LF)
SKIP_CHUNK = 1 << 20              # the rest of a longer line is read past in pieces of this size
MAX_SKIPPED_IN_A_ROW = 10_000_000 # a file changed under the run into nothing but such lines: stop, not spin
BSD_YEAR = 2026                   # RFC 3164 carries no year: timing only needs differences
BSD_CHECK_YEAR = 2024             # ... and its day is checked in a leap year (Feb 29 is a day)
MAX_OFFSET_HOURS = 23             # a UTC offset's hours (the real ones are -12 to +14)
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ReplaySpec:
    path: str
    workers: int = 1              # the fleet's workers: worker i takes every workers-th line from line i
    speed: float = 0.0            # > 0: the file's own timing, this many times faster (the plan's profile)
    first: int = 0                # this instance's first worker in the fleet's numbering (I x workers)
    wrap: str = "none"            # the header a line without one gets: rfc3164, rfc5424 or none (as it is)
    host: str = "localhost"       # ... its HOSTNAME (the sending machine's, as a file forwarder sends it)
    tag: str = "replay"           # ... and its TAG / APP-NAME (the file's name)


@dataclass(frozen=True)
class Found:
    at: int                       # where the patched part starts in the line
    kind: int                     # its stamp kind (registered)
    seconds: float                # the time the line carries (epoch seconds; timing only)


def _offset_stamp(name: str, offset: int, render: str) -> int:
    """A stamp kind writing the time in a fixed UTC offset (seconds) with ``render``
    (``clf`` or ``iso`` with a separator)."""
    def stamp(now: float, utc: bool) -> bytes:
        import time
        t = time.gmtime(int(now) + offset)
        if render == "clf":
            return b"%02d/%s/%04d:%02d:%02d:%02d" % (t.tm_mday, MONTHS[t.tm_mon - 1].encode(), t.tm_year,
                                                     t.tm_hour, t.tm_min, t.tm_sec)
        return b"%04d-%02d-%02d%s%02d:%02d:%02d" % (t.tm_year, t.tm_mon, t.tm_mday, render[-1].encode(),
                                                    t.tm_hour, t.tm_min, t.tm_sec)
    return register_stamp(f"replay:{name}:{offset}", stamp)


def _local_iso_stamp(sep: bytes) -> int:
    def stamp(now: float, utc: bool) -> bytes:
        import time
        t = time.gmtime(now) if utc else time.localtime(now)
        return b"%04d-%02d-%02d%s%02d:%02d:%02d" % (t.tm_year, t.tm_mon, t.tm_mday, sep, t.tm_hour, t.tm_min,
                                                    t.tm_sec)
    return register_stamp(f"replay:iso-local:{sep.decode()}", stamp)


def _seconds(year: int, month: int, day: int, hour: int, minute: int, second: int,
             check_year: int = 0) -> int | None:
    """The epoch second of a date and time, or None when it is no time at all (month 13, day 0,
    hour 24, year 0): such a line is sent unchanged. ``check_year``: the year the day is checked
    in when the line carries none."""
    if not (1 <= year and 1 <= month <= 12 and hour < 24 and minute < 60 and second <= 60):
        return None
    if not 1 <= day <= calendar.monthrange(check_year or year, month)[1]:
        return None
    return calendar.timegm((year, month, day, hour, minute, second))


def _offset(sign: bytes, hours: bytes, minutes: bytes) -> int | None:
    """A UTC offset in seconds, or None when it is none (hours above 23, minutes above 59)."""
    h, m = int(hours), int(minutes)
    if h > MAX_OFFSET_HOURS or m > 59:
        return None
    return (1 if sign == b"+" else -1) * (h * 3600 + m * 60)


def _clf(m: re.Match[bytes]) -> Found | None:
    offset = _offset(m[7], m[8], m[9])
    secs = _seconds(int(m[3]), MONTH_NUMBERS[m[2]], int(m[1]), int(m[4]), int(m[5]), int(m[6]))
    if offset is None or secs is None:
        return None
    return Found(m.start(1), _offset_stamp("clf", offset, "clf"), secs - offset)


def _iso(m: re.Match[bytes]) -> Found | None:
    secs = _seconds(int(m[1]), int(m[2]), int(m[3]), int(m[5]), int(m[6]), int(m[7]))
    if secs is None:
        return None
    zone, sep = m[9], m[4]
    if zone is None:
        return Found(m.start(1), _local_iso_stamp(sep), secs + float(m[8] or 0))
    offset = 0 if zone == b"Z" else _offset(zone[:1], zone[1:3], zone[-2:])
    if offset is None:
        return None
    kind = _offset_stamp("iso" + sep.decode(), offset, "iso" + sep.decode())
    return Found(m.start(1), kind, secs - offset + float(m[8] or 0))


def _bsd(m: re.Match[bytes]) -> Found | None:
    from loggend.engine.formats import STAMP_RFC3164
    secs = _seconds(BSD_YEAR, MONTH_NUMBERS[m[1]], int(m[2]), int(m[3]), int(m[4]), int(m[5]), BSD_CHECK_YEAR)
    return None if secs is None else Found(m.start(1), STAMP_RFC3164, secs)


def find_stamp(line: bytes) -> Found | None:
    """The first timestamp of the line in a recognised style, or None (also when that first one
    is no real time, such as ``0000-00-00 00:00:00``: the line is sent as it is)."""
    found: Found | None = None
    at = len(line)                    # where the first timestamp-like text starts, a real time or not
    for pattern, read in ((CLF, _clf), (ISO, _iso), (BSD, _bsd)):
        m = pattern.search(line, 0, at)
        if m:
            at, found = m.start(1), read(m)
    m = EPOCH.search(line, 0, at)
    if m:
        found = Found(m.start(1), register_stamp("replay:epoch", lambda now, utc: b"%010d" % int(now)), float(m[1]))
    return found


WRAPS = ("rfc3164", "rfc5424", "none")
WRAP_PRI = b"<133>"              # local0.notice, as rsyslog's imfile sends a file's lines by default
SYSLOG_START = re.compile(rb"<\d{1,3}>")


def wrap_header(wrap: str, host: str, tag: str, utc: bool) -> tuple[bytes, int]:
    """The header a line without one gets, its timestamp as placeholders, and that timestamp's kind."""
    from loggend.engine.formats import STAMP_RFC3164, STAMP_RFC3339, STAMPS
    kind = STAMP_RFC3339 if wrap == "rfc5424" else STAMP_RFC3164
    blank = b"0" * len(STAMPS[kind](0.0, utc))
    if wrap == "rfc5424":
        return WRAP_PRI + b"1 " + blank + b" %s %s - - " % (host.encode(), tag.encode()), kind
    return WRAP_PRI + blank + b" %s %s: " % (host.encode(), tag.encode()), kind


def render_line(line: bytes, sequence: bool, enterprise: int, wrap: str = "none", host: str = "localhost",
                tag: str = "replay", utc: bool = False) -> tuple[Rendered, bool]:
    """The line as a ``Rendered`` (stream id and sequence where the receiver looks for them) and
    whether it carried a timestamp of its own that loggen rewrites (a header loggen wraps a line in
    has one, but the line's own text is what the count is about); a line that is not syslog wrapped
    in ``wrap``'s header first."""
    found = find_stamp(line)
    own = found is not None
    sites: tuple[tuple[int, int], ...] = ((found.at, found.kind),) if found else ()
    if wrap != "none" and not SYSLOG_START.match(line):
        header, kind = wrap_header(wrap, host, tag, utc)
        prefix = header + (b"- " if wrap == "rfc5424" else b"")       # RFC 5424: no SD of its own
        at = len(WRAP_PRI) + (2 if wrap == "rfc5424" else 0)
        sites = ((at, kind), *((o + len(prefix), k) for o, k in sites))
        line = prefix + line
        found = found or Found(at, kind, 0.0)
    zeros = b"0" * SEQ_DIGITS
    if not sequence:
        return Rendered(line, b"", sites, (), -1), own
    m = RFC5424.match(line)
    if m:
        sd_at = m.end()
        rest = line[sd_at:]
        cut = 1 if rest[:1] == b"-" else 0
        rest = rest[cut:]
        head = line[:sd_at] + b'[loggen@%d stream="' % enterprise
        sd_end = b'" seq="' + zeros + b'"]'
        tail = sd_end + rest
        in_rest = tuple((len(sd_end) + o - sd_at - cut, k) for o, k in sites if o >= sd_at)   # a wrapped line's own
        return Rendered(head, tail, tuple(s for s in sites if s[0] < sd_at), (), len(tail) - len(b'" seq="'),
                        in_rest), own
    brace = line.find(b"{")
    if line.endswith(b"}") and brace >= 0 and line[brace:] != b"{}":
        try:
            is_object = isinstance(json.loads(line[brace:]), dict)
        except (ValueError, RecursionError):            # not JSON, or nested deeper than Python parses
            is_object = False
        if is_object:
            tail = b'","seq":"' + zeros + b'"}'
            return Rendered(line[:-1] + b',"stream":"', tail, sites, (), SEQ_DIGITS + 2), own
    return Rendered(line + b" stream=", b" seq=" + zeros, sites, (), SEQ_DIGITS), own


def open_lines(path: str) -> Iterator[bytes]:
    """The file's non-empty lines (gzip or plain), without their line ends. A line longer than
    ``MAX_LINE`` comes as its first ``MAX_LINE + 1`` bytes (it is skipped and counted, and only its
    length and its first timestamp matter): the rest of it is read past in ``SKIP_CHUNK`` pieces,
    so no line, not even a file without a line end, is ever held in memory whole."""
    with open(path, "rb") as raw:
        gz = raw.read(2) == GZIP_MAGIC
    f = gzip.open(path, "rb") if gz else open(path, "rb")       # noqa: SIM115 (closed below)
    with f:
        while line := f.readline(READ_LIMIT):
            if len(line) == READ_LIMIT and not line.endswith(b"\n"):
                while (rest := f.readline(SKIP_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                yield line[:MAX_LINE + 1]
                continue
            line = line.rstrip(b"\r\n")
            if line:
                yield line


def check_sendable(path: str) -> None:
    """ValueError (or the reader's own error) unless the file has a line loggen can send: read up to
    the first one, so a file of blank or over-long lines, or a gzip broken at its start, is refused
    before the run instead of failing in every worker."""
    if not any(len(line) <= MAX_LINE for line in open_lines(path)):
        raise ValueError(f"{path}: no line to replay (none that is not empty and at most {MAX_LINE:,} bytes)")


class ReplaySource:
    """One worker's lines of the file, a pass (``size`` lines) at a time, looping at the end."""

    def __init__(self, spec: ReplaySpec, worker: int, size: int,
                 opener: Callable[[str], Iterator[bytes]] = open_lines) -> None:
        self.spec, self.worker, self.size, self.opener = spec, worker, size, opener
        self.step = max(1, spec.workers)
        self.lines: Iterator[bytes] | None = None
        self.next_pass = 0            # the pass ``read`` continues with
        self.unstamped = self.too_long = self.read_lines = 0
        self.empty_share = False      # fewer lines than workers: this worker takes them all
        self.loops = 0                # times this worker's lines were read to the end
        self.share_lines = 0          # lines of the file that are this worker's (known once it looped)
        self.first_pass_looped = False

    def _mine(self) -> Iterator[bytes]:
        """This worker's lines, again and again. A share of at most a pass of lines is kept from
        its first reading and repeated from memory (over-long lines left out, counted once): a file
        of a few lines and one huge one is not read thousands of times to fill a pass."""
        step, me = (1, 0) if self.empty_share else (self.step, (self.spec.first + self.worker) % self.step)
        kept: list[bytes] | None = []
        while True:
            if kept and self.loops:
                yield from kept
                self.loops += 1
                continue
            got = False
            for k, line in enumerate(self.opener(self.spec.path)):
                if k % step == me:
                    got = True
                    self.share_lines += not self.loops
                    if kept is not None and len(line) <= MAX_LINE:
                        kept = kept if len(kept) < self.size else None
                        if kept is not None:
                            kept.append(line)
                    yield line
            if not got:
                if step == 1:
                    raise ValueError(f"{self.spec.path}: no lines to replay")
                self.empty_share, step, me, self.share_lines, kept = True, 1, 0, 0, []
                continue
            self.loops += 1

    def read(self, index: int) -> list[bytes]:
        """The lines of pass ``index`` (a restarted worker asks for a later one: the earlier are skipped)."""
        if self.lines is None or index < self.next_pass:
            self.lines, self.next_pass, self.loops, self.share_lines = self._mine(), 0, 0, 0
        while self.next_pass < index:
            self._take()
        return self._take()

    @property
    def fits(self) -> bool:
        """This worker's lines fit in one pass: every pass is the first one again (nothing to re-read)."""
        return self.loops > 0 and self.first_pass_looped

    def _take(self) -> list[bytes]:
        assert self.lines is not None
        out: list[bytes] = []
        loops = self.loops
        skipped = 0
        while len(out) < self.size:
            line = next(self.lines)
            if skipped > MAX_SKIPPED_IN_A_ROW:
                raise ValueError(f"{self.spec.path}: no line to replay in the last {skipped:,} "
                                 f"(over {MAX_LINE:,} bytes)")
            self.read_lines += 1
            if len(line) > MAX_LINE:
                self.too_long += 1
                skipped += 1
                continue
            skipped = 0
            out.append(line)
        if self.next_pass == 0:
            if self.loops == loops:                    # did the share end exactly here? look one line ahead
                self.lines = itertools.chain([next(self.lines)], self.lines)
            self.first_pass_looped = self.loops > loops
        self.next_pass += 1
        return out


def file_timing(path: str, speed: float, max_segments: int = 2000) -> list[tuple[float, float]]:
    """(rate, seconds) segments that send the file's lines with its own inter-arrival times,
    ``speed`` times faster: lines per second of the file's time, in buckets of a whole number of
    seconds wide enough for at most ``max_segments`` segments. Lines without a timestamp keep the
    time of the line before them; time going backwards (a new year in RFC 3164) counts as none."""
    counts: dict[int, int] = {}
    last = None
    first = None
    clock = 0.0
    for line in open_lines(path):
        found = find_stamp(line)
        if found is not None:
            if last is not None and found.seconds > last:
                clock += found.seconds - last
            last = found.seconds
        if first is None:
            first = clock
        second = int(clock)
        counts[second] = counts.get(second, 0) + 1
    if not counts:
        raise ValueError(f"{path}: no lines to replay")
    span = max(counts) + 1
    width = max(1, -(-span // max_segments))
    buckets = [0] * (-(-span // width))
    for second, n in counts.items():
        buckets[second // width] += n
    seconds = width / speed
    out: list[tuple[float, float]] = []
    for n in buckets:                                  # equal neighbours (quiet stretches) in one segment
        rate = n / seconds
        if out and out[-1][0] == rate:
            out[-1] = (rate, out[-1][1] + seconds)
        else:
            out.append((rate, seconds))
    return out


def shuffle_seed(seed: int, worker: int, index: int) -> random.Random:
    return random.Random(f"replay:{seed}:{worker}:{index}")
