"""The limit search against simulated receivers: no processes, no clock but a counter."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loggend.tools.feedback import CommandFeedback, FeedbackError, Reading, parse_feedback
from loggend.tools.findlimit import FindLimit
from loggend.tools.limitsearch import (
    FAIL,
    PASS,
    SHORT,
    Interrupted,
    LossCriterion,
    OfferedCriterion,
    Search,
    Settings,
    Trial,
    judge,
)

BASE = Settings(start_rate=1000, max_rate=10_000_000, precision=0.02, loss_percent=0.1, trial=10, confirm=30,
                pause=1, max_time=3600)


class Receiver:
    """Takes ``capacity`` events/s plus a buffer of ``buffer`` events (so longer trials are stricter);
    loggen itself can offer at most ``ceiling``."""

    def __init__(self, capacity: float, buffer: float = 0.0, ceiling: float = float("inf"),
                 flaky_confirm: int = 0) -> None:
        self.capacity, self.buffer, self.ceiling = capacity, buffer, ceiling
        self.flaky_confirm = flaky_confirm           # this many confirmations fail whatever the rate
        self.clock = 0.0
        self.criteria = [OfferedCriterion(), LossCriterion(BASE.loss_percent)]

    def trial(self, rate: float, seconds: float, confirmation: bool) -> Trial:
        self.clock += seconds + BASE.pause
        planned = round(rate * seconds)
        sent = round(min(rate, self.ceiling) * seconds)
        counted = min(sent, round(self.capacity * seconds + self.buffer))
        if confirmation and self.flaky_confirm:
            self.flaky_confirm -= 1
            counted = sent // 2
        return judge(Trial(0, rate, seconds, planned, sent, counted, confirmation), self.criteria)

    def search(self, s: Settings = BASE) -> Search:
        return Search(s, self.trial, lambda: self.clock)


def true_limit(capacity: float, buffer: float, seconds: float) -> float:
    return (capacity + buffer / seconds) / (1 - BASE.loss_percent / 100)


@settings(max_examples=80, deadline=None)
@given(st.floats(1_500, 5_000_000), st.floats(0, 50_000))
def test_the_limit_found_is_within_the_precision_of_the_true_one(capacity, buffer):
    out = Receiver(capacity, buffer).search().run()
    truth = true_limit(capacity, buffer, BASE.confirm)          # the confirmation is the strictest trial
    assert out.found and out.limit <= truth + 1 and out.limit >= truth * (1 - BASE.precision) - 1, \
        (out.limit, truth, [(t.rate, t.verdict) for t in out.trials])
    rises = [t.rate for t in out.trials][:3]
    assert rises[0] == 1000 and (len(rises) < 2 or rises[1] == 2000)          # exponential rise from the start


def test_the_trials_rise_then_bisect_then_confirm():
    out = Receiver(30_000).search().run()
    rates = [(t.rate, t.verdict, t.confirmation) for t in out.trials]
    assert [r for r, _, _ in rates[:6]] == [1000, 2000, 4000, 8000, 16000, 32000]
    assert rates[5][1] == FAIL and rates[-1] == (out.limit, PASS, True)
    assert out.limit <= 30_030 and out.upper - out.limit <= 0.02 * out.limit and "limit: " in out.summary()


def test_when_even_the_start_rate_fails_there_is_no_limit():
    out = Receiver(500).search().run()
    assert not out.found and out.limit is None and len(out.trials) == 1
    assert out.summary().startswith("no limit: even the start rate 1,000 ev/s did not pass (loss ")


def test_max_rate_passing_is_a_limit_at_max_rate():
    out = Receiver(1e9).search(Settings(**{**BASE.__dict__, "max_rate": 50_000})).run()
    assert out.found and out.limit == 50_000 and out.at_max_rate
    assert [t.rate for t in out.trials] == [1000, 2000, 4000, 8000, 16000, 32000, 50000, 50000]
    assert "its limit is higher" in out.summary()


def test_a_failed_confirmation_goes_on_with_confirmation_length_trials():
    """Short trials pass up to (capacity + buffer / 10 s), the 30-s confirmation only up to (capacity +
    buffer / 30 s): after the first confirmation fails, only long trials are trusted."""
    rx = Receiver(1500, 605)
    out = rx.search().run()
    confirms = [t for t in out.trials if t.confirmation]
    assert confirms[0].verdict == FAIL and all(t.seconds == 30 for t in out.trials[out.trials.index(confirms[0]):])
    assert out.found and out.limit == max(t.rate for t in confirms if t.passed)
    truth = true_limit(1500, 605, 30)
    assert truth * (1 - BASE.precision) <= out.limit <= truth


def test_a_confirmation_that_fails_by_chance_is_searched_below():
    out = Receiver(30_000, flaky_confirm=1).search().run()
    confirms = [t for t in out.trials if t.confirmation]
    assert [t.verdict for t in confirms][:2] == [FAIL, PASS] and confirms[1].rate < confirms[0].rate
    assert out.found and out.limit >= confirms[0].rate * (1 - 2 * BASE.precision)


def test_loggens_own_ceiling_is_said_not_taken_for_the_receivers():
    out = Receiver(1e9, ceiling=40_000).search().run()
    assert out.found and out.ceiling and 40_000 * 0.98 / 1.0 <= out.limit <= 40_000 / 0.99
    assert any(t.verdict == SHORT for t in out.trials) and "loggen itself could not offer" in out.summary()


def test_max_time_stops_with_what_is_known():
    out = Receiver(30_000).search(Settings(**{**BASE.__dict__, "max_time": 70})).run()
    assert not out.found and out.stopped.startswith("--max-time") and out.limit == 16_000   # 6 trials of 11 s
    assert out.summary() == "no confirmed limit (--max-time 70 s reached): 16,000 ev/s passed, 32,000 ev/s did not"


def test_an_interruption_stops_with_what_is_known():
    rx = Receiver(30_000)

    def trial(rate, seconds, confirmation):
        if rate > 8000:
            raise Interrupted()
        return rx.trial(rate, seconds, confirmation)
    out = Search(BASE, trial, lambda: rx.clock).run()
    assert out.stopped == "interrupted" and out.limit == 8000 and not out.found


def test_verdicts_name_their_reason():
    t = judge(Trial(1, 1000, 1, planned=1000, sent=1000, counted=998), [LossCriterion(0.1)])
    assert t.verdict == FAIL and t.reason == "loss 0.2000 % > 0.1 %" and t.loss_percent == pytest.approx(0.2)
    t = judge(Trial(1, 1000, 1, planned=1000, sent=900, counted=900), [OfferedCriterion(), LossCriterion(0.1)])
    assert t.verdict == SHORT and "90.0 % of the rate" in t.reason
    t = judge(Trial(1, 1000, 1, planned=1000, sent=1000, counted=1003), [LossCriterion(0.1)])
    assert t.verdict == PASS and t.lost == 0 and t.delivered_eps == 1000


def test_command_feedback_reads_the_last_number(tmp_path):
    (tmp_path / "n").write_text("received: 1234\ntotal 56789\n")
    assert CommandFeedback(f"cat {tmp_path / 'n'}", "x").read().total == 56789
    with pytest.raises(FeedbackError, match="printed no number"):
        CommandFeedback("echo none", "x").read()
    with pytest.raises(FeedbackError, match="exited with status 3"):
        CommandFeedback("echo oops >&2; exit 3", "x").read()
    assert parse_feedback("command:wc -l < /dev/null").read().total == 0


def test_push_back_fails_a_tcp_trial_where_udp_would_call_it_short():
    from loggend.tools.limitsearch import PushBackCriterion, criteria_for
    blocked = Trial(1, 40_000, 2.0, planned=80_000, sent=54_000, counted=54_000, workers=2, blocked_ns=int(1.7e9))
    assert blocked.blocked_percent == pytest.approx(42.5)
    tcp = judge(blocked, criteria_for("tcp", 0.1, 1.0))
    assert tcp.verdict == FAIL and tcp.reason == "pushed back: workers blocked 42.5 % of the time > 1 %"
    udp = judge(Trial(1, 40_000, 2.0, planned=80_000, sent=54_000, counted=54_000), criteria_for("udp", 0.1, 1.0))
    assert udp.verdict == SHORT
    slow = judge(Trial(1, 1000, 1.0, planned=1000, sent=900, counted=900), [PushBackCriterion(1.0)])
    assert slow.verdict == FAIL and slow.reason == "pushed back: loggen sent only 90.0 % of the rate"
    fine = judge(Trial(1, 1000, 1.0, planned=1000, sent=1000, counted=1000, blocked_ns=int(5e6)),
                 criteria_for("tls", 0.1, 1.0))
    assert fine.verdict == PASS and fine.document()["blocked_percent"] == 0.5


class DatedFeedback:
    """A receiver whose figures are sampled once per ``interval`` (as a sink's dashboard frame is)."""

    text = "dated"

    def __init__(self, interval: float) -> None:
        self.interval, self.reads = interval, 0

    def read(self) -> Reading:
        self.reads += 1
        now = time.time()
        sampled = now - now % self.interval
        return Reading(int(sampled * 1000), {}, sampled)


def test_the_count_after_a_pause_is_from_a_sample_taken_after_it(tmp_path):
    """A sink's frame is up to a second old: read as is, what arrived in the pause's last second was lost."""
    feedback = DatedFeedback(0.3)
    finder = FindLimit(BASE, feedback, [], tmp_path)
    since = time.time()
    reading = finder.fresh_feedback(since)
    assert reading.as_of >= since and feedback.reads >= 1
    undated = FindLimit(BASE, CommandFeedback("echo 5", "command:echo 5"), [], tmp_path)
    assert undated.fresh_feedback(time.time() + 100).total == 5          # a receiver that does not date: read once


# --- what the feedback answers: bad answers are one line, a slow one has a deadline -----------------------

@pytest.fixture
def answers():
    from tests.support.http_answers import AnswerServer
    server = AnswerServer()
    yield server
    server.close()


def prometheus(*values):
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": {}, "value": [1.5, v]} for v in values]}}


@pytest.mark.parametrize("answer,why", [
    ({"sink": {"received": None}}, "sink.received in /api/metrics is None, not a count of events"),
    ({"sink": {"received": "12x"}}, "sink.received in /api/metrics is '12x', not a count of events"),
    ({"sink": {"received": 5, "unsequenced": -3}}, "sink.unsequenced in /api/metrics is -3, not a count of events"),
    ({"sink": {"received": 5, "duplicates": 1e400}}, "sink.duplicates in /api/metrics is inf, not a count"),
    ({"sink": {"received": True}}, "sink.received in /api/metrics is True, not a count of events"),
])
def test_a_sink_answer_that_is_not_a_count_is_one_line_naming_it(answers, answer, why):
    """null, "12x", -3, 1e400: TypeError, ValueError or OverflowError tracebacks before."""
    answers.answer = answer
    with pytest.raises(FeedbackError) as err:
        parse_feedback(f"sink:{answers.url}").read()
    assert str(err.value) == f"{answers.url}: {why}" or str(err.value).startswith(f"{answers.url}: {why}")


@pytest.mark.parametrize("answer,why", [
    (prometheus("NaN"), "a sample is 'NaN', not a count of events"),
    (prometheus("10", "+Inf"), "a sample is '+Inf', not a count of events"),
    (prometheus("-1"), "a sample is '-1', not a count of events"),
    ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
     "a sample is None, not a count of events"),
    ({"status": "success"}, "returned None, not an instant vector or a scalar"),
    ({"status": "success", "data": {"resultType": "scalar", "result": [1.5, "1e999"]}},
     "a sample is '1e999', not a count of events"),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "returned {'resultType': 'matrix'"),
])
def test_a_prometheus_answer_that_is_not_a_count_is_one_line_naming_it(answers, answer, why):
    """NaN, +Inf, no data: ValueError, OverflowError, KeyError tracebacks before."""
    answers.answer = answer
    with pytest.raises(FeedbackError) as err:
        parse_feedback(f"prometheus:{answers.url}", "sum(x)").read()
    assert str(err.value).startswith(f"{answers.url}: query 'sum(x)' {why}" if why.startswith("returned") else
                                     f"{answers.url}: query 'sum(x)': {why}"), str(err.value)


