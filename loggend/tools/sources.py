"""``loggend sources``: what each source sends; ``loggend sources show NAME``: its messages as sent.

``show`` renders the source's drafts the way a run does (``loggend.content.drafts``: stamps at
the current second, the stream ``w0``, sequence numbers from 0) and prints one message a line,
byte for byte as a UDP datagram would carry it.
"""

from __future__ import annotations

import random
import sys
import textwrap
import time
from collections.abc import Iterator
from itertools import islice
from typing import BinaryIO

from loggend.content import registry
from loggend.content.drafts import Renderer, text
from loggend.content.mix import NATIVE, identity_seed
from loggend.content.model import Source
from loggend.engine.spec import MessageSpec
from loggend.errors import ConfigError

SHOW_STREAM = "w0"
MAX_SHOW = 100_000
WRAP = 100                      # the listing's line width


def _wrap(label: str, items: list[str]) -> list[str]:
    lines, line = [], f"  {label:<8} "
    for i, item in enumerate(items):
        piece = item + (", " if i < len(items) - 1 else "")
        if len(line) + len(piece) > WRAP and line.strip() != label:
            lines.append(line.rstrip())
            line = " " * 11
        line += piece
    lines.append(line.rstrip())
    return lines


def describe(source: Source) -> list[str]:
    """A source's entry in the listing."""
    total = sum(k.weight for k in source.kinds) or 1.0
    kinds = [f"{k.name} {100 * k.weight / total:.0f}%" if 100 * k.weight / total >= 0.5 or not k.weight
             else f"{k.name} <1%" for k in source.kinds]
    forms = [f.name + ("" if f.proof else " (no proof of delivery)") + (" [default]" if i == 0 else "")
             for i, f in enumerate(source.forms)]
    product = source.product if source.product.startswith(source.vendor) else f"{source.vendor} {source.product}"
    unproven = [textwrap.fill(f"{f.name} has no proof of delivery: {f.no_proof}", WRAP, initial_indent="  why      ",
                              subsequent_indent=" " * 11, break_on_hyphens=False)
                for f in source.forms if f.proof is None and f.no_proof]
    return [f"{source.name}: {product}, {source.version}",
            *_wrap("kinds", kinds), *_wrap("forms", forms), *unproven,
            *_wrap("fields", list(source.fields)), f"  parser   {source.parser}"]


def listing() -> str:
    out = []
    for source in registry.SOURCES.values():
        out.extend(describe(source))
        out.append("")
    missing = f" (not in this build: {', '.join(registry.MISSING)})" if registry.MISSING else ""
    out.append(f"{len(registry.SOURCES)} sources{missing}; `loggend sources show NAME` prints its messages as sent")
    return "\n".join(out)


def find(label: str, name: str) -> Source:
    source = registry.get(name)
    if source is None:
        raise ConfigError(label, name, "a source: " + ", ".join(registry.names()))
    return source


def messages(source: Source, count: int, form: str = "", seed: int = 1, utc: bool = False,
             now: float | None = None, stream: str = SHOW_STREAM) -> Iterator[bytes]:
    """``count`` messages of ``source`` in ``form`` ("" or native: its default, as for a run) as a run's stream
    ``stream`` sends them."""
    chosen = source.form(form) if form else source.forms[0]
    if chosen is None and form in (NATIVE, MessageSpec.format):
        chosen = source.forms[0]                # the vendor's own form, whatever the source calls it (a run
                                                # of sources takes the default format, rfc3164, so too)
    if chosen is None:
        raise ConfigError("--format", form, f"a form of {source.name}: " + ", ".join(f.name for f in source.forms)
                          + ("" if len(source.forms) > 1 else f" ({source.name} has no other form)"))
    renderer = Renderer(time.time() if now is None else now, utc, True, chosen.proof)
    identity = source.identity(random.Random(identity_seed(seed, source.name)))
    drafts = source.generate(identity, random.Random(f"drafts:{seed}:{source.name}"), count, chosen.name)
    for seq, draft in enumerate(islice(drafts, count)):
        yield text(renderer.rendered(draft), stream, seq)


def show(name: str, count: int, form: str, seed: int = 1, utc: bool = False, out: BinaryIO | None = None) -> int:
    stream = out if out is not None else sys.stdout.buffer
    for message in messages(find("sources show", name), count, form, seed, utc):
        stream.write(message + b"\n")
    stream.flush()
    return 0
