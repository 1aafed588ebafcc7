r"""Rendering into a pre-rendered pool that the sender patches in place, in every wire format.

Each worker renders its whole stream once, at start-up, into one ``bytearray``: catalogue
templates become ``Event``\ s, a ``Format`` (``loggend.engine.formats``: RFC 3164, RFC 5424, CEF,
LEEF, JSON) renders each into ``head + stream id + tail``, and the transport's framing is added
(nothing for UDP; ``LEN `` before each message for octet-counted TCP, a line feed after it for LF
framing), so a send never does work per message.

Messages are grouped into *frames*: runs of up to ``GSO_MAX_SEGMENTS`` messages of exactly the
same length, stored back to back, so that one frame is one ``UDP_SEGMENT`` send whose segment size
is that length (no padding). Frame order is shuffled, so the stream mixes sources like a real one.
A datagram pool's buffer holds its frames by length and layout rather than in that order (each
send points at its frames), so the patches below take long slices (``placed``).
Over TCP the pool is the same bytes, sent as one contiguous range per grant.

Two things change while the pool is sent over and over, and both are patched with strided slice
assignment (``buf[a:b:L] = column``): one Python operation writes one character column of every
message of a *run* (messages of one frame with the same layout of patch sites), so nothing is
done per message.

* Every timestamp (the header's, and the body's in CEF, LEEF and JSON): when the clock's second
  changes, only the columns that differ from the previous stamp are rewritten.
* The sequence number (12 digits): the pool holds exactly ``pool_size = 10**k`` messages, and the
  message at pool index ``i`` in pass ``c`` over the pool carries ``seq = c * 10**k + i``. The low
  ``k`` digits are written once at build time; the high digits are the pass number, the same for
  every message, rewritten per run when a pass begins.

The content is a pure function of (spec, worker index). Under the supervisor the messages come
from a ``Corpus`` rendered once before the workers fork (rendering is several microseconds a
message, too slow to repeat in 40 workers at start-up); each worker takes its own window of it,
puts its stream id in, frames it and shuffles its frames with its own seed.
"""

from __future__ import annotations

import math
import mmap
import random
import string
import time
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import accumulate

from loggend.engine import catalog
from loggend.engine.formats import (
    SEQ_DIGITS,
    STAMP_CLF,
    STAMPS,
    Event,
    Format,
    Rendered,
    make_format,
    stamp_rfc3164,
)
from loggend.engine.replay import ReplaySource, render_line
from loggend.engine.spec import MessageSpec
from loggend.engine.tokens import SEQ_KIND, UserTemplate, fill_placeholders, render_parts

GSO_MAX_SEGMENTS = 64        # UDP_MAX_SEGMENTS of Linux 4.18+
FRAME_RATE = 100             # frames/s a worker's frame size aims at (frame_cap); 500 cost 40 workers at
                             # 200k ev/s 13 % more CPU (more, smaller frames per burst)
MIN_FRAME = 8                # the smallest frame cap: 100,000 messages make 12,500+ runs to patch
UDP_MAX_PAYLOAD = 65507      # 65535 - IPv4 header - UDP header
FRAMINGS = ("", "octet-counting", "lf")        # UDP (none), RFC 6587 octet counting, LF


def timestamp_at(seconds: float, utc: bool) -> bytes:
    """The RFC 3164 header timestamp (kept for callers that want one)."""
    return stamp_rfc3164(seconds, utc)


