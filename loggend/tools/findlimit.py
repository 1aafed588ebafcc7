"""``loggend find-limit``: the highest rate the receiver keeps up with, found by trials.

The trials are driven through **one** long-running ``loggend run``, steered by its control socket
(``loggend.control.ctlsocket``), rather than one ``loggend run`` per trial:

* the workers set up once (40 of them take a second or two to start), and every trial begins at
  once at its rate (``rate R``, ``resume``) and ends at once (``pause``): the pause between trials
  is the same run paused, so the receiver drains while nothing is sent;
* each stream's sequence numbers go on from trial to trial, so a ``loggend sink`` behind the SIEM
  keeps counting loss by sequence number across the whole search instead of seeing every stream
  start again at 0;
* ``ctl status`` gives exact counts at the trial's edges: the run is paused on both sides, so what
  was sent (and due) in a trial is the difference of two totals that do not move.

A trial: wait until the receiver's total (``loggend.tools.feedback``) stops moving (a receiver
slower than the pause is still working off the last trial, whose late arrivals would otherwise be
counted for this one), read it and the run's; ``rate R`` and ``resume``; wait ``--trial``;
``pause``; wait ``--pause`` for the receiver to drain; read both totals again. Loss = sent -
counted: what had not arrived by the end of the pause. The search (``loggend.tools.limitsearch``) decides what to
try next. The run's own flags (``--config``, ``--target``, ``--ports``, ``--workers``...) are
passed through; the run starts at rate 0 (``--profile constant:0``).

Output: a line per trial, the limit, ``report.json`` (``limit_eps``, ``trials``, the settings, the
manifest) and ``report.html`` (the knee: delivered and loss against offered), both at once or
neither (the report directory is checked before anything runs: exit 2). Exit 0 when a limit
was found and confirmed, 1 when not, 4 when the report could not be written, 130 after Ctrl-C
or SIGTERM (the report is still written). The run dies with find-limit, however that dies.
"""

from __future__ import annotations

import html
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from loggend.config import MAX_INTERVAL
from loggend.control.ctlsocket import ControlError, request
from loggend.control.injector import read_truth
from loggend.control.ratecontrol import RESUME_LEAD_NS
from loggend.control.tuning import Tuner
from loggend.engine.procsetup import die_with_this_process
from loggend.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_REPORT_FAILED
from loggend.files import check_writable_dir, write_all_atomic
from loggend.report.charts import svg_chart
from loggend.tools.detection_report import by_load, console_lines, html_section
from loggend.tools.feedback import Feedback, FeedbackError, Reading
from loggend.tools.limitsearch import Criterion, Interrupted, Outcome, Search, Settings, Trial, criteria_for, judge
from loggend.tools.perftest import manifest

START_TIMEOUT = 60.0           # the run must have every worker sending within this
SETTLE_POLL = 0.5              # before a trial, the receiver's total must not move for this long...
SETTLE_MAX = 60.0              # ...waiting at most this for it (then the trial goes on, and says so)
FRESH_POLL = 0.05              # after the pause, a receiver that dates its figures is read again this often...
FRESH_MAX = MAX_INTERVAL + 5.0 # ...until they are from after the pause: a sink samples every 60 s at most
WORK_OFF_MAX = 2.0             # after the pause, the workers' sent count may still reach the trial's due this long
STOP_GRACE = 20.0              # SIGTERM -> SIGKILL for the run at the end
CONTROL_RETRIES = 3
SIGNAL_POLL = 0.1              # while the feedback is read, Ctrl-C and SIGTERM are looked for this often


STREAM_ID_CHARS = 12             # the stream prefix's longest (config.parse_stream_id)


class FindLimitError(Exception):
    """Something outside the search failed (the run, the feedback): one line, exit 1."""


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


TRUTH = "truth.jsonl"            # the run's ground truth in the report dir, with scenarios


def scenario_messages(truth: Path, since: float, until: float) -> int:
    """Scenario messages the run sent from ``since`` to ``until`` (its truth): the receiver counts them
    beside the trial's own, and a count that took them for the trial's would hide as much loss."""
    try:
        return sum(1 for r in read_truth(str(truth)) if isinstance(r.get("sent"), (int, float))
                   and since < r["sent"] <= until)
    except OSError:
        return 0


