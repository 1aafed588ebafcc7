"""Turn a source's drafts into wire lines for tests, as the pool would send them at one instant.

The engine's own rendering (the framework's pool path) does the same with patch sites; this one
is a plain reference: every Stamp rendered for ``now``, STREAM as the given id, SEQ as the
message's 12-digit number in order.
"""

from __future__ import annotations

import random
import time

from loggend.content.model import SEQ, STREAM, Draft, Source, Stamp

SEQ_DIGITS = 12


def render(draft: Draft, stream: str, seq: int, now: float, utc: bool = True) -> str:
    out: list[str] = []
    for part in draft:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, Stamp):
            out.append(part.render(now, utc).decode())
        elif part is STREAM:
            out.append(stream)
        elif part is SEQ:
            out.append(f"{seq:0{SEQ_DIGITS}d}")
        else:
            raise TypeError(f"unknown draft part {part!r}")
    return "".join(out)


def lines(source: Source, count: int, form: str = "native", seed: int = 7, stream: str = "t0",
          now: float | None = None, utc: bool = True) -> list[str]:
    """``count`` (or a few more) messages of ``source`` in ``form``, numbered from 0."""
    rng = random.Random(seed)
    ident = source.identity(rng)
    at = time.time() if now is None else now
    return [render(d, stream, i, at, utc) for i, d in enumerate(source.generate(ident, rng, count, form))]
