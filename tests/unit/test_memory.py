"""MemoryWatch on a scratch /proc: PSS at first sight, a rotating refresh, a full pass before a stop."""

from loggend.control.memory import PAGE, PSS_ROUNDS, MemoryWatch


def write_pss(root, pid: int, kib: int) -> None:
    d = root / str(pid)
    d.mkdir(exist_ok=True)
    (d / "smaps_rollup").write_text(f"Rss:  {kib * 2} kB\nPss:  {kib} kB\n")
    pages = kib * 2 * 1024 // PAGE                                 # RSS: twice the PSS (shared pages)
    (d / "statm").write_text(f"{pages * 3} {pages} 0 0 0 0 0\n")


def test_every_process_is_measured_when_first_seen_then_refreshed_in_turn(tmp_path):
    pids = list(range(100, 140))
    for p in pids:
        write_pss(tmp_path, p, 1000)
    watch = MemoryWatch(limit=0, proc=str(tmp_path))
    assert watch.measure(pids) == 40 * 1000 * 1024          # nobody counted by RSS or left out
    for p in pids:
        write_pss(tmp_path, p, 2000)
    seen = [watch.measure(pids) for _ in range(PSS_ROUNDS)]
    assert seen == sorted(seen) and seen[0] < 80 * 1000 * 1024 and seen[-1] == 80 * 1000 * 1024
    assert watch.peak == 80 * 1000 * 1024


def test_a_total_over_the_limit_is_measured_in_full_before_it_counts(tmp_path):
    pids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    for p in pids:
        write_pss(tmp_path, p, 100)
    watch = MemoryWatch(limit=12 * 100 * 1024 * 3, proc=str(tmp_path))      # RSS (2x) is under it
    watch.measure(pids)
    assert not watch.over
    write_pss(tmp_path, 12, 10_000)                          # one process grew; its turn has not come yet
    watch.measure(pids)
    assert watch.over and watch.current == (11 * 100 + 10_000) * 1024
    gone = pids[:6]
    assert watch.measure(gone) == 6 * 100 * 1024              # processes that ended drop out
