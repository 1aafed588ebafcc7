"""Turn a source's drafts into wire lines for tests, as the pool would send them at one instant.

A plain reference renderer, independent of the engine's (``loggend.content.drafts``, which the
pool uses with patch sites): every Stamp rendered for ``now``, STREAM as the given id, SEQ as the
message's 12-digit number in order, a ``Conversation`` part as nothing.

Two call orders are kept, as the two families' tests were written against them:
``lines(source, count, form="native", seed=7, stream="t0", now=None, utc=True)`` and
``lines(source, form, count, now=None, utc=False)`` (seed 21, stream ``w7``). ``proof_of`` finds a
message's stream id and number back through its form's ``Proof``, as the sink does.
"""

from __future__ import annotations

import random
import time
from functools import cache

from loggend.content.model import SEQ, STREAM, Conversation, Draft, Proof, Source, Stamp

SEQ_DIGITS = 12
STREAM_ID = "w7"
SEED = 21


@cache
def _stamp(stamp: Stamp, now: float, utc: bool) -> str:
    return stamp.render(now, utc).decode()       # once per instant, as the pool does, not per message


def render(draft: Draft, stream: str, seq: int, now: float, utc: bool = True) -> str:
    out: list[str] = []
    for part in draft:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Stamp):
            out.append(_stamp(part, now, utc))
        elif part is STREAM:
            out.append(stream)
        elif part is SEQ:
            out.append(f"{seq:0{SEQ_DIGITS}d}")
        elif not isinstance(part, Conversation):
            raise TypeError(f"unknown draft part {part!r}")
    return "".join(out)


def text(draft: Draft, now: float, seq: int, stream: str = STREAM_ID, utc: bool = False) -> str:
    return render(draft, stream, seq, now, utc)


def lines(source: Source, count_or_form: int | str, form_or_count: str | int = "native", seed: int | None = None,
          stream: str | None = None, now: float | None = None, utc: bool | None = None) -> list[str]:
    """``count`` (or a few more) messages of ``source`` in ``form``, numbered from 0 (either call order)."""
    at = time.time() if now is None else now
    if isinstance(count_or_form, str):                # lines(source, form, count, now, utc)
        form, count = count_or_form, int(form_or_count)
        ident = source.identity(random.Random(SEED if seed is None else seed))
        drafts = source.generate(ident, random.Random((SEED if seed is None else seed) + 1), count, form)
        return [render(d, stream or STREAM_ID, i, at, bool(utc)) for i, d in enumerate(drafts)]
    count, form = count_or_form, str(form_or_count)    # lines(source, count, form, seed, stream, now, utc)
    rng = random.Random(7 if seed is None else seed)
    ident = source.identity(rng)
    return [render(d, stream or "t0", i, at, True if utc is None else utc)
            for i, d in enumerate(source.generate(ident, rng, count, form))]


def proof_of(line: str, proof: Proof) -> tuple[str, int]:
    """The stream id and sequence number a message carries, found as the sink would."""
    start = line.index(proof.stream_before) + len(proof.stream_before)
    end = line.index(proof.stream_after, start) if proof.stream_after else len(line)
    at = line.index(proof.seq_before, end) + len(proof.seq_before)
    digits = line[at:at + SEQ_DIGITS]
    assert line[at + SEQ_DIGITS:].startswith(proof.seq_after), (line[at + SEQ_DIGITS:at + 40], proof.seq_after)
    return line[start:end], int(digits)