def trial_line(t: Trial, protocol: str, time_left: float) -> str:
    label = "confirm" if t.confirmation else f"trial {t.number:2d}"
    reason = f" ({t.reason})" if t.reason else ""
    scenario = f" (+{t.injected_messages:,} scenario)" if t.injected_messages else ""
    blocked = f"blocked {t.blocked_percent:5.1f} %  " if protocol != "udp" else ""
    return (f"{label}  {t.rate:12,.0f} ev/s  {t.seconds:5.1f} s  sent {t.sent:12,}  "
            f"received {t.counted:12,}{scenario}  loss {t.loss_percent:8.4f} %  "
            f"{blocked}{t.verdict.upper():5}{reason}  (time left {_duration(time_left)})")


def run_summary(report_dir: Path) -> dict[str, Any]:
    """The run's summary (``--summary-json``), {} when it is missing or unreadable."""
    try:
        summary: dict[str, Any] = json.loads((report_dir / "run-summary.json").read_text())
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


class FindLimit:
    def __init__(self, settings: Settings, feedback: Feedback, run_args: list[str], report_dir: Path,
                 out: TextIO = sys.stdout, protocol: str = "udp", inject: tuple[str, ...] = ()) -> None:
        """``inject``: ``ctl inject`` lines (``NAME KEY=VALUE...``) sent at the start of every trial."""
        self.settings, self.feedback, self.run_args, self.inject = settings, feedback, run_args, inject
        self.report_dir, self.out, self.protocol = report_dir, out, protocol
        self.criteria: list[Criterion] = criteria_for(protocol, settings.loss_percent, settings.max_blocked)
        self.socket = str(report_dir / "ctl.sock")
        self.proc: subprocess.Popen[bytes] | None = None
        self.stop_requested = threading.Event()
        self.unfinished: tuple[str, float, list[str]] | None = None   # an interrupted trial's level and injections
        self.began = self.sending_since = 0.0
        self.highest_total = 0                    # the receiver's count never goes down, unless it restarted
        # Streams of their own: a sink that counted an earlier search's w0 from 0 would take this one's
        # numbers for duplicates (received 0, loss 100 % in the first trial).
        self.stream_id = f"f{int(time.time() * 1000) % 36 ** 8:x}"[:STREAM_ID_CHARS]

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _interrupt(self, signum: int, frame: object) -> None:
        self.stop_requested.set()

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def search_time(self) -> float:
        """What ``--max-time`` bounds: the time since the run was sending (its start-up, a second or
        several, is not the search's: it would leave a short search no time for its first trial)."""
        return time.monotonic() - self.sending_since if self.sending_since else 0.0

    # --- the run it steers -------------------------------------------------------------------------

    def command(self) -> list[str]:
        return [sys.executable, "-m", "loggend", "run", *self.run_args, "--profile", "constant:0", "--duration", "0",
                "--stream-id", self.stream_id,
                "--dashboard", "off", "--control-socket", self.socket,
                "--ready-file", str(self.report_dir / "ready.json"),
                "--summary-json", str(self.report_dir / "run-summary.json"),
                *(("--truth", str(self.report_dir / TRUTH)) if self.inject else ())]

    def start_run(self, log: TextIO) -> None:
        (self.report_dir / "ready.json").unlink(missing_ok=True)
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=die_with_this_process())     # even if find-limit is SIGKILLed
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            if self.proc.poll() is not None:
                raise FindLimitError(f"loggend run exited with status {self.proc.returncode}: {self._last_log_line()}")
            if (self.report_dir / "ready.json").exists():
                self.ctl("pause")
                self.sending_since = time.monotonic()
                return
            time.sleep(0.1)
        if not self.stop_requested.is_set():
            raise FindLimitError(f"loggend run was not sending within {START_TIMEOUT:g} s: {self._last_log_line()}")

    def _last_log_line(self) -> str:
        try:
            lines = (self.report_dir / "loggend.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            lines = []
        said = [x for x in lines if "error" in x or x.startswith("loggend:")]
        return (said or lines or ["no output"])[-1]

    def stop_run(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def ctl(self, line: str) -> dict[str, Any]:
        status: dict[str, Any] = self.ctl_reply(line)["status"]
        return status

    def ctl_reply(self, line: str) -> dict[str, Any]:
        for attempt in range(CONTROL_RETRIES):
            try:
                reply = request(self.socket, line)
            except ControlError as err:
                if attempt == CONTROL_RETRIES - 1 or (self.proc is not None and self.proc.poll() is not None):
                    raise FindLimitError(f"control socket: {err}") from None
                time.sleep(0.2)
                continue
            if not reply.get("ok"):
                if "not started sending yet" in str(reply.get("message")) and attempt < CONTROL_RETRIES - 1:
                    time.sleep(0.5)                 # the injector starts with the run's plan, just after ready
                    continue
                raise FindLimitError(f"loggend ctl {line}: {reply.get('message')}")
            return reply
        raise FindLimitError("unreachable")

    def read_feedback(self) -> Reading:
        """The receiver's total, read in a thread of its own: Ctrl-C or SIGTERM meanwhile stops the
        search at once (``Interrupted``) instead of waiting for a slow receiver to answer."""
        answer: list[Reading | FeedbackError] = []
        done = threading.Event()

        def read() -> None:
            try:
                answer.append(self.feedback.read())
            except FeedbackError as err:
                answer.append(err)
            finally:
                done.set()
        threading.Thread(target=read, name="feedback", daemon=True).start()
        while not done.wait(SIGNAL_POLL):
            if self.stop_requested.is_set():
                raise Interrupted()
        if not answer:
            raise FindLimitError(f"feedback {self.feedback.text}: the reader failed (see above)")
        if isinstance(answer[0], FeedbackError):
            raise FindLimitError(f"feedback {self.feedback.text}: {answer[0]}")
        reading = answer[0]
        if reading.total < self.highest_total:
            raise FindLimitError(f"feedback {self.feedback.text}: the receiver's count went backwards "
                                 f"({self.highest_total:,} -> {reading.total:,}): it restarted, or the answer is "
                                 "not a running total; the trials before stand")
        self.highest_total = reading.total
        return reading

    # --- one trial ---------------------------------------------------------------------------------

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; False when Ctrl-C came meanwhile."""
        return not self.stop_requested.wait(seconds)

    def trial(self, rate: float, seconds: float, confirmation: bool) -> Trial:
        if self.stop_requested.is_set():
            raise Interrupted()
        counted_before = self.settled()
        since = time.time()                 # paused: no scenario message goes out between the reading and now
        before = self.ctl("status")
        started = time.time()
        self.ctl(f"rate {rate:.0f} --force")     # the search owns its run and its bounds (--max-rate)
        self.ctl("resume")                                  # sending starts RESUME_LEAD from now
        injected = tuple(self.injected(line) for line in self.inject)
        t0 = time.monotonic()
        name = f"{'confirm' if confirmation else 'trial'} {len(self.outcome_trials) + 1}"
        self.unfinished = (f"{name} (interrupted)", rate, list(injected))    # its scenarios were sent all the same
        completed = self.wait(seconds + RESUME_LEAD_NS / 1e9)
        self.ctl("pause")
        took = time.monotonic() - t0 - RESUME_LEAD_NS / 1e9
        if not completed or not self.wait(self.settings.pause):
            raise Interrupted()
        self.unfinished = None
        after = self.worked_off(int(before["planned"] or 0) - int(before["sent"]))
        counted_after = self.fresh_feedback(time.time())
        scenario = scenario_messages(self.report_dir / TRUTH, since, time.time()) if self.inject else 0
        figures = {k: v - counted_before.figures.get(k, 0) for k, v in counted_after.figures.items()}
        planned = int(after["planned"] or 0) - int(before["planned"] or 0)
        trial = Trial(number=len(self.outcome_trials) + 1, rate=rate, seconds=planned / rate if planned else took,
                      planned=planned,
                      sent=int(after["sent"]) - int(before["sent"]),
                      counted=counted_after.total - counted_before.total - scenario, confirmation=confirmation,
                      started=started, figures=figures, workers=int(after["workers"]),
                      blocked_ns=int(after["blocked_ns"]) - int(before["blocked_ns"]), injected=injected,
                      injected_messages=scenario)
        judge(trial, self.criteria)
        self.say(trial_line(trial, self.protocol, self.settings.max_time - self.search_time()))
        return trial

    def worked_off(self, owed_before: int) -> dict[str, Any]:
        """The run's status once its workers have sent what the trial made due (``owed_before``: what was
        not sent of the earlier trials, never to be): a paused worker works off what it owes, and one
        starved through the pause (a loaded box) would otherwise read short of the rate while the receiver
        counts all of it. At most ``WORK_OFF_MAX`` (the pacer gives older debt up)."""
        status, deadline = self.ctl("status"), time.monotonic() + WORK_OFF_MAX
        while (int(status["sent"]) < int(status["planned"] or 0) - owed_before
               and time.monotonic() < deadline):
            if not self.wait(FRESH_POLL):
                raise Interrupted()
            status = self.ctl("status")
        return status

    def injected(self, line: str) -> str:
        """Inject one scenario instance into the run now; its id (``ssh-bruteforce-now3``)."""
        message = str(self.ctl_reply(f"inject {line}").get("message", ""))
        return message.split(" ", 1)[0]

    def fresh_feedback(self, since: float) -> Reading:
        """The receiver's figures as of ``since`` or later: a sink's frame may be up to its sampling
        interval old, and what arrived in the pause's last second would otherwise count as lost."""
        reading, deadline = self.read_feedback(), time.monotonic() + FRESH_MAX
        while reading.as_of is not None and reading.as_of < since and time.monotonic() < deadline:
            if not self.wait(FRESH_POLL):
                raise Interrupted()
            reading = self.read_feedback()
        if reading.as_of is not None and reading.as_of < since:
            self.say(f"find-limit: the receiver's figures are still from before the pause after {FRESH_MAX:g} s "
                     "(has its sampler stopped?); judging the trial on them")
        return reading

    def settled(self) -> Reading:
        """The receiver's total once it has stopped moving (the previous trial fully worked off)."""
        reading, deadline = self.read_feedback(), time.monotonic() + SETTLE_MAX
        while time.monotonic() < deadline:
            if not self.wait(SETTLE_POLL):
                raise Interrupted()
            again = self.read_feedback()
            if again.total == reading.total:
                return again
            reading = again
        self.say(f"find-limit: the receiver's total still moves {SETTLE_MAX:g} s after the last trial; going on")
        return reading

    @property
    def outcome_trials(self) -> list[Trial]:
        return self.search.outcome.trials

    # --- the whole ---------------------------------------------------------------------------------

    def run(self) -> int:
        check_writable_dir("--report-dir", self.report_dir)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._interrupt)
        self.began, started = time.monotonic(), time.time()
        self.search = Search(self.settings, self.trial, self.search_time)
        s = self.settings
        pushback = f", blocked <= {s.max_blocked:g} % ({self.protocol})" if self.protocol != "udp" else ""
        self.say(f"find-limit: from {s.start_rate:,.0f} ev/s up to {s.max_rate:,.0f}, loss <= {s.loss_percent:g} %"
                 f"{pushback}, "
                 f"trials of {s.trial:g} s (confirmation {s.confirm:g} s), {s.pause:g} s pause, precision "
                 f"{s.precision * 100:g} %, at most {_duration(s.max_time)}; feedback {self.feedback.text}")
        error, outcome = "", self.search.outcome
        try:
            with open(self.report_dir / "loggend.log", "w", encoding="utf-8") as log:
                try:
                    self.read_feedback()                       # reachable before anything is sent
                    self.start_run(log)
                    if not self.stop_requested.is_set():
                        self.search.run()
                finally:
                    self.stop_run()
        except Interrupted:
            pass
        except FindLimitError as err:
            error = str(err)
            outcome.stopped = outcome.stopped or "error"
            self.say(f"find-limit: {error}")
        if self.stop_requested.is_set():
            outcome.stopped = "interrupted"
        return self.finish(outcome, started, error)

    def finish(self, outcome: Outcome, started: float, error: str) -> int:
        """Detection by load (with scenarios) and the summary line, then the report (atomically): a full disk
        costs the report, never the verdict."""
        for line in console_lines(self.detection(outcome, run_summary(self.report_dir))):
            self.say(line)
        self.say(outcome.summary())
        code = EXIT_INTERRUPTED if outcome.stopped == "interrupted" else EXIT_OK if outcome.found else EXIT_FAILURE
        try:
            self.write_report(outcome, started, error)
        except OSError as err:
            self.say(f"find-limit: the report could not be written in {self.report_dir}: {err.strerror or err}")
            return code if code == EXIT_INTERRUPTED else EXIT_REPORT_FAILED
        self.say(f"report: {self.report_dir}/report.html and report.json")
        return code

    # --- the report --------------------------------------------------------------------------------

    def detection(self, outcome: Outcome, summary: dict[str, Any]) -> dict[str, Any] | None:
        """Detection by load level: every judged trial, and the one Ctrl-C or an error cut short."""
        levels = [(f"confirm {t.number}" if t.confirmation else f"trial {t.number}", t.rate, list(t.injected))
                  for t in outcome.trials]
        if self.unfinished is not None and self.unfinished[2]:
            levels.append(self.unfinished)
        return by_load(levels, summary)

    def write_report(self, outcome: Outcome, started: float, error: str) -> None:
        summary = run_summary(self.report_dir)
        sysctls = {key: current for key, current, _, _ in Tuner().show()}
        report = {
            "limit_eps": outcome.limit if outcome.found else None,
            "found": outcome.found, "confirmed": outcome.confirmed, "best_passing_eps": outcome.limit,
            "lowest_failing_eps": outcome.upper, "upper_is_loggen": outcome.ceiling,
            "at_max_rate": outcome.at_max_rate, "stopped": outcome.stopped or None, "error": error or None,
            "summary": outcome.summary(), "feedback": self.feedback.text, "protocol": self.protocol,
            "started": started, "started_iso": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
            "duration_seconds": round(self.elapsed(), 1),
            "settings": self.settings.document(),
            "trials": [t.document() for t in outcome.trials],
            "run": {"command": " ".join(self.command()[1:]), "transport": summary.get("transport"),
                    "sent": summary.get("sent"), "workers": len(summary.get("workers", [])) or None},
            "manifest": manifest(summary.get("transport") or "", False, sysctls),
            "detection": self.detection(outcome, summary),
        }
        write_all_atomic({str(self.report_dir / "report.json"): json.dumps(report, indent=1),
                          str(self.report_dir / "report.html"): html_report(report)})


