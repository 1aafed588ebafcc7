"""Drafts (``loggend.content.model``) into the engine's pre-rendered messages, and back into text.

A draft is the parts of one whole message; the engine wants ``head + stream id + tail`` with its
patch sites (``loggend.engine.formats.Rendered``). ``Renderer.rendered`` makes that: the parts
before ``STREAM`` are the head, the rest the tail; each ``Stamp`` is rendered at the pool's
build time and becomes a site the pool rewrites every second (its style registered once as a
stamp kind of the engine, ``register_stamp``); ``SEQ`` becomes twelve zeros that the pool
numbers. Without sequence numbers (``--no-sequence``) the proof's own text goes too, so
``loggen_stream=`` and the like are not sent empty. ``text`` gives a message as it would be
sent (``loggend sources show``). Used before the workers fork, never per sent message.
"""

from __future__ import annotations

from loggend.content.model import SEQ, STREAM, Conversation, Draft, Proof, Stamp
from loggend.engine.formats import SEQ_DIGITS, SEQ_ZEROS, Rendered, register_stamp

STAMP_PREFIX = "source:"            # the engine's name of a source's stamp style


def conversation(draft: Draft) -> str | None:
    """The draft's conversation key, or None."""
    for part in draft:
        if isinstance(part, Conversation):
            return part.key
    return None


def _without_proof(draft: Draft, proof: Proof | None) -> list[object]:
    """The draft's parts without ``STREAM``, ``SEQ`` and the proof's literal text around them."""
    parts: list[object] = [p for p in draft if not isinstance(p, Conversation)]
    if proof is None:
        return [p for p in parts if p is not STREAM and p is not SEQ]
    cuts = ((STREAM, proof.stream_before, proof.stream_after), (SEQ, proof.seq_before, proof.seq_after))
    for marker, before, after in cuts:
        if marker not in parts:
            continue
        at = parts.index(marker)
        if at > 0 and isinstance(parts[at - 1], str) and before:
            prev = parts[at - 1]
            assert isinstance(prev, str)
            parts[at - 1] = prev[:-len(before)] if prev.endswith(before) else prev
        if at + 1 < len(parts) and isinstance(parts[at + 1], str) and after:
            nxt = parts[at + 1]
            assert isinstance(nxt, str)
            parts[at + 1] = nxt[len(after):] if nxt.startswith(after) else nxt
        del parts[at]
    return parts


class Renderer:
    """Drafts of one form into ``Rendered`` messages, the stamps current at ``now``."""

    def __init__(self, now: float, utc: bool, sequence: bool = True, proof: Proof | None = None) -> None:
        self.now, self.utc, self.sequence, self.proof = now, utc, sequence, proof
        self.kinds: dict[str, tuple[int, bytes]] = {}     # stamp style -> (engine kind, its text now)

    def _stamp(self, stamp: Stamp) -> tuple[int, bytes]:
        found = self.kinds.get(stamp.style)
        if found is None:
            kind = register_stamp(STAMP_PREFIX + stamp.style, stamp.render)
            found = self.kinds[stamp.style] = (kind, stamp.render(self.now, self.utc))
        return found

    def rendered(self, draft: Draft) -> Rendered:
        parts = draft if self.sequence else _without_proof(draft, self.proof)
        head: list[bytes] = []
        tail: list[bytes] = []
        out = head
        at = 0                                     # bytes so far in ``out``
        start_sites: list[tuple[int, int]] = []
        tail_sites: list[tuple[int, int]] = []
        seq_at = -1
        for part in parts:
            if isinstance(part, str):
                b = part.encode("utf-8")
            elif isinstance(part, Stamp):
                kind, b = self._stamp(part)
                (start_sites if out is head else tail_sites).append((at, kind))
            elif part is STREAM:
                out, at = tail, 0
                continue
            elif part is SEQ:
                seq_at = at
                b = SEQ_ZEROS.encode()
            else:                                   # a Conversation: no bytes
                continue
            out.append(b)
            at += len(b)
        if out is head:                            # no stream: no proof of delivery in this form
            return Rendered(b"".join(head), b"", tuple(start_sites), (), -1)
        tail_bytes = b"".join(tail)
        seq_from_end = len(tail_bytes) - seq_at if seq_at >= 0 else -1
        return Rendered(b"".join(head), tail_bytes, tuple(start_sites), (), seq_from_end, tuple(tail_sites))


def text(r: Rendered, stream: str = "w0", seq: int = 0) -> bytes:
    """A rendered message as it would be sent by stream ``stream`` with number ``seq``."""
    if r.seq_from_end < 0:
        return r.head + r.tail
    body = bytearray(r.head + stream.encode("ascii") + r.tail)
    at = len(body) - r.seq_from_end
    body[at:at + SEQ_DIGITS] = b"%0*d" % (SEQ_DIGITS, seq)
    return bytes(body)
