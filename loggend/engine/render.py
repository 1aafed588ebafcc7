"""RFC 3164 rendering into a pre-rendered pool that the sender patches in place.

Each worker renders its whole stream once, at start-up, into one ``bytearray``::

    <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG stream=ID seq=CCCCCCCLLLLL

Messages are grouped into *frames*: runs of up to ``GSO_MAX_SEGMENTS`` messages of exactly the
same length, stored back to back, so that one frame is one ``UDP_SEGMENT`` send whose segment size
is that length (no padding). Frame order is shuffled, so the stream mixes sources like a real one.

Two things change while the pool is sent over and over, and both are patched with strided slice
assignment (``buf[a:b:L] = column``): one Python operation writes one character column of every
message of a run, so nothing is done per message.

* The timestamp (15 bytes after ``<PRI>``): when the clock's second changes, only the columns
  that differ from the previous stamp are rewritten, for each *ts run* (messages of one frame whose
  PRI has the same width, hence the same timestamp offset).
* The sequence number (12 digits at the end of every message): the pool holds exactly
  ``pool_size = 10**k`` messages, and the message at pool index ``i`` in pass ``c`` over the pool
  carries ``seq = c * 10**k + i``. The low ``k`` digits are written once at build time; the high
  digits are the pass number, the same for every message, rewritten per frame when a pass begins.

The content is a pure function of (spec, worker index). Under the supervisor the messages come
from a ``Corpus`` rendered once before the workers fork (rendering is ~8 us a message, too slow
to repeat in 40 workers at start-up); each worker takes its own window of it, appends its stream
suffix and shuffles its frames with its own seed.
"""

from __future__ import annotations

import mmap
import random
import string
import time
import zlib
from array import array
from dataclasses import dataclass

from loggend.engine import catalog
from loggend.engine.spec import MessageSpec

SEQ_DIGITS = 12
TS_LEN = 15
GSO_MAX_SEGMENTS = 64        # UDP_MAX_SEGMENTS of Linux 4.18+
UDP_MAX_PAYLOAD = 65507      # 65535 - IPv4 header - UDP header
MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")


def format_timestamp(tm: time.struct_time) -> bytes:
    """RFC 3164 TIMESTAMP: English month, space-padded day, whatever the locale."""
    return b"%s %2d %02d:%02d:%02d" % (MONTHS[tm.tm_mon - 1], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)


def timestamp_at(seconds: float, utc: bool) -> bytes:
    return format_timestamp(time.gmtime(seconds) if utc else time.localtime(seconds))


