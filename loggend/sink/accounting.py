"""Per-stream sequence accounting: received, lost, late (reordered), duplicate and outlying messages.

Every loggen message ends in ``stream=<id> seq=<12 digits>``. Per stream the sink keeps the next
expected number and the gaps still open below it:

* ``seq == expected``: in order.
* ``seq > expected``: the numbers skipped are a new gap (counted in ``gaps``).
* ``seq < expected`` inside an open gap: a late arrival. It fills the gap (counted in ``late``;
  net loss goes down by one) and is reordered, as iperf3 counts it.
* ``seq < expected`` outside every gap: a duplicate.
* ``seq`` below the lowest number seen so far: the numbers in between were missing too (a new
  gap at the front), and this one fills it as a late arrival.

**Outliers.** A number more than ``OUTLIER_WINDOW`` away from its stream (a forged or corrupt
``seq=999999999999``) is no gap: it is held aside, counted in ``outliers``, and the stream goes
on where it was. ``RESYNC_COUNT`` consecutive held numbers are taken as real: ahead of the
stream (a long outage), what they skipped is a gap after all and they are accounted; behind a
record smaller than them (the stream's first message was the stray one), the record is what
strays and the stream starts again at them. So ``outliers`` is a gauge (held messages may leave
it). A run of outliers behind a large record stays outliers.

**Bounded cost.** Open gaps are sorted, disjoint ranges found by bisection, so a message costs
the same whatever the stream's history; at most ``MAX_GAPS`` per stream and ``MAX_GAP_RANGES``
in all are kept. Past that the lowest range is forgotten (``gaps_forgotten``): its numbers stay
lost, and a number arriving below the forgotten ranges is counted as ``stale`` (late or
duplicate, the sink cannot tell) rather than either. At most ``max_streams`` streams are
tracked; messages of further streams are counted in ``overflow`` only (a stream the run announced
is always tracked).

**Foreign streams.** With ``announced`` (a run that says which streams it sends), a stream it
did not announce is counted apart: its messages in ``foreign``, its name in ``foreign_streams``,
and none of its numbers in gaps, late, duplicates or outliers.

The receiver hands over *runs*: ``first, count`` for ``count`` consecutive numbers (a whole UDP
GRO segment train checks its first and last message only), so the common case costs one
comparison per run, not per message. Totals are kept as the messages arrive (nothing is summed
over the streams to publish them). Counters only ever go up, but ``outliers``; the net loss,
``lost = gaps - late``, is the only figure called "lost".
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import NamedTuple

from loggend.engine.formats import SEQ_DIGITS

MAX_GAPS = 4096                    # open gap ranges kept per stream
MAX_GAP_RANGES = 1 << 18           # ... and over every stream of the process (about 20 MB at most)
MAX_STREAMS = 16384                # streams tracked per sink process; messages of more are only counted
OUTLIER_WINDOW = 1 << 20           # a number further than this from its stream is an outlier, not a gap
RESYNC_COUNT = 64                  # ... unless this many consecutive numbers follow it (a real jump)
# Where each format carries the stream id and the sequence number (loggend.engine.formats): the
# marker before the stream id, the one between it and the digits, and what follows the digits.
# RFC 5424's SD element is in the middle of the message and is searched for instead.
END_MARKS: tuple[tuple[bytes, bytes, bytes], ...] = (
    (b" stream=", b" seq=", b""),                                 # RFC 3164
    (b" cs1Label=stream cs1=", b" cn1Label=seq cn1=", b""),       # CEF
    (b"^stream=", b"^seq=", b""),                                 # LEEF 2.0 (delimiter ^)
    (b',"stream":"', b'","seq":"', b'"}'),                        # JSON
)
SD_STREAM, SD_SEQ, SD_END = b' stream="', b'" seq="', b'"]'       # RFC 5424
# Vendor sources' forms (``loggend.content``, each form's ``Proof``): (before the stream id, after it,
# before the digits, after them), found anywhere in the message. Set once per sink process by
# ``use_proofs`` before it receives (the sink learns them from the sources, it does not import them).
PROOFS: list[tuple[bytes, bytes, bytes, bytes]] = []


def use_proofs(proofs: tuple[tuple[bytes, bytes, bytes, bytes], ...]) -> None:
    """The vendor forms' proofs this process looks for, beside the engine's formats."""
    PROOFS[:] = [p for p in proofs if (p[0], p[2], p[3]) not in END_MARKS and p[0] != SD_STREAM]


class Tail(NamedTuple):
    """Where a message carries its stream and number, and the pattern the next one will match."""

    name: bytes
    number: int
    before: bytes            # the bytes before the digits: stream marker + name + sequence marker
    after: bytes             # the bytes after them
    at_end: bool             # the pattern ends the message (all but RFC 5424, whose SD is mid-message)

    def next_pattern(self, ahead: int = 1) -> bytes:
        return b"%s%0*d%s" % (self.before, SEQ_DIGITS, self.number + ahead, self.after)


def parse(message: bytes) -> tuple[bytes, int] | None:
    """(stream id, sequence number) of a loggen message in any format, or None for anything else."""
    found = parse_tail(message)
    return (found.name, found.number) if found else None


def parse_tail(message: bytes) -> Tail | None:
    """Stream id, sequence number and tail pattern of a loggen message in any format.

    For the formats that end in their sequence number, the next message of the stream ends in
    ``before + next number + after``, which the UDP receiver checks without parsing; in RFC 5424
    the pattern is in the structured data (``at_end`` False), which only the stream receiver uses."""
    n = len(message)
    for stream_mark, seq_mark, after in END_MARKS:
        digits_at = n - len(after) - SEQ_DIGITS
        mark_at = digits_at - len(seq_mark)
        if mark_at > 0 and message[mark_at:digits_at] == seq_mark and message.endswith(after):
            digits = message[digits_at:digits_at + SEQ_DIGITS]
            at = message.rfind(stream_mark, 0, mark_at)
            if at < 0 or not digits.isdigit():
                return None
            name = message[at + len(stream_mark):mark_at]
            return Tail(name, int(digits), stream_mark + name + seq_mark, after, True)
    seq_at = message.find(SD_SEQ)
    if seq_at < 0:
        return _vendor_tail(message) if PROOFS else None
    digits = message[seq_at + len(SD_SEQ):seq_at + len(SD_SEQ) + SEQ_DIGITS]
    at = message.rfind(SD_STREAM, 0, seq_at)
    if at < 0 or not digits.isdigit() or len(digits) != SEQ_DIGITS:
        return None
    name = message[at + len(SD_STREAM):seq_at]
    return Tail(name, int(digits), SD_STREAM + name + SD_SEQ, SD_END, False)


def _vendor_tail(message: bytes) -> Tail | None:
    """Stream id and number where a vendor form's proof puts them (``PROOFS``): the stream id between
    its markers, then the twelve digits between theirs. The pattern of the next message is the
    bytes from the stream marker to the digits; it ends the message when the digits (and what
    follows them) do."""
    for stream_before, stream_after, seq_before, seq_after in PROOFS:
        at = message.find(stream_before)
        if at < 0:
            continue
        name_at = at + len(stream_before)
        end = message.find(stream_after, name_at)
        seq_at = message.find(seq_before, end) if end >= 0 else -1
        if seq_at < 0:
            continue
        digits_at = seq_at + len(seq_before)
        digits = message[digits_at:digits_at + SEQ_DIGITS]
        if len(digits) != SEQ_DIGITS or not digits.isdigit() or \
                message[digits_at + SEQ_DIGITS:digits_at + SEQ_DIGITS + len(seq_after)] != seq_after:
            continue
        at_end = digits_at + SEQ_DIGITS + len(seq_after) == len(message)
        return Tail(message[name_at:end], int(digits), message[at:digits_at], seq_after, at_end)
    return None


# --- is a chunk one run? ---------------------------------------------------------------------------
# The receivers take a chunk of messages (a GRO buffer, a TCP read) as one run of one stream without
# parsing each message only when the numbers in it are first, first + 1, ... in order: first and
# last alone would take 0, 0, 2 (a duplicate and a loss) for 0, 1, 2. The digits that first and
# last share are the same in every number of the run, so one ``bytes.count`` of the stream's marker
# followed by them checks those digits, the stream and the count at once; the few low digits left
# are cut out after each marker (or read as columns of a GRO buffer, whose messages are all one
# length) and compared column by column with the columns the run would have, built from repeated
# patterns (not number by number).
_DIGIT = [bytes([48 + d]) for d in range(10)]
_SHORT_PERIODS = 3                  # the columns of 1, 10 and 100: repeated patterns, kept long
_LONG = [b"".join(_DIGIT[d] * 10 ** p for d in range(10)) * (1 + 70_000 // 10 ** (p + 1))
         for p in range(_SHORT_PERIODS)]


def _column(first: int, count: int, p: int) -> bytes:
    """The digit of ``10 ** p`` of first, first + 1, ... (``count`` numbers), as bytes."""
    if p < _SHORT_PERIODS:
        period: int = 10 ** (p + 1)
        start = first % period
        long = _LONG[p]
        if start + count > len(long):
            long = long * ((start + count) // len(long) + 1)
        return bytes(long[start:start + count])
    unit: int = 10 ** p
    value, into = divmod(first, unit)
    parts, left, run = [], count, unit - into
    while left > 0:
        n = min(run, left)
        parts.append(_DIGIT[value % 10] * n)
        left -= n
        value += 1
        run = unit
    return b"".join(parts)


def numbered_run(data: bytes, before: bytes, first: int, count: int, end: int,
                 stride: int = 0, digits_at: int = 0) -> bool:
    """True when ``data[:end]`` holds ``before`` followed by a number exactly ``count`` times and the
    numbers are ``first``, ``first + 1``, ... in that order. ``stride``: the messages are that many
    bytes each and the first one's digits start at ``digits_at`` (a GRO buffer), so the low digits
    are read as columns of the buffer instead of being cut out."""
    last = first + count - 1
    low = 0                                          # low digits in which first and last differ
    while low < SEQ_DIGITS and first // 10 ** low != last // 10 ** low:
        low += 1
    head = before + b"%0*d" % (SEQ_DIGITS - low, first // 10 ** low) if low < SEQ_DIGITS else before
    if stride:
        if data.count(head, 0, end) != count:
            return False
        at = digits_at + SEQ_DIGITS - low
        columns = [data[at + j:end:stride] for j in range(low)]
    else:
        pieces = data[:end].split(head)              # what follows each marker: its low digits first
        if len(pieces) != count + 1:
            return False
        if not low:
            return True
        digits = b"".join([piece[:low] for piece in pieces[1:]])
        if len(digits) != count * low:
            return False
        columns = [digits[j::low] for j in range(low)]
    return all(columns[j] == _column(first, count, low - 1 - j) for j in range(low))


class Stream:
    """One stream's record: where it is, its open gaps (sorted disjoint [start, end) ranges) and counts."""

    __slots__ = ("expected", "start", "received", "starts", "ends", "gaps", "late", "duplicates", "stale",
                 "outliers", "floor", "held_first", "held_next", "counted")

    def __init__(self, first: int, counted: bool = True) -> None:
        self.expected = first              # next number in order
        self.start = first                 # the lowest number seen
        self.received = 0                  # messages of this stream, whatever they were
        self.starts: list[int] = []        # open gaps: starts[i] <= n < ends[i]
        self.ends: list[int] = []
        self.gaps = 0                      # numbers that fell into gaps (never decreases)
        self.late = 0                      # of those, arrived late after all (never decreases)
        self.duplicates = 0
        self.stale = 0                     # arrived below forgotten gaps: late or duplicate, cannot tell
        self.outliers = 0                  # numbers set aside as implausible (held ones included)
        self.floor = -1                    # below this, forgotten gaps may lie (-1: none forgotten)
        self.held_first = self.held_next = 0     # consecutive outliers held: a real jump in the making?
        self.counted = counted             # False: a stream the run did not announce (counted apart)

    @property
    def lost(self) -> int:
        """Numbers still missing: gaps not filled by late arrivals."""
        return self.gaps - self.late

    @property
    def held(self) -> int:
        return self.held_next - self.held_first

    @property
    def open_gaps(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends))


