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

from loggend.engine.render import SEQ_DIGITS

MAX_GAPS = 4096
STREAM_MARK = b" stream="
SEQ_MARK = b" seq="
SUFFIX = len(SEQ_MARK) + SEQ_DIGITS


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


def parse(message: bytes) -> tuple[bytes, int] | None:
    """(stream id, sequence number) of a loggen message, or None for any other datagram."""
    if len(message) < SUFFIX + len(STREAM_MARK) or message[-SUFFIX:-SEQ_DIGITS] != SEQ_MARK:
        return None
    digits = message[-SEQ_DIGITS:]
    if not digits.isdigit():
        return None
    at = message.rfind(STREAM_MARK, 0, len(message) - SUFFIX)
    if at < 0:
        return None
    return message[at + len(STREAM_MARK):len(message) - SUFFIX], int(digits)


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
