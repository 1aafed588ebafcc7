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
ZEROS = SEQ_ZEROS.encode()


def conversation(draft: Draft) -> Conversation | None:
    """The draft's conversation, or None."""
    for part in draft:
        if isinstance(part, Conversation):
            return part
    return None


def _cut(body: bytes, proof: Proof | None) -> tuple[int, int]:
    """Where the proof's text lies in a message rendered with an empty stream id (``[a, b)``), with
    the separator it leaves behind (``,}`` in JSON, a trailing space); (0, 0): nowhere."""
    if proof is None:
        return 0, 0
    a = body.find(proof.stream_before.encode())
    if a < 0:
        return 0, 0
    seq = body.find(proof.seq_before.encode(), a)
    if seq < 0:
        return 0, 0
    b = seq + len(proof.seq_before) + SEQ_DIGITS + len(proof.seq_after)
    if body[a - 1:a] == b"," and body[b:b + 1] in (b"}", b"]"):
        a -= 1                                     # JSON: the member's comma goes with it
    elif b == len(body) and body[a - 1:a] == b" ":
        a -= 1                                     # key=value at the end: its space too
    return a, b


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
        return self._with_proof(draft) if self.sequence else self._without_proof(draft)

    def _with_proof(self, draft: Draft) -> Rendered:
        head: list[bytes] = []
        tail: list[bytes] = []
        out = head
        at = 0                                     # bytes so far in ``out``
        start_sites: list[tuple[int, int]] = []
        tail_sites: list[tuple[int, int]] = []
        seq_at = -1
        kinds = self.kinds
        for part in draft:
            if type(part) is str:
                b = part.encode()
            elif part is STREAM:
                out, at = tail, 0
                continue
            elif part is SEQ:
                seq_at = at
                b = ZEROS
            elif isinstance(part, Stamp):
                kind, b = kinds.get(part.style) or self._stamp(part)
                (start_sites if out is head else tail_sites).append((at, kind))
            else:                                   # a Conversation: no bytes
                continue
            out.append(b)
            at += len(b)
        if out is head:                            # no stream: no proof of delivery in this form
            return Rendered(b"".join(head), b"", tuple(start_sites), (), -1)
        tail_bytes = b"".join(tail)
        seq_from_end = len(tail_bytes) - seq_at if seq_at >= 0 else -1
        return Rendered(b"".join(head), tail_bytes, tuple(start_sites), (), seq_from_end, tuple(tail_sites))


    def _without_proof(self, draft: Draft) -> Rendered:
        """The draft without its stream and number (``--no-sequence``): the proof's text goes too."""
        r = self._with_proof(draft)
        body = r.head + r.tail
        sites = [*r.start_sites, *((len(r.head) + o, k) for o, k in r.tail_sites)]
        a, b = _cut(body, self.proof) if r.seq_from_end >= 0 else (0, 0)
        kept = [(o - (b - a) if o >= b else o, k) for o, k in sites if not a <= o < b]
        return Rendered(body[:a] + body[b:], b"", tuple(kept), (), -1)


def text(r: Rendered, stream: str = "w0", seq: int = 0) -> bytes:
    """A rendered message as it would be sent by stream ``stream`` with number ``seq``."""
    if r.seq_from_end < 0:
        return r.head + r.tail
    body = bytearray(r.head + stream.encode("ascii") + r.tail)
    at = len(body) - r.seq_from_end
    body[at:at + SEQ_DIGITS] = b"%0*d" % (SEQ_DIGITS, seq)
    return bytes(body)