def test_good_answers_are_read_as_counts(answers):
    answers.answer = prometheus("1200", "34.4")
    assert parse_feedback(f"prometheus:{answers.url}", "sum(x)").read().total == 1234
    answers.answer = {"sink": {"received": 100, "duplicates": 4, "lost": -1}, "time": 12.5}   # lost: gaps - late
    reading = parse_feedback(f"sink:{answers.url}").read()
    assert reading.total == 96 and reading.as_of == 12.5 and reading.figures["lost"] == -1
    assert CommandFeedback("echo " + "9" * 30, "x").read is not None
    with pytest.raises(FeedbackError, match="its last number is '9{30}', not a count of events"):
        CommandFeedback("echo " + "9" * 30, "x").read()


def test_a_reading_has_a_deadline_however_slowly_the_answer_trickles():
    """One byte every 0.2 s never let a per-read timeout of 5 s expire: the reading hung for ever."""
    from loggend.tools.feedback import HTTP_TIMEOUT
    from tests.support.http_answers import TrickleServer
    server = TrickleServer(0.2)
    try:
        began = time.monotonic()
        with pytest.raises(FeedbackError, match=f"no whole answer within {HTTP_TIMEOUT:g} s"):
            parse_feedback(f"sink:{server.url}").read()
        assert HTTP_TIMEOUT <= time.monotonic() - began < HTTP_TIMEOUT + 2
    finally:
        server.close()