def knee_charts(report: dict[str, Any]) -> list[str]:
    """Delivered against offered (with the y = x line), and loss against offered (with the threshold)."""
    trials = sorted((t for t in report["trials"] if not t["confirmation"]), key=lambda t: t["rate"])
    confirmations = [t for t in report["trials"] if t["confirmation"]]
    limit = report["limit_eps"] or report["best_passing_eps"]
    mark = {"mark_x": limit, "mark_label": f"limit {limit:,.0f} ev/s"} if limit else {}
    top = max((t["rate"] for t in report["trials"]), default=1.0)
    trial_s, confirm_s = report["settings"]["trial_seconds"], report["settings"]["confirm_seconds"]
    trial_name, confirm_name = f"trials ({trial_s:g} s)", f"confirmations ({confirm_s:g} s)"
    delivered = svg_chart(
        "delivered against offered", {
            trial_name: [(t["rate"], t["delivered_eps"]) for t in trials],
            confirm_name: [(t["rate"], t["delivered_eps"]) for t in confirmations],
            "offered (y = x)": [(0.0, 0.0), (top, top)]},
        x_label="offered events/s", y_label="delivered events/s (received / trial time)", dots=True,
        dashed=("offered (y = x)",), dots_only=(confirm_name,), x_from_zero=True, **mark)
    loss = svg_chart(
        "loss against offered", {
            trial_name: [(t["rate"], t["loss_percent"]) for t in trials],
            confirm_name: [(t["rate"], t["loss_percent"]) for t in confirmations]},
        unit=" %", goal=report["settings"]["loss_percent"], x_label="offered events/s",
        y_label="loss % (dashed: --loss)", dots=True, dots_only=(confirm_name,), x_from_zero=True, **mark)
    return [delivered, loss]


