"""The network sources keep the contract of a source (loggend/content/model.py) the pool relies on.

For every source and form: drafts are made only of text, stamps and the STREAM/SEQ markers; a
form with proof has exactly one STREAM before one SEQ, each between the literal text its Proof
names (and ``stream_before`` nowhere else in the line); a form without proof has no marker and
says why; a conversation's drafts (ASA, SRX, Check Point) share one Conversation key; stamps keep
one width per zone whatever the second; the same seed gives the same drafts.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from loggend.content import checkpoint, cisco, fortinet, iptables, juniper, paloalto
from loggend.content.model import SEQ, STREAM, Conversation, Draft, Form, Source, Stamp
from tests.support.drafts import render

SOURCES = [s for m in (cisco, paloalto, fortinet, checkpoint, juniper, iptables) for s in m.SOURCES]
CASES = [(s, f) for s in SOURCES for f in s.forms]
COUNT = 2_000
INSTANTS = (0.0, 1_765_055_045.0, 1_782_864_000.0, 4_102_444_799.0)     # 1970, Dec 2025, Jul 2026 (DST), 2099


def drafts(source: Source, form: str, seed: int = 11) -> list[Draft]:
    rng = random.Random(seed)
    return list(source.generate(source.identity(rng), rng, COUNT, form))


def text_around(draft: Draft, marker: object) -> tuple[str, str]:
    draft = tuple(p for p in draft if not isinstance(p, Conversation))     # no bytes on the wire
    i = draft.index(marker)
    before, after = draft[i - 1], draft[i + 1] if i + 1 < len(draft) else ""
    assert isinstance(before, str) and isinstance(after, str)
    return before, after


@pytest.mark.parametrize(("source", "form"), CASES, ids=[f"{s.name}-{f.name}" for s, f in CASES])
def test_drafts_carry_proof_as_their_form_says(source: Source, form: Form) -> None:
    made = drafts(source, form.name)
    assert COUNT <= len(made) <= COUNT * 1.01
    for d in made:
        assert all(isinstance(p, (str, Stamp, Conversation)) or p is STREAM or p is SEQ for p in d)
        if form.proof is None:
            assert STREAM not in d and SEQ not in d
            continue
        assert d.count(STREAM) == 1 and d.count(SEQ) == 1 and d.index(STREAM) < d.index(SEQ)
        before, between = text_around(d, STREAM)
        _, after = text_around(d, SEQ)
        proof = form.proof
        assert before.endswith(proof.stream_before)
        assert between == proof.stream_after + proof.seq_before and after.startswith(proof.seq_after)
        line = render(d, "w0.s7", 42, INSTANTS[1])
        assert line.count(proof.stream_before) == 1
    if form.proof is None:
        assert form.no_proof


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_same_seed_same_messages_and_a_native_form_first(source: Source) -> None:
    assert source.forms[0].name == "native"
    assert drafts(source, "native") == drafts(source, "native")
    assert drafts(source, "native", seed=12) != drafts(source, "native")
    assert all(k.weight > 0 for k in source.kinds)


def test_every_stamp_keeps_its_width_in_each_zone() -> None:
    stamps = {p.style: p for s, f in CASES for d in drafts(s, f.name)[:50] for p in d if isinstance(p, Stamp)}
    assert len(stamps) >= 8
    for stamp in stamps.values():
        for utc in (True, False):
            widths = {len(stamp.render(t + dt, utc)) for t in INSTANTS for dt in (0, 59, 3_600 * 13)}
            assert len(widths) == 1, (stamp.style, utc, widths)


@pytest.mark.parametrize("name", ["cisco-asa", "juniper-srx", "checkpoint"])
def test_an_opening_and_its_closing_share_a_conversation(name: str) -> None:
    source = next(s for s in SOURCES if s.name == name)
    keys = Counter(p.key for d in drafts(source, "native") for p in d if isinstance(p, Conversation))
    assert len(keys) > COUNT // 4 and all(n >= 2 for n in keys.values())