def test_a_summary_with_nothing_failed_yet_says_so():
    """It read "2,000 ev/s passed, - did not"."""
    from loggend.tools.limitsearch import Outcome
    assert Outcome(limit=2000, stopped="interrupted").summary() == \
        "no confirmed limit (interrupted): 2,000 ev/s passed; no higher rate was tried"


def test_max_time_too_short_for_a_first_trial_says_what_was_missing():
    out = Receiver(30_000).search(Settings(**{**BASE.__dict__, "max_time": 10})).run()
    assert out.trials == [] and out.summary() == \
        "no limit (--max-time 10 s: 10.0 s left, too little for a 10 s trial and its 1 s pause)"


FINISH_UNDER_A_FULL_DISK = """
import resource, sys
from pathlib import Path
from loggend.tools.feedback import CommandFeedback
from loggend.tools.findlimit import FindLimit
from loggend.tools.limitsearch import LossCriterion, Outcome, Trial, judge
from tests.unit.test_limitsearch import BASE
finder = FindLimit(BASE, CommandFeedback("echo 0", "command:echo 0"), [], Path(sys.argv[1]))
trials = [judge(Trial(n + 1, 1000.0 * 2 ** n, 10, 10_000 * 2 ** n, 10_000 * 2 ** n, 10_000 * 2 ** n),
                [LossCriterion(0.1)]) for n in range(3)]
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))    # the disk is full: no file grows past 1,000 bytes
sys.exit(finder.finish(Outcome(limit=4000.0, trials=trials, stopped="--max-time 60 s reached"), 0.0, ""))
"""


def test_a_full_disk_at_the_end_keeps_the_verdict_and_the_old_report(tmp_path):
    """A full disk at the end left a traceback and a truncated report.json."""
    import subprocess
    import sys

    from loggend.errors import EXIT_REPORT_FAILED
    from tests.support.processes import ROOT, child_environ
    (tmp_path / "report.json").write_text('{"old": true}')
    result = subprocess.run([sys.executable, "-c", FINISH_UNDER_A_FULL_DISK, str(tmp_path)], capture_output=True,
                            text=True, timeout=60, cwd=ROOT, env=child_environ())
    assert result.returncode == EXIT_REPORT_FAILED and result.stderr == "", result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "no confirmed limit (--max-time 60 s reached): 4,000 ev/s passed; no higher rate was tried",
        f"find-limit: the report could not be written in {tmp_path}: File too large"]
    assert (tmp_path / "report.json").read_text() == '{"old": true}'          # whole or not at all
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "report.html").exists()