def html_report(report: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{'confirm' if t['confirmation'] else t['number']}</td><td>{t['rate']:,.0f}</td>"
        f"<td>{t['seconds']:.1f}</td><td>{t['sent']:,}</td><td>{t['received']:,}</td><td>{t['loss_percent']:.4f}</td>"
        f"<td>{t['delivered_eps']:,.0f}</td><td class={'pass' if t['verdict'] == 'pass' else 'fail'}>"
        f"{t['verdict'].upper()}</td><td>{html.escape(t['reason'])}</td></tr>"
        for t in report["trials"])
    manifest_rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(json.dumps(v))}</td></tr>"
                            for k, v in report["manifest"].items())
    found = report["found"]
    stopped = f" ({html.escape(report['stopped'])})" if report["stopped"] else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>loggen find-limit: {html.escape(report['summary'])}</title>
<style>body{{font:14px sans-serif;margin:2rem;max-width:960px}}table{{border-collapse:collapse;margin:1rem 0}}
td,th{{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}}.pass{{color:#080;font-weight:bold}}
.fail{{color:#c00;font-weight:bold}}</style></head><body>
<h1 class={'pass' if found else 'fail'}>{html.escape(report['summary'])}</h1>
<p>{html.escape(report['started_iso'])}, {report['duration_seconds']:.0f} s, feedback
<code>{html.escape(report['feedback'])}</code>{stopped}</p>
{''.join(knee_charts(report))}
{html_section(report.get("detection"))}
<h2>trials</h2><table><tr><th>trial</th><th>offered ev/s</th><th>seconds</th><th>sent</th><th>received</th>
<th>loss %</th><th>delivered ev/s</th><th>verdict</th><th>why</th></tr>{rows}</table>
<h2>settings</h2><pre>{html.escape(json.dumps(report['settings'], indent=1))}</pre>
<h2>run</h2><pre>{html.escape(json.dumps(report['run'], indent=1))}</pre>
<h2>manifest</h2><table>{manifest_rows}</table>
</body></html>"""
