"""What the host, web, proxy, IDS and cloud sources share: their timestamps, proofs and episodes.

Timestamps are ``Stamp`` sites in each format's own style, fixed width for a zone. A few formats
write a conversation's start time beside its end (a Suricata flow's ``start``, a VPC flow record's
``start``): those use ``*_ago(seconds)`` stamps, one style per distance, from the small set of
``AGO_STEPS`` so the pool patches a bounded number of stamp kinds.

An *episode* is one conversation: its opening messages and its closing ones (a 4624 and its 4634,
a flow's alert and its flow record). ``interleave`` lays episodes out in logging order: every
opening before its closing, closings of several conversations mixed among later openings, as a
device that handles many at once logs them, each message of a conversation tagged with it
(``model.Conversation``) so the pool keeps their order on the wire.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from functools import cache

from loggend.content.model import SEQ, STREAM, Conversation, Draft, Proof, Stamp
from loggend.engine.formats import MONTHS, stamp_rfc3164, stamp_rfc3339

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# Distances (seconds) a start stamp may lie before its end stamp; durations round down to one.
AGO_STEPS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610)
OPEN_CONVERSATIONS = 24      # conversations a generator keeps open before it closes the oldest
CLOSE_SHARE = 0.5            # chance, after each opening, that an open conversation closes

# The proof of delivery every JSON form of these sources carries: two members vendor schemas do not use.
JSON_PROOF = Proof('"loggen_stream":"', '"', '"loggen_seq":"', '"')
JSON_PROOF_PARTS: Draft = (',"loggen_stream":"', STREAM, '","loggen_seq":"', SEQ, '"}')
# key=value forms: two pairs after the vendor's own.
KV_PROOF = Proof("loggen_stream=", " ", "loggen_seq=", "")
KV_PROOF_PARTS: Draft = (" loggen_stream=", STREAM, " loggen_seq=", SEQ)


def _tm(seconds: float, utc: bool) -> time.struct_time:
    return time.gmtime(seconds) if utc else time.localtime(seconds)


def _offset_hhmm(tm: time.struct_time, utc: bool) -> str:
    minutes = 0 if utc else (tm.tm_gmtoff or 0) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def _zone_name(tm: time.struct_time, utc: bool) -> str:
    name = "UTC" if utc else (tm.tm_zone or "UTC")
    return name if name.isalpha() and name.isupper() and 3 <= len(name) <= 4 else "UTC"


def _snare(seconds: float, utc: bool) -> bytes:
    tm = _tm(seconds, utc)
    return (f"{DAYS[tm.tm_wday]} {MONTHS[tm.tm_mon - 1]} {tm.tm_mday:02d} {tm.tm_hour:02d}:{tm.tm_min:02d}:"
            f"{tm.tm_sec:02d} {tm.tm_year:04d}").encode()


def _local_seconds(seconds: float, utc: bool) -> bytes:
    tm = _tm(seconds, utc)
    return (f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d} {tm.tm_hour:02d}:{tm.tm_min:02d}:"
            f"{tm.tm_sec:02d}").encode()


def _iso_seconds(seconds: float, utc: bool) -> bytes:
    return _local_seconds(seconds, utc).replace(b" ", b"T")


def _iso_utc(seconds: float, utc: bool) -> bytes:
    return _iso_seconds(seconds, True) + b"Z"


def _offset(seconds: float, utc: bool) -> bytes:
    return _offset_hhmm(_tm(seconds, utc), utc).encode()


def _clf(seconds: float, utc: bool) -> bytes:
    tm = _tm(seconds, utc)
    return (f"{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year:04d}:{tm.tm_hour:02d}:{tm.tm_min:02d}:"
            f"{tm.tm_sec:02d} {_offset_hhmm(tm, utc)}").encode()


def _bsd_zone(seconds: float, utc: bool) -> bytes:
    return stamp_rfc3164(seconds, utc) + b" " + _zone_name(_tm(seconds, utc), utc).encode()


def _epoch(seconds: float, utc: bool) -> bytes:
    return b"%d" % int(seconds)


RFC3164 = Stamp("rfc3164", stamp_rfc3164)                 # Dec  6 21:04:05
RFC3339 = Stamp("rfc3339", stamp_rfc3339)                 # 2026-12-06T21:04:05Z or +01:00
SNARE = Stamp("snare", _snare)                            # Sun Dec 06 21:04:05 2026
NXLOG = Stamp("nxlog", _local_seconds)                    # 2026-12-06 21:04:05
CLF = Stamp("clf", _clf)                                  # 06/Dec/2026:21:04:05 +0000
BSD_ZONE = Stamp("bsd-zone", _bsd_zone)                   # Dec  6 21:04:05 UTC (Websense)
ISO_UTC = Stamp("iso-utc", _iso_utc)                      # 2026-12-06T21:04:05Z whatever the zone
ISO_SECONDS = Stamp("iso-seconds", _iso_seconds)          # 2026-12-06T21:04:05 (a fraction follows)
OFFSET = Stamp("offset-hhmm", _offset)                    # +0000
EPOCH = Stamp("epoch", _epoch)                            # 1796591045


def ago_step(seconds: float) -> int:
    """The largest of ``AGO_STEPS`` not above ``seconds``."""
    step = 0
    for candidate in AGO_STEPS:
        if candidate > seconds:
            break
        step = candidate
    return step


@cache
def iso_seconds_ago(step: int) -> Stamp:
    return Stamp(f"iso-seconds-{step}", lambda seconds, utc: _iso_seconds(seconds - step, utc))


@cache
def epoch_ago(step: int) -> Stamp:
    return Stamp(f"epoch-{step}", lambda seconds, utc: _epoch(seconds - step, utc))


def syslog3164(pri: int, host: str, tag: str) -> Draft:
    """``<PRI>Dec  6 21:04:05 HOST TAG: `` as a forwarder writes it (the tag with its ``[pid]``)."""
    return (f"<{pri}>", RFC3164, f" {host} {tag}: ")


def pick(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    """A name from ``(name, weight)`` pairs."""
    return rng.choices([name for name, _ in table], [weight for _, weight in table])[0]


# A closing message is a draft, or a function that writes it when it is logged: a device numbers its
# records (Windows record numbers, Snare counters, audit serials) in logging order, not when the
# conversation opened.
Later = Draft | Callable[[], Draft]
Episode = tuple[list[Draft], list[Later]]       # (opening messages, closing messages)


def interleave(rng: random.Random, count: int, episode: Callable[[], Episode], name: str) -> Iterator[Draft]:
    """At least ``count`` drafts of ``episode()`` conversations, each opening before its closing.

    The messages of an episode of more than one carry its ``Conversation`` (``name:N``), so the
    pool sends them in this order too.
    """
    open_: list[tuple[Conversation, list[Later]]] = []
    made = 0
    while made < count:
        opening, closing = episode()
        made += len(opening) + len(closing)
        if len(opening) + len(closing) == 1:
            yield from opening
        else:
            talk = Conversation(f"{name}:{made}")
            for draft in opening:
                yield (talk, *draft)
            if closing:
                open_.append((talk, closing))
        while open_ and (len(open_) > OPEN_CONVERSATIONS or rng.random() < CLOSE_SHARE):
            yield from _closed(*open_.pop(rng.randrange(min(len(open_), OPEN_CONVERSATIONS // 2))))
    for talk, closing in open_:
        yield from _closed(talk, closing)


def _closed(talk: Conversation, closing: list[Later]) -> Iterator[Draft]:
    for later in closing:
        yield (talk, *(later() if callable(later) else later))


def hex_id(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"