class Accounting:
    """Every stream one sink process sees, and the totals over them, kept as messages arrive."""

    def __init__(self, announced: Callable[[bytes], bool] | None = None, max_streams: int = MAX_STREAMS,
                 max_gaps: int = MAX_GAPS, max_ranges: int = MAX_GAP_RANGES) -> None:
        self.announced = announced         # None: every stream counts (a sink on its own)
        self.max_streams, self.max_gaps, self.max_ranges = max_streams, max_gaps, max_ranges
        self.streams: dict[bytes, Stream] = {}
        self.new_streams: list[bytes] = []     # names created since the owner last took them
        self.received = 0                  # every message (the receivers add to it)
        self.octets = 0
        self.unsequenced = 0
        self.empty = 0                     # empty frames, blank lines: no events (not in received)
        self.gaps = self.late = self.duplicates = self.stale = self.outliers = 0
        self.gaps_forgotten = 0            # gap ranges dropped over the caps
        self.overflow = 0                  # messages of streams beyond max_streams
        self.foreign = self.foreign_streams = 0
        self.ranges = 0                    # open gap ranges over every stream

    @property
    def lost(self) -> int:
        """Numbers still missing: the gaps not filled by late arrivals."""
        return self.gaps - self.late

    @property
    def counted_streams(self) -> int:
        return len(self.streams) - self.foreign_streams

    def add(self, message: bytes) -> None:
        """One datagram (or message of a stream); an empty one (or only white space) is no event."""
        if not message or message.isspace():
            self.add_empty(len(message))
            return
        self.received += 1
        self.octets += len(message)
        parsed = parse(message)
        if parsed is None:
            self.unsequenced += 1
        else:
            self.add_run(parsed[0], parsed[1], 1)

    def add_empty(self, octets: int) -> None:
        self.empty += 1
        self.octets += octets

    def add_unsequenced(self, count: int, octets: int) -> None:
        self.received += count
        self.octets += octets
        self.unsequenced += count

    def add_run(self, name: bytes, first: int, count: int) -> None:
        """``count`` consecutive numbers from ``first`` of stream ``name`` (the caller counts them received)."""
        st = self.streams.get(name)
        if st is None:
            st = self._new_stream(name, first)
            if st is None:                          # over the cap: counted, not checked
                self.overflow += count
                return
        st.received += count
        if not st.counted:
            self.foreign += count
            return
        end = first + count
        expected = st.expected
        if first == expected:
            st.expected = end
            return
        if first > expected:
            if first - expected > OUTLIER_WINDOW:
                self._outlier(st, first, count)
                return
            self._open(st, expected, first)
            st.expected = end
            return
        if first < st.start:
            if st.start - first > OUTLIER_WINDOW:
                self._outlier(st, first, count)
                return
            self._open(st, first, st.start)         # older than anything seen: those were missing too
            st.start = first
        below = min(end, expected)                  # [first, below) is behind us: late, duplicate or stale
        self._behind(st, first, below)
        if end > expected:
            st.expected = end

    def _new_stream(self, name: bytes, first: int) -> Stream | None:
        """A record for a new stream; None over the cap. A stream the run announced always gets one
        (there are at most as many as workers): a flood of foreign names cannot push it out."""
        full = len(self.streams) >= self.max_streams
        if full and self.announced is None:
            return None
        counted = self.announced is None or self.announced(name)
        if full and not counted:
            return None
        st = self.streams[name] = Stream(first, counted)
        self.foreign_streams += not counted
        self.new_streams.append(name)
        return st

    # --- gaps ---------------------------------------------------------------------------------------

    def _open(self, st: Stream, lo: int, hi: int) -> None:
        """A new gap [lo, hi): below every open one (front) or above every one (a jump ahead)."""
        st.gaps += hi - lo
        self.gaps += hi - lo
        if st.starts and lo < st.starts[0]:
            st.starts.insert(0, lo)
            st.ends.insert(0, hi)
        else:
            st.starts.append(lo)
            st.ends.append(hi)
        self.ranges += 1
        while len(st.starts) > self.max_gaps or (self.ranges > self.max_ranges and st.starts):
            st.floor = max(st.floor, st.ends[0])    # the lowest range is forgotten; its numbers stay lost
            del st.starts[0]
            del st.ends[0]
            self.ranges -= 1
            self.gaps_forgotten += 1

    def _behind(self, st: Stream, lo: int, hi: int) -> None:
        """Numbers [lo, hi) below ``expected``: fill open gaps (late), else duplicates (stale below floor)."""
        starts, ends = st.starts, st.ends
        filled = filled_low = 0
        floor = st.floor
        i = bisect_right(ends, lo)                  # the first range that ends after lo
        while i < len(starts) and starts[i] < hi:
            a, b = starts[i], ends[i]
            x, y = max(a, lo), min(b, hi)
            filled += y - x
            if x < floor:
                filled_low += min(y, floor) - x
            if a < x and y < b:                     # the middle of a range: split it
                ends[i] = x
                starts.insert(i + 1, y)
                ends.insert(i + 1, b)
                self.ranges += 1
                i += 2
            elif a < x:
                ends[i] = x
                i += 1
            elif y < b:
                starts[i] = y
                i += 1
            else:
                del starts[i]
                del ends[i]
                self.ranges -= 1
        stale = max(0, min(hi, floor) - lo - filled_low) if lo < floor else 0
        st.late += filled
        self.late += filled
        st.stale += stale
        self.stale += stale
        dups = hi - lo - filled - stale
        st.duplicates += dups
        self.duplicates += dups

    # --- outliers -----------------------------------------------------------------------------------

    def _outlier(self, st: Stream, first: int, count: int) -> None:
        """``count`` numbers from ``first`` are too far from the stream to be a gap: held aside.

        When RESYNC_COUNT consecutive numbers are held, they are real: ahead of the stream, what
        they skipped is a gap; behind a record smaller than the held run (the stream began with a
        stray number), the record was the outlier and the stream starts again at the run."""
        if st.held and first == st.held_next:
            st.held_next += count
        else:
            st.held_first, st.held_next = first, first + count       # earlier held ones stay outliers
        st.outliers += count
        self.outliers += count
        held = st.held
        if held < RESYNC_COUNT:
            return
        if st.held_first > st.expected:             # a real jump ahead: what it skipped is lost after all
            st.outliers -= held
            self.outliers -= held
            self._open(st, st.expected, st.held_first)
            st.expected = st.held_next
        elif st.received - st.outliers < held:      # behind a record smaller than the run: the record strayed
            own = st.received - st.outliers
            st.outliers += own - held
            self.outliers += own - held
            self.gaps -= st.gaps
            self.late -= st.late
            self.duplicates -= st.duplicates
            self.stale -= st.stale
            self.ranges -= len(st.starts)
            st.gaps = st.late = st.duplicates = st.stale = 0
            st.starts, st.ends = [], []
            st.start, st.floor = st.held_first, -1
            st.expected = st.held_next
        else:
            return
        st.held_first = st.held_next = 0
