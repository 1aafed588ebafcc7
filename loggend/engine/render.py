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

The content is a pure function of (spec, worker index): ``random.Random`` seeded with both.
"""

from __future__ import annotations

import random
import string
import time
import zlib
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

def render_messages(spec: MessageSpec, worker: int, stream: str, stamp: bytes) -> list[bytes]:
    """``spec.pool_size`` complete messages (sequence digits all zero), in generation order."""
    rng = random.Random(f"stream:{spec.seed}:{worker}")
    fleet = Fleet.build(spec.hosts, spec.seed)
    templates = catalog.TEMPLATES
    eligible = [fleet.eligible(t.roles) for t in templates]
    fields = [_fields(t.text) for t in templates]
    generators = catalog.FIELDS
    suffix = b" stream=%s seq=%s" % (stream.encode("ascii"), b"0" * SEQ_DIGITS) if spec.sequence else b""
    if spec.pri_mix:
        pris = rng.choices([p for p, _ in spec.pri_mix], [w for _, w in spec.pri_mix], k=spec.pool_size)
    chosen = rng.choices(range(len(templates)), [t.weight for t in templates], k=spec.pool_size)
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
        room = spec.max_length - len(head) - len(suffix)
        out.append(head + body[:room] + suffix)
    return out


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
        self.buf[first_byte:first_byte + count * stride:stride] = bytes((char,)) * count

    def set_stamp(self, stamp: bytes) -> int:
        """Rewrite the timestamp columns that changed; returns the slice assignments made."""
        changed = [c for c in range(TS_LEN) if stamp[c] != self.stamp[c]]
        for first_byte, count, stride in self.ts_runs:
            for c in changed:
                self._patch_column(first_byte + c, count, stride, stamp[c])
        self.stamp = stamp
        return len(changed) * len(self.ts_runs)

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


def build_pool(spec: MessageSpec, worker: int, stream: str, now: float) -> Pool:
    stamp = timestamp_at(now, spec.timezone == "utc")
    messages = render_messages(spec, worker, stream, stamp)
    return Pool(messages, stamp, spec.sequence, random.Random(f"frames:{spec.seed}:{worker}"))