def max_segments(length: int, cap: int = GSO_MAX_SEGMENTS) -> int:
    return max(1, min(cap, UDP_MAX_PAYLOAD // length))


def frame_cap(worker_peak: float) -> int:
    """Messages per frame for a worker whose rate peaks at ``worker_peak`` events/s.

    A frame holds messages of one length, which mostly means one template, and a slow stream
    sends its frames a few messages at a time: 64 logins in a row, then 64 API calls, is not what a
    SIEM sees from a real fleet. Frames only need to be as large as keeps the sends per second
    near ``FRAME_RATE``, so a slow stream (under 6,400 ev/s per worker) gets small ones (at least
    ``MIN_FRAME``, which bounds the runs the second's timestamp patch walks) and a fast or
    unlimited one the full 64. A plan with
    nothing due (``constant:0``, paused) is one steered live, as ``find-limit`` does: full frames.
    A live rise far above the planned peak sends more, smaller frames: 8 messages a send still
    carry hundreds of thousands of messages/s per worker.
    """
    if not 0 < worker_peak < math.inf:
        return GSO_MAX_SEGMENTS
    return max(MIN_FRAME, min(GSO_MAX_SEGMENTS, math.ceil(worker_peak / FRAME_RATE)))


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

STREAM_ROOM = 64             # the longest stream id a message keeps room for (engine.counters' name limit)
CORPUS_SIZE = 100_000        # messages rendered once per run, before the workers fork
CORPUS_CHUNK = 1000          # rendered from one generator in turn: a corpus of pool x workers (powers of ten) is
                             # whole chunks, and a shorter corpus is a prefix of a longer one
NAME_WORDS = 6               # a CEF event name: the template's first words
# A catalogue template's timestamp in its text (nginx's [time_local]): a site each second rewrites.
TIME_LOCAL_FIELD = "time_local"
BODY_STAMP = ((catalog.TIME_LOCAL, STAMP_CLF),)
SHORT_RUN = 4                # patch sites of runs this short are set byte by byte (``Pool._patch``)
EPOCH = 8192                 # a group's messages per epoch (``ordered_frames``): frames are made within an
                             # epoch (larger: longer frames; a conversation's later phase a longer way behind)
LAST_EPOCH = 64              # the smallest of the shrinking epochs at the end of a group
NO_THREAD = -1               # a message of no conversation
PHASES = 1 << 16             # a message's conversation: conversation * PHASES + phase


@dataclass(frozen=True)
class TemplateInfo:
    """What a format needs of a template beside its text: ids and a short name."""

    event_id: str
    name: str
    fields: tuple[str, ...]


def template_infos() -> list[TemplateInfo]:
    """Per catalogue template: ``source-N`` (N counts the source's templates) and a short name."""
    seen: dict[str, int] = {}
    out = []
    for t in catalog.TEMPLATES:
        seen[t.source] = seen.get(t.source, 0) + 1
        head = t.text.split("{", 1)[0]
        words = [w.strip('"[]:;,()') for w in head.split() if "=" not in w]
        words = [w for w in words if w][:NAME_WORDS]
        out.append(TemplateInfo(f"{t.source}-{seen[t.source]}", " ".join(words) or t.source, _fields(t.text)))
    return out


def render_events(spec: MessageSpec, count: int, rng: random.Random) -> list[Event]:
    """``count`` filled-in templates, weighted like a real fleet's stream (and the user's own)."""
    fleet = Fleet.build(spec.hosts, spec.seed)
    templates = catalog.TEMPLATES if spec.catalogue else ()
    infos = template_infos()
    eligible = [fleet.eligible(t.roles) for t in templates]
    generators = catalog.FIELDS
    weights = [t.weight for t in templates] + [u.weight for u in spec.templates]
    # drawn message by message, so the first messages are the same whatever the count
    indexes, cum = range(len(weights)), list(accumulate(weights))
    pri_values, pri_cum = [p for p, _ in spec.pri_mix], list(accumulate(w for _, w in spec.pri_mix))
    choices = rng.choices
    everyone = tuple(range(len(fleet.names)))
    pids: dict[tuple[int, int], int | None] = {}
    out = []
    for _ in range(count):
        pri = choices(pri_values, cum_weights=pri_cum)[0] if pri_values else None
        ti = choices(indexes, cum_weights=cum)[0]
        if ti >= len(templates):
            out.append(user_event(spec.templates[ti - len(templates)], spec, fleet, everyone, rng, pids, ti, pri))
            continue
        t, info = templates[ti], infos[ti]
        host = rng.choice(eligible[ti])
        name = fleet.names[host]
        pid = pids.get((host, ti), -1)
        if pid == -1:
            pid = pids[(host, ti)] = stable_pid(spec.seed, name, t.tag) if t.pid else None
        values = {f: generators[f](rng) for f in info.fields}
        out.append(Event(pri=pri if pri is not None else t.facility * 8 + t.severity, host=name, program=t.tag,
                         pid=pid, text=t.text.format_map(values), fields=values, source=t.source,
                         event_id=info.event_id, name=info.name,
                         placeholders=BODY_STAMP if TIME_LOCAL_FIELD in values else ()))
    return out


def user_event(u: UserTemplate, spec: MessageSpec, fleet: Fleet, hosts: tuple[int, ...], rng: random.Random,
               pids: dict[tuple[int, int], int | None], key: int, pri: int | None) -> Event:
    """One event of a user template: any simulated host (or one of its own), its tokens filled in."""
    if u.hosts:
        host = rng.randrange(len(u.hosts))
        name = u.hosts[host]
        host = -1 - host
    else:
        host = rng.choice(hosts)
        name = fleet.names[host]
    pid = pids.get((host, key), -1)
    if pid == -1:
        pid = pids[(host, key)] = stable_pid(spec.seed, name, u.program) if u.pid else None
    stamps: dict[str, int] = {}
    text, values = render_parts(u.message, rng, name, stamps)
    return Event(pri=pri if pri is not None else u.facility * 8 + u.severity, host=name, program=u.program,
                 pid=pid, text=text, fields=values, source=u.name, event_id=u.name, name=u.name,
                 placeholders=tuple(stamps.items()))


def fit(fmt: Format, event: Event, now: float, limit: int) -> Rendered:
    """The event rendered so that the message with any stream id fits ``limit`` bytes: the text is
    cut first, then the named fields are left out (CEF, LEEF and JSON repeat them), then the
    text is cut further. ``MIN_LENGTHS`` are limits every format can meet."""
    room = STREAM_ROOM if fmt.sequence else 0

    def excess(r: Rendered) -> int:
        return len(r.head) + len(r.tail) + room - limit

    r = fmt.render(event, now)
    for fields in (event.fields, {}):
        text = event.text
        while excess(r) > 0 and text:
            text = text[:max(0, len(text) - excess(r) - 1)]
            r = fmt.render(replace(event, text=text, fields=fields), now)
        if excess(r) <= 0:
            return with_placeholders(r, event, now, fmt.utc)
        r = fmt.render(replace(event, fields={}), now)
    return with_placeholders(r, event, now, fmt.utc)


def with_placeholders(r: Rendered, event: Event, now: float, utc: bool) -> Rendered:
    """A user template's timestamp and ``{seq}`` placeholders turned into values and patch sites."""
    if not event.placeholders:
        return r
    stamps = dict(event.placeholders)
    head, head_sites = fill_placeholders(r.head, stamps, now, utc)
    tail, tail_sites = fill_placeholders(r.tail, stamps, now, utc)
    return Rendered(head, tail, tuple(sorted((*r.start_sites, *head_sites))), r.end_sites, r.seq_from_end,
                    tuple(sorted((*r.tail_sites, *tail_sites))))


def spec_format(spec: MessageSpec) -> Format:
    return make_format(spec.format, spec.sequence, spec.timezone == "utc", spec.enterprise)


class CorpusBuild:
    """A ``Corpus`` rendered a step at a time: a reload's new corpus is rendered in the supervisor
    loop's turns (``step`` with a time budget), so signals, the control socket and the systemd
    watchdog are served all through it."""

    CHECK_EVERY = 256           # messages between looks at the clock

    def __init__(self, spec: MessageSpec, now: float, size: int = CORPUS_SIZE,
                 rendered: Iterable[tuple[Rendered, int, int]] | None = None, into: Corpus | None = None) -> None:
        c = self.corpus = Corpus.__new__(Corpus) if into is None else into
        c.spec, c.now = spec, now
        c.offsets = array("Q", [0])                 # head i: offsets[2i]..[2i+1], tail i: ..[2i+2]
        c.seq_from_end = array("i")
        c.threads = array("q")                      # per message: its conversation (NO_THREAD: none)
        c.groups = array("H")                       # per message: its group (a source of a mix)
        c.layout = array("H")                       # index into c.layouts
        c.layouts = []
        self.blob = bytearray()
        self.seen: dict[tuple[tuple[tuple[int, int], ...], ...], int] = {}
        self.items = iter(Corpus._catalogue(spec, now, size) if rendered is None else rendered)

    def step(self, seconds: float = math.inf) -> Corpus | None:
        """Render for about ``seconds``; the corpus once it is whole, else None (call again)."""
        c, blob, seen = self.corpus, self.blob, self.seen
        deadline = time.monotonic() + seconds
        for n, (r, thread, group) in enumerate(self.items, 1):
            blob += r.head
            c.offsets.append(len(blob))
            blob += r.tail
            c.offsets.append(len(blob))
            key = r.layout
            c.layout.append(seen.setdefault(key, len(seen)))
            if len(seen) > len(c.layouts):
                c.layouts.append(key)
            c.seq_from_end.append(r.seq_from_end)
            c.threads.append(thread)
            c.groups.append(group)
            if n % self.CHECK_EVERY == 0 and time.monotonic() >= deadline:
                return None
        c.ordered = any(t != NO_THREAD for t in c.threads)
        c.grouped = any(c.groups)
        # A shared mapping, not a bytes object: fork copies the page tables of private memory, so
        # every worker would be charged the whole corpus in its RSS; here it pays for what it reads.
        c.blob = mmap.mmap(-1, max(1, len(blob)))
        c.blob[:len(blob)] = blob
        self.blob = bytearray()
        return c


class Corpus:
    """Messages rendered once per run and shared by every worker, copy-on-write after fork.

    One shared-memory blob (head, then tail, of every message) plus arrays of offsets and patch
    sites: a worker reading a window of it touches only the pages it reads and no per-message
    object headers, so the pages stay shared.
    """

    spec: MessageSpec
    now: float
    offsets: array[int]
    seq_from_end: array[int]
    threads: array[int]
    groups: array[int]
    layout: array[int]
    layouts: list[tuple[tuple[tuple[int, int], ...], ...]]
    ordered: bool
    grouped: bool
    blob: mmap.mmap

    def __init__(self, spec: MessageSpec, now: float, size: int = CORPUS_SIZE,
                 rendered: Iterable[tuple[Rendered, int, int]] | None = None) -> None:
        """The catalogue's (and the user's templates') messages; or, with ``rendered``, messages
        rendered elsewhere (a mix of sources, ``loggend.content``), each with its conversation
        (``conversation * PHASES + phase``; ``NO_THREAD``: none), whose phases the pool keeps in
        order, and its group (a label the engine knows nothing of: a source of the mix), whose
        share the pool keeps in every stretch of the stream (``ordered_frames``). Rendered at once:
        ``CorpusBuild`` renders one a step at a time."""
        CorpusBuild(spec, now, size, rendered, into=self).step()

    @staticmethod
    def _catalogue(spec: MessageSpec, now: float, size: int) -> Iterator[tuple[Rendered, int, int]]:
        fmt = spec_format(spec)
        rng = random.Random(f"corpus:{spec.seed}")
        total = max(size, spec.pool_size)
        for first in range(0, total, CORPUS_CHUNK):     # in chunks: little garbage left in the heap
            for event in render_events(spec, min(CORPUS_CHUNK, total - first), rng):
                yield fit(fmt, event, now, spec.max_length), NO_THREAD, 0

    def __len__(self) -> int:
        return len(self.seq_from_end)

    def rendered(self, i: int) -> Rendered:
        o, blob = self.offsets, self.blob
        start_sites, end_sites, tail_sites = self.layouts[self.layout[i]]
        return Rendered(blob[o[2 * i]:o[2 * i + 1]], blob[o[2 * i + 1]:o[2 * i + 2]], start_sites, end_sites,
                        self.seq_from_end[i], tail_sites)

    def window(self, start: int, count: int) -> list[Rendered]:
        """``count`` messages from ``start`` on, wrapping around the end."""
        n = len(self)
        return [self.rendered(i % n) for i in range(start, start + count)]

    def window_threads(self, start: int, count: int) -> list[int] | None:
        """The conversations of ``window(start, count)``; None when no message has one. A window that
        wraps around the end starts the corpus's conversations again: they get other numbers."""
        if not self.ordered:
            return None
        n, threads = len(self), self.threads
        wrap = (max(threads, default=0) // PHASES + 1) * PHASES
        return [threads[i % n] if threads[i % n] == NO_THREAD else threads[i % n] + wrap * (i // n)
                for i in range(start, start + count)]

    def window_groups(self, start: int, count: int) -> list[int] | None:
        """The groups of ``window(start, count)``; None when there is one group only."""
        if not self.grouped:
            return None
        n, groups = len(self), self.groups
        return [groups[i % n] for i in range(start, start + count)]


@dataclass(frozen=True)
class Message:
    """One framed message of a worker's stream, with its patch sites (offsets from its start)."""

    data: bytes
    sites: tuple[tuple[int, int], ...]     # (offset, stamp kind; SEQ_KIND: a template's {seq})
    seq_at: int                            # offset of the stream's sequence digits; -1: none

    @property
    def layout(self) -> tuple[tuple[tuple[int, int], ...], int]:
        return self.sites, self.seq_at

    @property
    def seq_sites(self) -> list[int]:
        """Every place the sequence number goes: the stream's, then each ``{seq}``."""
        return [self.seq_at, *[o for o, k in self.sites if k == SEQ_KIND]] if self.seq_at >= 0 else []


def assemble(r: Rendered, stream: bytes, framing: str) -> Message:
    """``head + stream + tail`` with its framing, and where its patch sites ended up."""
    body = r.head + (stream if r.seq_from_end >= 0 else b"") + r.tail
    prefix = b"%d " % len(body) if framing == "octet-counting" else b""
    suffix = b"\n" if framing == "lf" else b""
    at_stream = len(prefix) + len(r.head)
    at_tail = at_stream + (len(stream) if r.seq_from_end >= 0 else 0)
    sites = tuple(sorted([(len(prefix) + o, k) for o, k in r.start_sites] +
                         [(at_stream - o, k) for o, k in r.end_sites] +
                         [(at_tail + o, k) for o, k in r.tail_sites]))
    seq_at = len(prefix) + len(body) - r.seq_from_end if r.seq_from_end >= 0 else -1
    return Message(prefix + body + suffix, sites, seq_at)


def render_messages(spec: MessageSpec, worker: int, stream: str, now: float) -> list[Message]:
    """``spec.pool_size`` messages of one worker's own (sequence digits all zero), without a corpus."""
    fmt = spec_format(spec)
    rng = random.Random(f"stream:{spec.seed}:{worker}")
    return [assemble(fit(fmt, e, now, spec.max_length), stream.encode("ascii"), spec.framing)
            for e in render_events(spec, spec.pool_size, rng)]


def frames_of(messages: list[Message], cap: int) -> list[list[Message]]:
    """Messages cut into frames: runs of up to ``cap`` (and a datagram's worth) of one length. A
    message without a sequence number (a vendor form with no room) never shares a frame with one
    that has it: the sink takes a train whose first and last numbers are consecutive as whole."""
    by_length: dict[tuple[int, bool], list[Message]] = {}
    for m in messages:
        by_length.setdefault((len(m.data), m.seq_at < 0), []).append(m)
    chunks: list[list[Message]] = []
    for key in sorted(by_length):
        length = key[0]
        group = sorted(by_length[key], key=lambda m: m.layout)   # stable: keeps generation order
        step = max_segments(length, cap)
        chunks.extend(group[i:i + step] for i in range(0, len(group), step))
    return chunks


def epochs(threads: list[int], size: int = EPOCH) -> list[int]:
    """The epoch of every message of a group (see ``ordered_frames``).

    ``threads[i]`` is ``conversation * PHASES + phase`` (or ``NO_THREAD``). Epochs are filled in
    the group's order, ``size`` messages each: a message goes into the epoch being filled, or, if
    its conversation's earlier phases reached it, into the one after the latest of them (a later
    epoch then starts with those). Sending epoch after epoch keeps every conversation's phases in
    order however the frames of one epoch are shuffled, and an epoch holds openings beside the
    closings of conversations opened before (the first epoch holds openings only: the price of
    long frames). Over the last ``2 * size`` messages or less the epochs halve, down to
    ``LAST_EPOCH``, so the closings that can only follow the last of them are few.
    """
    total = len(threads)
    state: dict[int, list[int]] = {}    # conversation -> [phase, its latest epoch, earlier phases' latest epoch]
    held: dict[int, int] = {}           # messages in each epoch
    out: list[int] = []
    k, room = 0, min(size, max(LAST_EPOCH, total // 2)) if total <= 2 * size else size
    for i, value in enumerate(threads):
        while held.get(k, 0) >= room:
            k += 1
            left = total - i
            room = size if left > 2 * size else min(room, max(LAST_EPOCH, left // 2))
        if value == NO_THREAD:
            at = k
        else:
            thread, phase = divmod(value, PHASES)
            st = state.get(thread)
            if st is None:
                st = state[thread] = [phase, -1, -1]
            elif phase > st[0]:                        # a new phase: what came before is now "earlier"
                st[0], st[2], st[1] = phase, max(st[1], st[2]), -1
            at = max(k, st[2] + 1)
            st[1] = max(st[1], at)
        held[at] = held.get(at, 0) + 1
        out.append(at)
    return out


def ordered_frames(messages: list[Message], threads: list[int] | None, groups: list[int] | None,
                   rng: random.Random, cap: int, size: int = EPOCH) -> list[list[Message]]:
    """Frames in an order that keeps every conversation's phases in order and every group's share
    in every stretch of the pool.

    Each group (a source of a mix: ``groups[i]``, a label the engine knows nothing of) is framed on
    its own, epoch after epoch (``epochs``: a conversation's later phase an epoch after its earlier
    ones), the frames of an epoch shuffled. So an ASA Built is sent before its Teardown, a 4624
    before its 4634, whatever the lengths, and a frame holds many messages of one length: one
    source's over thousands of its messages, where all sources' over a short stretch of the pool
    made frames of three. The groups' frames are then merged in the order of each frame's middle
    as a fraction of its group's messages: every group stays within about a frame of its share of
    what has been sent, so any 10,000 consecutive messages carry the shares within a point."""
    n = len(messages)
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups if groups is not None else [0] * n):
        members.setdefault(g, []).append(i)
    keyed: list[tuple[float, int, list[Message]]] = []
    for order, label in enumerate(sorted(members)):
        places = members[label]
        total = len(places)
        own = [NO_THREAD] * total if threads is None else [threads[i] for i in places]
        where = epochs(own, size) if any(t != NO_THREAD for t in own) else [0] * total
        bins: dict[int, list[Message]] = {}
        for i, epoch in zip(places, where):
            bins.setdefault(epoch, []).append(messages[i])
        done = 0
        for epoch in sorted(bins):
            frames = frames_of(bins[epoch], cap)
            rng.shuffle(frames)
            for frame in frames:
                keyed.append(((done + len(frame) / 2) / total, order, frame))
                done += len(frame)
    keyed.sort(key=lambda k: (k[0], k[1]))
    return [frame for _, _, frame in keyed]


def joined(runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Sites ``(first, count, stride)`` of one kind, each run joined with the ones that go on where it
    ends (the next messages of the frame carry this site at the same offset, whatever their other
    sites): a mix's messages of one length seldom share a whole layout for long, but share one
    stamp's or the sequence number's place for many messages; one slice then patches them all."""
    out: list[list[int]] = []
    ends: dict[tuple[int, int], int] = {}          # (stride, where a run's next site would be) -> its index
    for at, count, stride in sorted(runs):
        i = ends.pop((stride, at), -1)
        if i < 0:
            out.append([at, count, stride])
            i = len(out) - 1
        else:
            out[i][1] += count
        first, total, _ = out[i]
        ends[(stride, first + total * stride)] = i
    return [(at, count, stride) for at, count, stride in out]


def placed(chunks: list[list[Message]]) -> list[int]:
    """Where each frame goes in a datagram pool's buffer: the frames' indexes ordered by length, then
    by their messages' layouts (each frame's are sorted, ``frames_of``), so the frames of one length
    lie end to end with the sites of one offset mostly adjacent; in a mix of seven sources that cut
    the sequence number's slices from some 4,000 to under 1,000 a pass."""
    return sorted(range(len(chunks)), key=lambda c: (len(chunks[c][0].data), chunks[c][0].layout,
                                                      chunks[c][-1].layout))


class Pool:
    """One worker's stream: messages in frames in one buffer, with the patch sites.

    Layout of ``buf``: frames back to back, no gaps; frame ``f`` holds ``counts[f]`` messages of
    ``lengths[f]`` bytes each starting at byte ``starts[f]``; message ``j`` of frame ``f`` is pool
    index ``first[f] + j`` and lives at ``starts[f] + j * lengths[f]``. ``runs`` holds, per run of
    messages of one frame with the same patch-site layout, ``(offset of its first message,
    messages, stride, sites, seq_at)``.

    Frames lie in the order they are sent (``contiguous``: a stream sends byte ranges), or, with
    ``by_layout`` (datagrams, whose senders point at each frame), ordered by length and layout:
    then the frames of one length sit end to end, so a patch site at the same offset in all of
    them is one strided slice, where in sending order a mix's frames broke it into thousands of
    short runs (``placed``).
    """

    def __init__(self, messages: list[Message], now: float, utc: bool, rng: random.Random,
                 sequence: bool = True, cap: int = GSO_MAX_SEGMENTS, threads: list[int] | None = None,
                 groups: list[int] | None = None, by_layout: bool = False) -> None:
        if threads is None and groups is None:
            chunks = frames_of(messages, cap)
            rng.shuffle(chunks)
        else:
            chunks = ordered_frames(messages, threads, groups, rng, cap)
        self.size = len(messages)
        self.utc = utc
        self.contiguous = not by_layout
        order = placed(chunks) if by_layout else range(len(chunks))
        self.starts: list[int] = [0] * len(chunks)
        pos = 0
        for c in order:
            self.starts[c] = pos
            pos += len(chunks[c]) * len(chunks[c][0].data)
        self.buf = bytearray(b"".join(m.data for c in order for m in chunks[c]))
        self.counts: list[int] = []
        self.lengths: list[int] = []
        self.first: list[int] = []
        self.runs: list[tuple[int, int, int, tuple[tuple[int, int], ...], int]] = []
        self.seq_offsets: list[list[int]] = []         # per pool index, every sequence site (build time only)
        index = 0
        for chunk, pos in zip(chunks, self.starts):
            length = len(chunk[0].data)
            self.counts.append(len(chunk))
            self.lengths.append(length)
            self.first.append(index)
            run_start = 0
            for j in range(1, len(chunk) + 1):
                if j == len(chunk) or chunk[j].layout != chunk[run_start].layout:
                    m = chunk[run_start]
                    self.runs.append((pos + run_start * length, j - run_start, length, m.sites, m.seq_at))
                    run_start = j
            self.seq_offsets.extend([pos + j * length + o for o in m.seq_sites] for j, m in enumerate(chunk))
            index += len(chunk)
        kinds = sorted({k for m in messages for _, k in m.sites if k != SEQ_KIND})
        self.stamps = {k: STAMPS[k](now, utc) for k in kinds}   # what every message carries now, by kind
        self._fills: dict[int, bytes] = {}
        self._kinds: dict[int, list[tuple[int, int, int]]] | None = None     # kind -> its sites (_sites)
        self._split: dict[int, tuple[array[int], list[tuple[int, int, int]]]] = {}   # kind -> _split_sites
        # a message without proof of delivery (a vendor form with no room) carries no number; the
        # others carry theirs (its number is never seen: the run says why its loss is unknown)
        self.sequence = sequence and any(m.seq_at >= 0 for m in messages)
        self.static_digits = len(str(self.size)) - 1 if self.sequence else 0
        self.cycle_digits = SEQ_DIGITS - self.static_digits
        self.cycle = 0
        if self.sequence:
            if self.size != 10 ** self.static_digits:
                raise ValueError(f"pool size {self.size} is not a power of ten")
            self._write_static_digits()
        del self.seq_offsets
        self.replay: Replay | None = None      # a replay pool: where its next pass comes from

    def next_pool(self) -> Pool | None:
        """At the end of a pass: None (the same messages go again, ``set_cycle``), or for a replay
        the pool of the next pass, read and rendered now."""
        if self.replay is None or self.replay.source.fits or self.replay.failed:
            return None
        return self.replay.next_pass(self.cycle + 1)

    def for_pass(self, cycle: int) -> Pool:
        """This pool set to pass ``cycle`` (a restarted worker), or a replay's pool of that pass."""
        if self.replay is None or self.replay.source.fits or self.replay.failed:
            self.set_cycle(cycle)
            return self
        pool = self.replay.next_pass(cycle)
        if pool is None:
            self.set_cycle(cycle)
            return self
        return pool

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
        if not k:
            return
        for f in range(self.frames):
            for j in range(self.counts[f]):
                i = self.first[f] + j
                for site in self.seq_offsets[i]:
                    at = site + SEQ_DIGITS - k
                    self.buf[at:at + k] = b"%0*d" % (k, i)

    def _fill(self, char: int, count: int) -> bytes:
        """``count`` times ``char``, made once (the patches run every second in every worker)."""
        key = char << 16 | count
        fill = self._fills.get(key)
        if fill is None:
            fill = self._fills[key] = bytes((char,)) * count
        return fill

    def _sites(self, kind: int) -> list[tuple[int, int, int]]:
        """Every run's sites of one kind of patch site (``SEQ_KIND``: the stream's sequence number and
        every ``{seq}`` of a user template), as ``(first message's site, messages, stride)``; made
        once. Not a slice per column: a mix has some 40 stamp kinds of 20 columns, whose slices
        made a worker's start seconds long and its memory grow by the minute."""
        if self._kinds is None:
            kinds: dict[int, list[tuple[int, int, int]]] = {}
            for at, count, stride, sites, seq_at in self.runs:
                if seq_at >= 0:
                    kinds.setdefault(SEQ_KIND, []).append((at + seq_at, count, stride))
                for off, k in sites:
                    kinds.setdefault(k, []).append((at + off, count, stride))
            self._kinds = {k: joined(runs) for k, runs in kinds.items()}
        return self._kinds.get(kind, [])

    def _patch(self, kind: int, column: int, char: int) -> int:
        """Column ``column`` of every site of ``kind`` set to ``char``; returns the assignments made."""
        buf, fill = self.buf, self._fill
        short, runs = self._split_sites(kind)
        for at in short:
            buf[at + column] = char
        for start, count, stride in runs:
            at = start + column
            buf[at:at + count * stride:stride] = fill(char, count)
        return len(short) + len(runs)

    def _split_sites(self, kind: int) -> tuple[array[int], list[tuple[int, int, int]]]:
        """The sites of one kind (a stamp's, or ``SEQ_KIND``) as (each site of a run of up to ``SHORT_RUN``
        messages, in address order; the longer runs): a mix's sites are mostly runs of one or two
        messages (its lines vary in layout), where setting a byte costs a quarter of a slice
        assignment; made once."""
        got = self._split.get(kind)
        if got is None:
            runs = self._sites(kind)
            short = array("q", sorted(at + i * stride for at, count, stride in runs if count <= SHORT_RUN
                                      for i in range(count)))
            got = self._split[kind] = (short, [r for r in runs if r[1] > SHORT_RUN])
        return got

    def set_time(self, now: float) -> int:
        """Every timestamp to the second of ``now``; returns the assignments made (a byte or a slice)."""
        made = 0
        for kind, old in self.stamps.items():
            new = STAMPS[kind](now, self.utc)
            if new == old:
                continue
            for c in range(len(new)):
                if new[c] != old[c]:
                    made += self._patch(kind, c, new[c])
            self.stamps[kind] = new
        return made

    def set_cycle(self, cycle: int) -> int:
        """Make the pool carry pass number ``cycle`` in the high sequence digits (without sequence
        numbers it only says which pass it is: a replay reads the next one after it)."""
        if not self.sequence:
            self.cycle = cycle
            return 0
        width = self.cycle_digits
        cycle %= 10 ** width
        old, new = b"%0*d" % (width, self.cycle), b"%0*d" % (width, cycle)
        made = 0
        for c in range(width):
            if old[c] != new[c]:
                made += self._patch(SEQ_KIND, c, new[c])
        self.cycle = cycle
        return made


@dataclass
class Replay:
    """Where a replay pool's passes come from (``loggend.engine.replay``)."""

    source: ReplaySource
    spec: MessageSpec
    worker: int
    stream: bytes
    cap: int = GSO_MAX_SEGMENTS            # messages per frame (frame_cap)
    unstamped: int = 0                     # lines of the passes so far without a timestamp loggen rewrites
    lines: int = 0
    failed: str = ""                       # why the file could not be read on: the last pass is sent again
    warn: Callable[[str], None] | None = None   # the worker's log, for that one line

    def next_pass(self, index: int) -> Pool | None:
        """Pass ``index``, or None when the file cannot be read any more (deleted, truncated, a gzip
        broken in the middle): said once, and the pass in hand goes on being sent, so the rate and
        the counts hold."""
        try:
            return self.pool(index)
        except (OSError, ValueError, EOFError, zlib.error) as err:
            self.failed = str(err) or type(err).__name__
            if self.warn is not None:
                self.warn(f"replay: cannot read pass {index} of {self.source.spec.path} ({self.failed}); "
                          f"sending the pass in hand again from now on")
            return None

    def pool(self, index: int) -> Pool:
        spec = self.spec
        now, utc = time.time(), spec.timezone == "utc"
        messages = []
        for line in self.source.read(index):
            r = self.source.spec
            rendered, stamped = render_line(line, spec.sequence, spec.enterprise, r.wrap, r.host, r.tag, utc)
            self.unstamped += not stamped
            self.lines += 1
            if rendered.start_sites or rendered.tail_sites:     # the pool patches from the time it was built at
                head, tail = bytearray(rendered.head), bytearray(rendered.tail)
                for part, sites in ((head, rendered.start_sites), (tail, rendered.tail_sites)):
                    for at, kind in sites:
                        stamp = STAMPS[kind](now, utc)
                        part[at:at + len(stamp)] = stamp
                rendered = replace(rendered, head=bytes(head), tail=bytes(tail))
            messages.append(assemble(rendered, self.stream, spec.framing))
        rng = random.Random(f"replay:{spec.seed}:{self.worker}:{index}")
        pool = Pool(messages, now, utc, rng, spec.sequence, self.cap, by_layout=not spec.framing)
        pool.set_cycle(index)
        pool.replay = self
        return pool


def build_pool(spec: MessageSpec, worker: int, stream: str, now: float, corpus: Corpus | None = None,
               cap: int = GSO_MAX_SEGMENTS) -> Pool:
    """The worker's pool: its own rendering, its window of the run's shared corpus, or the first
    pass of its share of a replayed file; ``cap`` messages at most per frame (``frame_cap``)."""
    if spec.replay is not None:
        source = ReplaySource(spec.replay, worker, spec.pool_size)
        return Replay(source, spec, worker, stream.encode("ascii"), cap).pool(0)
    frames_rng = random.Random(f"frames:{spec.seed}:{worker}")
    if corpus is None:
        if spec.sources:
            raise ValueError("a mix of sources is rendered before the workers start (loggend.content.mix)")
        return Pool(render_messages(spec, worker, stream, now), now, spec.timezone == "utc", frames_rng,
                    spec.sequence, cap, by_layout=not spec.framing)
    name = stream.encode("ascii")
    start = worker * spec.pool_size % len(corpus)
    window = corpus.window(start, spec.pool_size)
    return Pool([assemble(r, name, spec.framing) for r in window], corpus.now, spec.timezone == "utc", frames_rng,
                spec.sequence, cap, corpus.window_threads(start, spec.pool_size),
                corpus.window_groups(start, spec.pool_size), by_layout=not spec.framing)
