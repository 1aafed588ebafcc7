from loggend.report.console import LiveLine
from loggend.tools.bench_workers import LIVE


def test_the_worker_bench_reads_the_live_line_as_the_console_writes_it():
    for target in ("", "200,000", "paused"):
        line = LiveLine(0.0).line(1.0, [], 0, target=target)
        m = LIVE.match(line)
        assert m is not None, line
        assert m.groups() == ("1.0", "0", "0")


def test_the_patch_table_counts_the_stamp_sites_of_a_real_pool():
    """``make bench``'s patch figures come from a real pool of the spec: the sites it counts are that
    pool's stamp sites, byte by byte and in slices, and the times are of work done."""
    import time

    from loggend.content import mix
    from loggend.engine.render import GSO_MAX_SEGMENTS, build_pool
    from loggend.engine.spec import MessageSpec
    from loggend.tools import bench_sources as B
    spec = MessageSpec(sources=(("cisco-asa", 1.0), ("windows-security", 1.0)), pool_size=1000,
                       max_length=mix.MAX_LENGTH)
    corpus = mix.corpus(spec, time.time(), 1000)
    stamps_ms, pass_ms, stores, slices = B.patch_costs(spec, corpus)
    pool = build_pool(spec, 0, "w0", time.time(), corpus, GSO_MAX_SEGMENTS)
    split = [pool._split_sites(kind) for kind in pool.stamps]
    assert (stores, slices) == (sum(len(s) for s, _ in split), sum(len(r) for _, r in split))
    assert stores + slices > 0 and stamps_ms > 0 and pass_ms > 0