def max_segments(length: int) -> int:
    return max(1, min(GSO_MAX_SEGMENTS, UDP_MAX_PAYLOAD // length))


# --- the simulated fleet --------------------------------------------------------------------------

@dataclass(frozen=True)
class Fleet:
    names: tuple[str, ...]
    by_role: dict[str, tuple[int, ...]]

    @classmethod
    def build(cls, hosts: int, seed: int) -> Fleet:
        """Host names and roles depend on the seed only: every worker speaks for the same fleet."""
        rng = random.Random(f"fleet:{seed}")
        roles = [r for r, _ in catalog.ROLE_WEIGHTS]
        weights = [w for _, w in catalog.ROLE_WEIGHTS]
        picked = rng.choices(roles, weights, k=hosts)
        count: dict[str, int] = {}
        names = []
        by_role: dict[str, list[int]] = {r: [] for r in roles}
        for i, role in enumerate(picked):
            count[role] = count.get(role, 0) + 1
            names.append(f"{role}-{count[role]:04d}")
            by_role[role].append(i)
        return cls(tuple(names), {r: tuple(v) for r, v in by_role.items()})

    def eligible(self, roles: tuple[str, ...]) -> tuple[int, ...]:
        hosts = tuple(i for r in roles for i in self.by_role.get(r, ()))
        return hosts or tuple(range(len(self.names)))


def stable_pid(seed: int, host: str, tag: str) -> int:
    """A process id that stays the same for one (host, service) across the run and across workers."""
    return 300 + zlib.crc32(f"{seed}/{host}/{tag}".encode()) % 64000


def _fields(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(text) if name))


# --- rendering --------------------------------------------------------------------------------------

SUFFIX_ROOM = len(b" stream= seq=") + 16 + SEQ_DIGITS    # the longest suffix a stream id allows
CORPUS_SIZE = 100_000        # messages rendered once per run, before the workers fork
CORPUS_CHUNK = 4096


def _suffix(stream: str, sequence: bool) -> bytes:
    return b" stream=%s seq=%s" % (stream.encode("ascii"), b"0" * SEQ_DIGITS) if sequence else b""


def render_bodies(spec: MessageSpec, count: int, rng: random.Random, stamp: bytes) -> list[bytes]:
    """``count`` messages without the stream suffix, each short enough to take any suffix."""
    fleet = Fleet.build(spec.hosts, spec.seed)
    templates = catalog.TEMPLATES
    eligible = [fleet.eligible(t.roles) for t in templates]
    fields = [_fields(t.text) for t in templates]
    generators = catalog.FIELDS
    reserve = SUFFIX_ROOM if spec.sequence else 0
    if spec.pri_mix:
        pris = rng.choices([p for p, _ in spec.pri_mix], [w for _, w in spec.pri_mix], k=count)
    chosen = rng.choices(range(len(templates)), [t.weight for t in templates], k=count)
    headers: dict[tuple[int, int, int], bytes] = {}
    out = []
    for n, ti in enumerate(chosen):
        t = templates[ti]
        host = rng.choice(eligible[ti])
        pri = pris[n] if spec.pri_mix else t.facility * 8 + t.severity
        key = (pri, host, ti)
        head = headers.get(key)
        if head is None:
            name = fleet.names[host]
            tag = f"{t.tag}[{stable_pid(spec.seed, name, t.tag)}]" if t.pid else t.tag
            head = headers[key] = b"<%d>%s %s %s: " % (pri, stamp, name.encode(), tag.encode())
        values = {f: generators[f](rng) for f in fields[ti]}
        body = t.text.format_map(values).encode("ascii", "replace")
        out.append(head + body[:spec.max_length - len(head) - reserve])
    return out


def render_messages(spec: MessageSpec, worker: int, stream: str, stamp: bytes) -> list[bytes]:
    """``spec.pool_size`` complete messages (sequence digits all zero) of one worker's own."""
    suffix = _suffix(stream, spec.sequence)
    rng = random.Random(f"stream:{spec.seed}:{worker}")
    return [m + suffix for m in render_bodies(spec, spec.pool_size, rng, stamp)]


class Corpus:
    """Messages rendered once per run and shared by every worker, copy-on-write after fork.

    One shared-memory blob plus an offsets array: a worker reading a window of it touches only
    the pages it reads and no per-message object headers, so the pages stay shared.
    """

    def __init__(self, spec: MessageSpec, now: float, size: int = CORPUS_SIZE) -> None:
        self.spec = spec
        self.stamp = timestamp_at(now, spec.timezone == "utc")
        rng = random.Random(f"corpus:{spec.seed}")
        blob = bytearray()
        self.offsets = array("Q", [0])
        total = max(size, spec.pool_size)
        for first in range(0, total, CORPUS_CHUNK):     # in chunks: little garbage left in the heap
            for m in render_bodies(spec, min(CORPUS_CHUNK, total - first), rng, self.stamp):
                blob += m
                self.offsets.append(len(blob))
        # A shared mapping, not a bytes object: fork copies the page tables of private memory, so
        # every worker would be charged the whole corpus in its RSS; here it pays for what it reads.
        self.blob = mmap.mmap(-1, max(1, len(blob)))
        self.blob[:len(blob)] = blob

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def window(self, start: int, count: int) -> list[bytes]:
        """``count`` messages from ``start`` on, wrapping around the end."""
        n, blob, offsets = len(self), self.blob, self.offsets
        return [blob[offsets[i % n]:offsets[i % n + 1]] for i in range(start, start + count)]


def _ts_offset(message: bytes) -> int:
    return message.index(b">") + 1


class Pool:
    """One worker's stream: messages in frames in one buffer, with the patch sites.

    Layout of ``buf``: frame after frame, no gaps; frame ``f`` holds ``counts[f]`` messages of
    ``lengths[f]`` bytes each starting at byte ``starts[f]``; message ``j`` of frame ``f`` is pool
    index ``first[f] + j`` and lives at ``starts[f] + j * lengths[f]``.
    ``ts_runs`` holds ``(offset of the first timestamp byte, messages, stride)`` per run of equal
    timestamp offset. The last ``SEQ_DIGITS`` bytes of each message are the sequence number.
    """

    def __init__(self, messages: list[bytes], stamp: bytes, sequence: bool, rng: random.Random) -> None:
        by_length: dict[int, list[bytes]] = {}
        for m in messages:
            by_length.setdefault(len(m), []).append(m)
        chunks: list[list[bytes]] = []
        for length in sorted(by_length):
            group = sorted(by_length[length], key=_ts_offset)   # stable: keeps generation order
            step = max_segments(length)
            chunks.extend(group[i:i + step] for i in range(0, len(group), step))
        rng.shuffle(chunks)
        self.size = len(messages)
        self.buf = bytearray(b"".join(m for chunk in chunks for m in chunk))
        self.starts: list[int] = []
        self.counts: list[int] = []
        self.lengths: list[int] = []
        self.first: list[int] = []
        self.ts_runs: list[tuple[int, int, int]] = []
        pos = index = 0
        for chunk in chunks:
            length = len(chunk[0])
            self.starts.append(pos)
            self.counts.append(len(chunk))
            self.lengths.append(length)
            self.first.append(index)
            run_start, run_off = 0, _ts_offset(chunk[0])
            for j in range(1, len(chunk) + 1):
                off = _ts_offset(chunk[j]) if j < len(chunk) else -1
                if off != run_off:
                    self.ts_runs.append((pos + run_start * length + run_off, j - run_start, length))
                    run_start, run_off = j, off
            pos += length * len(chunk)
            index += len(chunk)
        self.stamp = stamp
        self._fills: dict[int, bytes] = {}
        self._ts_columns: list[list[tuple[slice, int]]] = []
        self.sequence = sequence
        self.static_digits = len(str(self.size)) - 1 if sequence else 0
        self.cycle_digits = SEQ_DIGITS - self.static_digits
        self.cycle = 0
        if sequence:
            if self.size != 10 ** self.static_digits:
                raise ValueError(f"pool size {self.size} is not a power of ten")
            self._write_static_digits()

    @property
    def frames(self) -> int:
        return len(self.starts)

    def message(self, index: int) -> bytes:
        """Pool message ``index`` as it would be sent now (tests and diagnostics)."""
        for f in range(self.frames):
            if self.first[f] <= index < self.first[f] + self.counts[f]:
                at = self.starts[f] + (index - self.first[f]) * self.lengths[f]
                return bytes(self.buf[at:at + self.lengths[f]])
        raise IndexError(index)

    def _write_static_digits(self) -> None:
        k = self.static_digits
        for f in range(self.frames):
            length = self.lengths[f]
            for j in range(self.counts[f]):
                end = self.starts[f] + (j + 1) * length
                self.buf[end - k:end] = b"%0*d" % (k, self.first[f] + j) if k else b""

    def _patch_column(self, first_byte: int, count: int, stride: int, char: int) -> None:
        self.buf[first_byte:first_byte + count * stride:stride] = self._fill(char, count)

    def _fill(self, char: int, count: int) -> bytes:
        """``count`` times ``char``, made once (the patches run every second in every worker)."""
        key = char << 16 | count
        fill = self._fills.get(key)
        if fill is None:
            fill = self._fills[key] = bytes((char,)) * count
        return fill

    def set_stamp(self, stamp: bytes) -> int:
        """Rewrite the timestamp columns that changed; returns the slice assignments made."""
        if not self._ts_columns:         # per column, the slice of every run: made once, used every second
            self._ts_columns = [[(slice(first + c, first + c + count * stride, stride), count)
                                 for first, count, stride in self.ts_runs] for c in range(TS_LEN)]
        buf, old, made = self.buf, self.stamp, 0
        for c in range(TS_LEN):
            char = stamp[c]
            if char != old[c]:
                for where, count in self._ts_columns[c]:
                    buf[where] = self._fill(char, count)
                made += len(self.ts_runs)
        self.stamp = stamp
        return made

    def set_cycle(self, cycle: int) -> int:
        """Make the pool carry pass number ``cycle`` in the high sequence digits."""
        if not self.sequence:
            return 0
        width = self.cycle_digits
        cycle %= 10 ** width
        old, new = b"%0*d" % (width, self.cycle), b"%0*d" % (width, cycle)
        changed = [c for c in range(width) if old[c] != new[c]]
        for f in range(self.frames):
            length = self.lengths[f]
            seq_start = self.starts[f] + length - SEQ_DIGITS
            for c in changed:
                self._patch_column(seq_start + c, self.counts[f], length, new[c])
        self.cycle = cycle
        return len(changed) * self.frames


def build_pool(spec: MessageSpec, worker: int, stream: str, now: float, corpus: Corpus | None = None) -> Pool:
    """The worker's pool: its own rendering, or its window of the run's shared corpus."""
    frames_rng = random.Random(f"frames:{spec.seed}:{worker}")
    if corpus is None:
        stamp = timestamp_at(now, spec.timezone == "utc")
        return Pool(render_messages(spec, worker, stream, stamp), stamp, spec.sequence, frames_rng)
    suffix = _suffix(stream, spec.sequence)
    window = corpus.window(worker * spec.pool_size % len(corpus), spec.pool_size)
    return Pool([m + suffix for m in window], corpus.stamp, spec.sequence, frames_rng)
