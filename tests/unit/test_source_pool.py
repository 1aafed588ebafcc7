"""Drafts in the pool: stamps and numbers patched where the draft put them, conversations in order."""

import calendar
import random

from loggend.content.drafts import Renderer
from loggend.content.model import SEQ, STREAM, Conversation, Proof, Stamp
from loggend.engine.render import NO_THREAD, PHASES, Pool, assemble

NOW = calendar.timegm((2026, 11, 8, 4, 5, 6, 0, 0, 0))
PROOF = Proof(" loggen_stream=", " ", "loggen_seq=", "")


def hms(seconds: float, utc: bool) -> bytes:
    return b"%02d:%02d:%02d" % (seconds // 3600 % 24, seconds // 60 % 60, seconds % 60)


def epoch(seconds: float, utc: bool) -> bytes:
    return b"%010d" % int(seconds)


CLOCK, EPOCH = Stamp("test-hms", hms), Stamp("test-epoch", epoch)


def test_a_draft_s_stamps_and_number_are_patched_where_it_put_them():
    draft = ("<189>time=", CLOCK, " id=7 eventtime=", EPOCH, " loggen_stream=", STREAM, " ", "loggen_seq=", SEQ,
             " end=", EPOCH)
    r = Renderer(NOW, True).rendered(draft)
    pool = Pool([assemble(r, b"w3", "")] * 10, NOW, True, random.Random(1))
    pool.set_time(NOW + 3661)
    pool.set_cycle(2)
    t = NOW + 3661
    assert pool.message(4) == (b"<189>time=%s id=7 eventtime=%d loggen_stream=w3 loggen_seq=000000000024 end=%d"
                               % (hms(t, True), t, t))


def test_without_sequence_numbers_the_proof_s_text_goes_too():
    draft = ("<189>a=1", " loggen_stream=", STREAM, " loggen_seq=", SEQ, " b=2")
    r = Renderer(NOW, True, sequence=False, proof=PROOF).rendered(draft)
    assert (r.head + r.tail, r.seq_from_end) == (b"<189>a=1 b=2", -1)


def conversation_pool(threads: bool, seed: int) -> tuple[Pool, dict[bytes, list[int]]]:
    """Connections opened and, some messages later, closed (longer lines), among other lines."""
    rng = random.Random(seed)
    messages, keys = [], []
    open_ids: list[int] = []
    for n in range(20_000):
        if open_ids and rng.random() < 0.3:
            c = open_ids.pop(rng.randrange(len(open_ids)))
            draft = (f"<166>close id={c:06d} bytes={rng.randint(0, 10 ** rng.randint(1, 6))} ", STREAM, " ", SEQ,
                     Conversation(str(c), 1))
        elif rng.random() < 0.5:
            open_ids.append(n)
            draft = (f"<166>open id={n:06d} ", STREAM, " ", SEQ, Conversation(str(n), 0))
        else:
            draft = (f"<166>other {'x' * rng.randint(0, 40)} ", STREAM, " ", SEQ)
        r = Renderer(NOW, True).rendered(draft)
        messages.append(assemble(r, b"w0", ""))
        keys.append(int(draft[-1].key) * PHASES + draft[-1].phase if isinstance(draft[-1], Conversation)
                    else NO_THREAD)
    pool = Pool(messages, NOW, True, random.Random(seed), False, 64, keys if threads else None)
    order: dict[bytes, list[int]] = {}
    for at in range(len(messages)):
        m = pool.message(at)
        if b" id=" in m:
            order.setdefault(m.split(b" id=")[1][:6], []).append(0 if m.startswith(b"<166>open") else 1)
    return pool, order


def test_a_conversation_is_sent_in_the_order_it_was_generated_in():
    pool, order = conversation_pool(True, 5)
    closed = [kinds for kinds in order.values() if len(kinds) == 2]
    assert len(closed) > 3000
    assert all(kinds == [0, 1] for kinds in closed)
    full = sum(c for c in pool.counts if c == 64)
    assert full > 0.5 * pool.size            # frames stay mostly full


def test_without_conversations_the_frames_reorder_them():
    """The reason for the epochs: frames of equal-length lines, shuffled, send closes before opens."""
    _, order = conversation_pool(False, 5)
    assert sum(kinds == [1, 0] for kinds in order.values()) > 100


def test_without_sequence_numbers_every_vendor_form_drops_its_proof_and_stays_valid():
    """--no-sequence: no loggen_stream/loggen_seq text left in any vendor form, JSON still JSON."""
    import json

    from loggend.content import registry
    for source in registry.SOURCES.values():
        if source.name == "linux":
            continue
        for form in source.forms:
            if form.proof is None:
                continue
            r = Renderer(NOW, True, sequence=False, proof=form.proof)
            drafts = source.generate(source.identity(random.Random(1)), random.Random(2), 100, form.name)
            for draft in drafts:
                m = r.rendered(draft)
                assert m.seq_from_end == -1 and b"loggen" not in m.head.lower(), (source.name, form.name, m.head)
                brace = m.head.find(b"{")
                if brace >= 0 and m.head.endswith(b"}"):
                    json.loads(m.head[brace:])


def test_every_stratum_of_a_block_holds_each_share_to_one_message() -> None:
    import random

    from loggend.content.mix import STRATUM, stratified
    per = [30_000, 30_000, 20_000, 10_000, 9_999, 1]
    order = stratified(per, random.Random(7))
    assert [order.count(i) for i in range(len(per))] == per
    total = sum(per)
    for start in range(0, total - STRATUM, STRATUM * 37):
        window = order[start:start + STRATUM]
        for i, p in enumerate(per):
            assert abs(window.count(i) - p * STRATUM / total) <= 2, (start, i)


def sent_order(pool: Pool) -> list[bytes]:
    """Every message of a pool in the order it goes on the wire (frame after frame)."""
    return [bytes(pool.buf[pool.starts[f] + j * pool.lengths[f]:pool.starts[f] + (j + 1) * pool.lengths[f]])
            for f in range(pool.frames) for j in range(pool.counts[f])]


def mixed_pool(seed: int, size: int = 100_000) -> tuple[Pool, dict[str, float]]:
    """Three groups of 50/30/20 %, each with its own lengths, two of them with conversations of two
    or three phases (an opening, sometimes a middle, a closing some messages later), in strata of
    100 places as the mix lays them out."""
    rng = random.Random(seed)
    shares = {"a": 0.5, "b": 0.3, "c": 0.2}
    labels = sorted(shares)
    order = []
    for _ in range(size // 100):
        stratum = [g for g in labels for _ in range(int(shares[g] * 100))]
        rng.shuffle(stratum)
        order.extend(stratum)
    messages, threads, groups = [], [], []
    pending: dict[str, list[tuple[int, int, int]]] = {"a": [], "b": []}
    made = 0
    for g in order:
        if g in pending and pending[g] and rng.random() < 0.45:
            c, phase, last = pending[g].pop(rng.randrange(len(pending[g])))
            text, key = f"<14>{g} {'close' if phase == last else 'mid'} id={c:07d} {'y' * rng.randint(0, 30)} ", \
                c * PHASES + phase
            if phase < last:
                pending[g].append((c, phase + 1, last))
        elif g in pending:
            made += 1
            pending[g].append((made, 1, rng.choice((1, 2))))
            text, key = f"<14>{g} open id={made:07d} {'x' * rng.randint(0, 30)} ", made * PHASES
        else:
            text, key = f"<14>{g} other {'z' * rng.randint(0, 40)} ", NO_THREAD
        draft = (text, STREAM, " ", SEQ)
        messages.append(assemble(Renderer(NOW, True).rendered(draft), b"w0", ""))
        threads.append(key)
        groups.append(labels.index(g))
    return Pool(messages, NOW, True, random.Random(seed), True, 64, threads, groups), shares


def test_a_mix_s_pool_keeps_every_group_s_share_in_every_ten_thousand_messages_and_its_frames_long():
    pool, shares = mixed_pool(3)
    sent = sent_order(pool)
    group = [m[4:5].decode() for m in sent]
    window = 10_000
    for g, share in shares.items():
        inside = [0]
        for x in group:
            inside.append(inside[-1] + (x == g))
        worst = max(abs((inside[s + window] - inside[s]) / window - share)
                    for s in range(0, len(sent) - window + 1, 97))
        assert worst <= 0.01, (g, worst)
    # and across the end of a pass into the next one (the pool is sent over and over)
    again = group[-window // 2:] + group[:window // 2]
    for g, share in shares.items():
        assert abs(again.count(g) / window - share) <= 0.01, g
    assert pool.size / pool.frames >= 20, pool.size / pool.frames


def test_a_mix_s_pool_sends_every_conversation_in_order():
    pool, _ = mixed_pool(4)
    rank = {b"open": 0, b"mid": 1, b"close": 2}
    seen: dict[bytes, list[int]] = {}
    for m in sent_order(pool):
        parts = m.split()
        if parts[1] in rank:
            seen.setdefault(parts[2], []).append(rank[parts[1]])
    closed = [kinds for kinds in seen.values() if kinds[-1] == 2]
    assert len(closed) > 10_000
    assert all(kinds == sorted(kinds) and kinds[0] == 0 for kinds in seen.values())


def test_epochs_put_a_later_phase_after_every_earlier_one_and_end_small():
    from loggend.engine.render import LAST_EPOCH, epochs
    rng = random.Random(9)
    threads, open_ = [], []
    for n in range(30_000):
        if open_ and rng.random() < 0.5:
            c, phase = open_.pop(rng.randrange(len(open_)))
            threads.append(c * PHASES + phase)
            if phase < 5:
                open_.append((c, phase + 1))
        else:
            threads.append(n * PHASES)
            open_.append((n, 1))
    threads += [c * PHASES + p for c, p in open_]
    where = epochs(threads, 4096)
    latest: dict[int, tuple[int, int]] = {}        # conversation -> (phase, its epoch)
    for value, epoch in zip(threads, where):
        c, phase = divmod(value, PHASES)
        if c in latest:
            assert epoch > latest[c][1], (c, phase, epoch, latest[c])
        latest[c] = (phase, epoch)
    sizes = [where.count(e) for e in range(max(where) + 1)]
    assert max(sizes) <= 4096 and sizes[-1] <= LAST_EPOCH, sizes


def test_a_mix_s_pool_patched_an_hour_a_minute_and_a_second_on_is_the_pool_rendered_then(monkeypatch):
    """A mix's stamp sites are mostly runs of one or two messages, set byte by byte, the rest by slices
    joined across messages whose other sites differ: all must land where rendering at the later time
    puts its digits, and the pass number where patching every message's own sites puts it."""
    from loggend.content import mix
    from loggend.engine.spec import MessageSpec
    from loggend.engine.worker import build_pool
    sources = tuple((name, 1.0) for name in ("cisco-asa", "paloalto", "windows-security", "fortigate",
                                             "juniper-srx", "squid", "linux"))
    spec = MessageSpec(sources=sources, pool_size=10_000, max_length=mix.MAX_LENGTH)
    later = NOW + 3661
    patched = build_pool(spec, 0, "w0", NOW, mix.corpus(spec, NOW, 10_000), 64)
    fresh = build_pool(spec, 0, "w0", later, mix.corpus(spec, later, 10_000), 64)
    assert patched.buf != fresh.buf
    patched.set_time(later)
    assert patched.buf == fresh.buf
    assert patched._kinds is not None and \
        {count for runs in patched._kinds.values() for _, count, _ in runs} >= {1, 2, 5}    # both ways taken
    assert sum(len(runs) for runs in patched._kinds.values()) < sum(
        len(sites) + (seq_at >= 0) for _, _, _, sites, seq_at in patched.runs)          # runs were joined
    import loggend.engine.render as render
    monkeypatch.setattr(render, "joined", lambda runs: runs)
    each = build_pool(spec, 0, "w0", later, mix.corpus(spec, later, 10_000), 64)       # every layout's run apart
    for cycle in (1, 9, 10, 123456):
        patched.set_cycle(cycle)
        each.set_cycle(cycle)
        assert patched.buf == each.buf, cycle


def test_a_datagram_pool_placed_by_layout_sends_the_same_messages_with_fewer_patch_runs():
    """A UDP pool's frames lie in its buffer by length and layout, not in sending order: every pool
    index still carries the message the sending order gives it, before and after the stamps and the
    pass number are patched, and the sequence number takes far fewer slices a pass."""
    from loggend.content import mix
    from loggend.engine.spec import MessageSpec
    from loggend.engine.tokens import SEQ_KIND
    sources = tuple((name, 1.0) for name in ("cisco-asa", "paloalto", "windows-security", "fortigate",
                                             "juniper-srx", "squid", "linux"))
    spec = MessageSpec(sources=sources, pool_size=10_000, max_length=mix.MAX_LENGTH)
    corpus = mix.corpus(spec, NOW, 10_000)
    window = [assemble(r, b"w0", "") for r in corpus.window(0, 10_000)]
    threads, groups = corpus.window_threads(0, 10_000), corpus.window_groups(0, 10_000)
    ordered, placed = (Pool(window, NOW, False, random.Random(5), True, 64, threads, groups, by_layout=by)
                       for by in (False, True))
    assert ordered.contiguous and not placed.contiguous
    assert (placed.counts, placed.lengths, placed.first) == (ordered.counts, ordered.lengths, ordered.first)
    assert placed.starts != ordered.starts and sorted(placed.buf) == sorted(ordered.buf)
    for pool in (ordered, placed):
        pool.set_time(NOW + 3661)
        pool.set_cycle(7)
    assert [placed.message(i) for i in range(0, 10_000, 7)] == [ordered.message(i) for i in range(0, 10_000, 7)]
    ops = [len(short) + len(runs) for short, runs in (p._split_sites(SEQ_KIND) for p in (ordered, placed))]
    assert ops[1] < ops[0] * 0.75, ops


def test_a_stream_will_not_send_a_pool_placed_by_layout():
    import pytest

    from loggend.engine.stream import StreamSender
    r = Renderer(NOW, True).rendered(("<189>a=1 ", STREAM, " ", SEQ))
    pool = Pool([assemble(r, b"w0", "lf")] * 10, NOW, True, random.Random(1), by_layout=True)
    with pytest.raises(ValueError, match="sending order"):
        StreamSender(pool, "127.0.0.1", 9)
