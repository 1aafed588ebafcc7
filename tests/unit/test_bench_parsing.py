from loggend.report.console import LiveLine
from loggend.tools.bench_workers import LIVE


def test_the_worker_bench_reads_the_live_line_as_the_console_writes_it():
    for target in ("", "200,000", "paused"):
        line = LiveLine(0.0).line(1.0, [], 0, target=target)
        m = LIVE.match(line)
        assert m is not None, line
        assert m.groups() == ("1.0", "0", "0")
