"""Drafts of a vendor source as the text a sender would put on the wire, for the parser tests.

``lines(source, form, count)``: ``count`` (or a few more) messages of ``source`` in ``form``, each
stamped at one fixed time, with a stream id and consecutive sequence numbers, and the proof of
delivery of each (its stream id and sequence number found back through the form's ``Proof``).
"""

from __future__ import annotations

import random
import time
from functools import cache

from loggend.content.model import SEQ, STREAM, Draft, Proof, Source, Stamp

STREAM_ID = "w7"
SEED = 21


@cache
def _stamp(stamp: Stamp, now: float, utc: bool) -> str:
    return stamp.render(now, utc).decode()       # once a second, as the pool does, not per message


def text(draft: Draft, now: float, seq: int, stream: str = STREAM_ID, utc: bool = False) -> str:
    out = []
    for part in draft:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Stamp):
            out.append(_stamp(part, now, utc))
        elif part is STREAM:
            out.append(stream)
        elif part is SEQ:
            out.append(f"{seq:012d}")
        else:
            raise AssertionError(f"unknown part {part!r}")
    return "".join(out)


def lines(source: Source, form: str, count: int, now: float | None = None, utc: bool = False) -> list[str]:
    ident = source.identity(random.Random(SEED))
    drafts = source.generate(ident, random.Random(SEED + 1), count, form)
    at = time.time() if now is None else now
    return [text(d, at, i, utc=utc) for i, d in enumerate(drafts)]


def proof_of(line: str, proof: Proof) -> tuple[str, int]:
    """The stream id and sequence number a message carries, found as the sink would."""
    start = line.index(proof.stream_before) + len(proof.stream_before)
    end = line.index(proof.stream_after, start) if proof.stream_after else len(line)
    at = line.index(proof.seq_before, end) + len(proof.seq_before)
    digits = line[at:at + 12]
    assert line[at + 12:].startswith(proof.seq_after), (line[at + 12:at + 40], proof.seq_after)
    return line[start:end], int(digits)
