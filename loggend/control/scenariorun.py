"""A run's attack scenarios as the supervisor sees them: the injector and detection children it
registers, the control socket's ``inject`` and ``detected`` requests (the web process's ``POST
/api/detections`` comes the same way), the injector's start once the background's plan has started,
the board's figures for /metrics, and the summary's lines and JSON.

The supervisor holds one ``ScenarioRun`` when the run injects (``scenarios`` or ``inject``), else none:
a run without scenarios pays nothing for them.
"""

from __future__ import annotations

import os
import time
from functools import partial
from typing import Any, TextIO

from loggend.config import Config
from loggend.content.scenarios import Background
from loggend.control import children as K
from loggend.control.children import ChildSet
from loggend.control.ctlsocket import ControlError, ControlServer, Handler, Peer, request
from loggend.control.dashboard import Dashboard
from loggend.control.detect import verdict_lines
from loggend.control.injector import DETECTOR, INJECTOR, RunScenarios, summary_lines, truth_failure
from loggend.control.injector import STREAM as INJECTOR_STREAM
from loggend.control.ratecontrol import RateControl
from loggend.control.workers import Workers
from loggend.engine.journal import WARNING, Log
from loggend.engine.schedule import BoardPlan
from loggend.errors import UsageError
from loggend.fleet import stream_prefix

VERBS = ("inject", "detected")


def webhook_detection(path: str, words: str) -> dict[str, Any]:
    """The web process's ``POST /api/detections``, through the control socket as ``detected ID [TIME]``."""
    try:
        return request(path, f"detected {words}")
    except ControlError as err:
        return {"ok": False, "unavailable": True, "message": str(err)}


class ScenarioRun:
    """``run`` is None when the run injects nothing (no ``scenarios``, no ``inject``): then every method
    but ``handler`` does nothing, and the control socket refuses ``inject`` and ``detected`` in one line."""

    def __init__(self, config: Config, log: Log, outputs: tuple[TextIO, ...], children: ChildSet) -> None:
        self.log, self.children = log, children
        self.started = False                      # the injector was spawned (or, over TLS, refused): once
        self.run: RunScenarios | None = None
        if not config.scenarios and not config.inject:
            return
        truth = os.path.abspath(config.truth) if config.truth else ""
        self.run = RunScenarios(config.scenarios, truth, log, outputs, config.detect, config.detect_timeout)
        children.register(INJECTOR, self.run.spawn, lambda i: "scenario injector")
        children.register(DETECTOR, self.run.spawn_detector, lambda i: "detection poller")

    def handler(self, live: RateControl) -> Handler:
        """The control socket's handler: ``inject`` and ``detected`` here, the rest live control's."""
        def command(line: str, peer: Peer) -> dict[str, Any]:
            verb, _, arg = line.strip().partition(" ")
            if verb not in VERBS:
                return live.command(line, peer)
            try:
                if self.run is None:
                    raise UsageError(f"{verb}: this run injects no scenarios (run it with --scenario or --inject)")
                if verb == "inject":
                    message = self.run.inject(arg)
                else:
                    by = "webhook" if peer.pid in self.children.pids(K.WEB) else f"ctl, pid {peer.pid}"
                    message = self.run.detected(arg, by, time.time())
            except UsageError as err:
                return {"ok": False, "usage": True, "message": str(err)}
            self.log(message)
            return {"ok": True, "message": message, "status": live.status()}
        return command

    def wire(self, dashboard: Dashboard | None, control: ControlServer | None) -> None:
        """With ``--detect webhook``, the dashboard's ``/api/detections`` reaches the run by its control socket
        (without it, the endpoint takes nothing: a run that asked no SIEM for its word gets none by the web)."""
        if dashboard is not None and control is not None and self.run is not None and \
                any(d.kind == "webhook" for d in self.run.detect):
            dashboard.detections = partial(webhook_detection, control.path)

    def spawn(self, config: Config, workers: Workers) -> None:
        """The injector beside the workers (their hot path is left alone), once the background's plan has
        started: a scenario's ``at`` counts from when the background starts. Once."""
        if self.run is None or self.started or not workers.plan.started:
            return
        self.started, c = True, config
        if c.protocol == "tls":
            self.log("scenarios: the injector sends over UDP or TCP only; TLS targets get no scenarios", WARNING)
            return
        m = c.messages
        background = Background(seed=m.seed, hosts=m.hosts, mix=tuple(name for name, _ in m.sources), form=m.form,
                                engine_format=m.format)
        self.run.configure(c.host, c.ports[0], c.protocol, c.framing,
                           stream_prefix(c.instance, c.instances) + INJECTOR_STREAM, m.timezone == "utc", background)
        process = self.run.process
        assert process is not None
        process.start = time.time() + (workers.run_start_ns - time.monotonic_ns()) / 1e9
        process.until = process.start + c.duration if c.duration else float("inf")
        board = BoardPlan(workers.shared.plan_board)          # the child reads the run's pause from it
        process.paused = lambda: (board.read() if board.changed() else board.plan).pause is not None

        def paused_so_far() -> float:
            plan = board.read() if board.changed() else board.plan
            ongoing = time.monotonic_ns() - plan.pause.since_ns if plan.pause is not None else 0
            return (plan.paused_ns + max(0, ongoing)) / 1e9
        process.paused_so_far = paused_so_far
        self.children.spawn(INJECTOR, 0)
        if self.run.detect:
            self.children.spawn(DETECTOR, 0)

    def figures(self) -> dict[str, object] | None:
        """What the board (and /metrics) says of the scenarios: per scenario, and whether detection is on."""
        if self.run is None:
            return None
        return {"detect": bool(self.run.detect), "by_scenario": self.run.tally.figures(time.time())}

    def numbering(self) -> tuple[int, int]:
        """Scenario messages sent with the ``scn`` stream's number, and without it (see ``RunScenarios``)."""
        return self.run.numbering() if self.run is not None else (0, 0)

    def summarise(self, document: dict[str, Any], out: TextIO) -> None:
        """The summary's scenario lines (and verdicts, with detection) on ``out`` and in ``document``."""
        if self.run is None:
            return
        sent = self.run.sent()
        failed = truth_failure(self.run.truth_path)
        lines = summary_lines(sent, failed)
        if failed:
            lines.append(f"  stopped: {failed}; no more scenario messages were sent")
        if unnumbered := self.run.unnumbered():
            lines.append(f"  {unnumbered:,} of them in forms with no room for a stream and number (an ASA's, a PAN-OS "
                         "native line): a sink counts them with the background's; sent - received leaves them out")
        started = {s.scenario for s in sent}
        unsent = [r for r in self.run.requests if r.name not in started]
        for r in unsent:                # a run stopped before its first instance was due
            lines.append(f"  {r.text}: not sent (its first instance was due {r.at:g} s into the run, which ended "
                         "first)")
        print("\n".join(lines), file=out, flush=True)
        document["scenarios"] = [s.as_dict() for s in sent]
        if unsent:
            document["scenarios_not_sent"] = [{"scenario": r.text, "due_seconds": r.at} for r in unsent]
        if self.run.detect:
            found = self.run.verdicts(time.time())
            print("\n".join(verdict_lines(found, self.run.detect_timeout)), file=out, flush=True)
            document["detection"] = {"timeout_seconds": self.run.detect_timeout,
                                     "by": [d.describe() for d in self.run.detect],
                                     "instances": [v.as_dict() for v in found]}
        self.run.close()
