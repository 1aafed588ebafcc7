"""Every source's message kinds as `loggend sources` and docs/sources list them: each message of a
source is of exactly one kind (by the kind's marker, which picks the docs' samples), and each kind's
share of 5,000 messages is the share listed, within 2 points."""

from __future__ import annotations

import pytest

from loggend.content import registry
from loggend.tools.sourcedocs import SAMPLE_TIME, marker
from loggend.tools.sources import messages

COUNT = 5_000
TOLERANCE = 2.0          # points


@pytest.mark.parametrize("name", registry.names())
def test_each_message_is_of_one_kind_in_the_listed_shares(name: str) -> None:
    source = registry.get(name)
    assert source is not None
    kinds = [(k.name, marker(k)) for k in source.kinds]
    counts = dict.fromkeys((k for k, _ in kinds), 0)
    for m in messages(source, COUNT, "", 1, True, SAMPLE_TIME):
        hits = [k for k, rx in kinds if rx.search(m)]
        assert len(hits) == 1, (hits, m[:200])
        counts[hits[0]] += 1
    total = sum(k.weight for k in source.kinds)
    off = {k.name: (round(100 * k.weight / total, 1), round(100 * counts[k.name] / COUNT, 1)) for k in source.kinds
           if abs(100 * k.weight / total - 100 * counts[k.name] / COUNT) > TOLERANCE}
    assert not off, f"listed against made: {off}"
