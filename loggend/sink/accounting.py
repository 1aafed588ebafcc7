"""Per-stream sequence accounting: received, lost, late (reordered) and duplicate messages.

Every loggen message ends in ``stream=<id> seq=<12 digits>``. Per stream the sink keeps the next
expected number and the gaps still open below it:

* ``seq == expected``: in order.
* ``seq > expected``: the numbers skipped are a new gap (counted in ``gaps``).
* ``seq < expected`` inside an open gap: a late arrival. It fills the gap (counted in ``late``;
  net loss goes down by one) and is reordered, as iperf3 counts it.
* ``seq < expected`` outside every gap: a duplicate.
* ``seq`` below the lowest number seen so far: the numbers in between were missing too (a new
  gap at the front), and this one fills it as a late arrival.

Gaps are half-open intervals; at most ``MAX_GAPS`` are kept per stream (older ones are taken as
lost for good). The receiver hands over *runs*: ``first, count`` for ``count`` consecutive
numbers (a whole UDP GRO segment train checks its first and last message only), so the common
case costs one comparison per run, not per message. Counters only ever go up; the net loss,
``lost = gaps - late``, is the only figure called "lost".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from loggend.engine.formats import SEQ_DIGITS

MAX_GAPS = 4096
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
        return None
    digits = message[seq_at + len(SD_SEQ):seq_at + len(SD_SEQ) + SEQ_DIGITS]
    at = message.rfind(SD_STREAM, 0, seq_at)
    if at < 0 or not digits.isdigit() or len(digits) != SEQ_DIGITS:
        return None
    name = message[at + len(SD_STREAM):seq_at]
    return Tail(name, int(digits), SD_STREAM + name + SD_SEQ, SD_END, False)


@dataclass
class Stream:
    expected: int = -1                 # next number in order; -1 before the first message
    start: int = 0                     # the lowest number seen
    received: int = 0
    open_gaps: list[list[int]] = field(default_factory=list)    # open [start, end) intervals, oldest first
    gaps: int = 0                      # numbers that fell into gaps (never decreases)
    late: int = 0                      # of those, arrived late after all (never decreases)
    duplicates: int = 0

    @property
    def lost(self) -> int:
        """Numbers still missing: gaps not filled by late arrivals."""
        return self.gaps - self.late


class Accounting:
    def __init__(self) -> None:
        self.streams: dict[bytes, Stream] = {}
        self.received = 0
        self.octets = 0
        self.unsequenced = 0

    def add(self, message: bytes) -> None:
        """One datagram."""
        self.received += 1
        self.octets += len(message)
        parsed = parse(message)
        if parsed is None:
            self.unsequenced += 1
        else:
            self.add_run(parsed[0], parsed[1], 1)

    def add_unsequenced(self, count: int, octets: int) -> None:
        self.received += count
        self.octets += octets
        self.unsequenced += count

    def add_run(self, name: bytes, first: int, count: int) -> None:
        """``count`` consecutive numbers from ``first`` of stream ``name`` (their octets counted by the caller)."""
        st = self.streams.get(name)
        if st is None:
            st = self.streams[name] = Stream(expected=first, start=first)
        st.received += count
        end = first + count
        if first < st.start:                    # older than anything seen: those numbers were missing too
            st.open_gaps.insert(0, [first, st.start])
            st.gaps += st.start - first
            st.start = first
        if first == st.expected:
            st.expected = end
            return
        if first > st.expected:
            st.open_gaps.append([st.expected, first])
            st.gaps += first - st.expected
            if len(st.open_gaps) > MAX_GAPS:
                del st.open_gaps[0]
            st.expected = end
            return
        below = min(end, st.expected)           # [first, below) is behind us: late or duplicate
        filled = self._fill(st, first, below)
        st.late += filled
        st.duplicates += below - first - filled
        if end > st.expected:
            st.expected = end

    @staticmethod
    def _fill(st: Stream, lo: int, hi: int) -> int:
        filled = 0
        kept: list[list[int]] = []
        for a, b in st.open_gaps:
            x, y = max(a, lo), min(b, hi)
            if x >= y:
                kept.append([a, b])
                continue
            filled += y - x
            if a < x:
                kept.append([a, x])
            if y < b:
                kept.append([y, b])
        st.open_gaps = kept
        return filled

    # --- totals -------------------------------------------------------------------------------------

    @property
    def gaps(self) -> int:
        return sum(s.gaps for s in self.streams.values())

    @property
    def late(self) -> int:
        return sum(s.late for s in self.streams.values())

    @property
    def lost(self) -> int:
        """Numbers still missing: the gaps not filled by late arrivals."""
        return self.gaps - self.late

    @property
    def duplicates(self) -> int:
        return sum(s.duplicates for s in self.streams.values())
