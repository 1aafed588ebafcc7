"""The sources' rows of ``loggend bench``: a mix of seven sources through one worker, and the time
to render a 100,000-message pool of that mix against the catalogue's.

The mix row sends like the other sender rows (one unpaced gso worker on ``SENDER_CPU``, its pool a
window of a corpus rendered before it starts, as under the supervisor); the render table times
``Corpus`` of the catalogue and ``loggend.content.mix.corpus`` of the mix, both 100,000 messages.
"""

from __future__ import annotations

import statistics
import time

from loggend.content import mix, registry
from loggend.engine.render import CORPUS_SIZE, GSO_MAX_SEGMENTS, Corpus, Pool, build_pool
from loggend.engine.spec import MessageSpec

# The seven sources of the speed row, most common in a SIEM's feed first; sources this build does
# not have are replaced by the next ones it has.
PREFERRED = ("cisco-asa", "paloalto", "windows-security", "fortigate", "juniper-srx", "squid", "linux",
             "checkpoint", "suricata", "netskope", "aws-vpc-flow", "nginx", "sudo", "linux-audit")
MIX_SIZE = 7
POOL = 100_000


def mix_sources() -> tuple[tuple[str, float], ...]:
    have = [n for n in PREFERRED if registry.get(n) is not None]
    have += [n for n in registry.names() if n not in have]
    return tuple((name, 1.0) for name in have[:MIX_SIZE])


def mix_spec() -> MessageSpec:
    return MessageSpec(sources=mix_sources(), pool_size=POOL, max_length=mix.MAX_LENGTH)


def mix_row_name() -> str:
    names = [n for n, _ in mix_sources()]
    return f"loggend gso, a mix of {len(names)} sources"


def mix_corpus() -> Corpus:
    return mix.corpus(mix_spec(), time.time(), POOL)


def mix_pool(corpus: Corpus) -> Pool:
    """The mix row's worker pool (as its worker builds it): the C sender of its own frames is what
    this machine delivers of that traffic before any Python runs."""
    return build_pool(mix_spec(), 0, "w0", time.time(), corpus, GSO_MAX_SEGMENTS)


def render_seconds(repeats: int) -> tuple[float, float]:
    """(catalogue, mix): the median seconds to render a 100,000-message corpus of each."""
    catalogue, mixed = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        Corpus(MessageSpec(pool_size=POOL), time.time(), CORPUS_SIZE)
        t1 = time.perf_counter()
        mix_corpus()
        t2 = time.perf_counter()
        catalogue.append(t1 - t0)
        mixed.append(t2 - t1)
    return statistics.median(catalogue), statistics.median(mixed)


PATCH_SECONDS = 60        # seconds of stamps set per figure of the patch table
PATCH_PASSES = 100        # pass numbers set per figure


def patch_costs(spec: MessageSpec, corpus: Corpus) -> tuple[float, float, int, int]:
    """(ms a second setting the stamps, ms a pass setting the pass number, stamp sites set byte by
    byte and slices when a column of every stamp changes) of one worker's pool of ``corpus``: what a
    worker pays at any rate besides sending (``Pool.set_time`` once a second, ``Pool.set_cycle`` at
    the end of every pass)."""
    now = time.time()
    pool = build_pool(spec, 0, "w0", now, corpus, GSO_MAX_SEGMENTS)
    t0 = time.perf_counter()
    for second in range(1, PATCH_SECONDS + 1):
        pool.set_time(now + second)
    t1 = time.perf_counter()
    for cycle in range(1, PATCH_PASSES + 1):
        pool.set_cycle(cycle)
    t2 = time.perf_counter()
    split = [pool._split_sites(kind) for kind in pool.stamps]
    return ((t1 - t0) / PATCH_SECONDS * 1e3, (t2 - t1) / PATCH_PASSES * 1e3,
            sum(len(short) for short, _ in split), sum(len(runs) for _, runs in split))


def render_table(repeats: int) -> None:
    catalogue_corpus = Corpus(MessageSpec(pool_size=POOL), time.time(), CORPUS_SIZE)
    catalogue, mixed = render_seconds(repeats)
    names = ", ".join(n for n, _ in mix_sources())
    print()
    print(f"| rendering 100,000 messages (median of {repeats}) | seconds | vs the catalogue |")
    print("|---|---:|---:|")
    print(f"| the catalogue (rfc3164) | {catalogue:.2f} | 1.00x |")
    print(f"| a mix of {len(mix_sources())} sources ({names}) | {mixed:.2f} | {mixed / catalogue:.2f}x |")
    print()
    print(f"| patching a 100,000-message pool (median of {repeats}) | stamps, ms a second | pass number, ms a pass "
          "| stamp sites set byte by byte + slices |")
    print("|---|---:|---:|---:|")
    rows = (("the catalogue (rfc3164)", MessageSpec(pool_size=POOL), catalogue_corpus),
            (f"a mix of {len(mix_sources())} sources", mix_spec(), mix_corpus()))
    for name, spec, corpus in rows:
        figures = [patch_costs(spec, corpus) for _ in range(repeats)]
        stamps = statistics.median(f[0] for f in figures)
        passes = statistics.median(f[1] for f in figures)
        _, _, stores, slices = figures[0]
        print(f"| {name} | {stamps:.1f} | {passes:.2f} | {stores:,} + {slices:,} |")
